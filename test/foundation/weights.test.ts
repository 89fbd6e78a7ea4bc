import { describe, expect, it } from 'vitest';
import { SampleWeightTable } from '../../src/train/weights.js';

describe('sample-weight table', () => {
  it('drops and down-weights, and reports what the loader serves', () => {
    const t = new SampleWeightTable(6);
    expect(t.isUniform()).toBe(true);
    t.drop([1, 4]);
    t.set(2, 0.5);
    expect(Array.from(t.activeIndices())).toEqual([0, 2, 3, 5]);
    expect(t.activeCount()).toBe(4);
    expect(t.mean()).toBeCloseTo(3.5 / 6);
    expect(t.isUniform()).toBe(false);
  });

  it('rejects weights outside [0, 1]', () => {
    const t = new SampleWeightTable(2);
    expect(() => t.set(0, 1.5)).toThrow(/\[0, 1\]/);
    expect(() => t.set(0, Number.NaN)).toThrow(/\[0, 1\]/);
    expect(() => new SampleWeightTable(3, new Float32Array(2))).toThrow(/3/);
  });
});
