import { describe, expect, it } from 'vitest';
import { decideReadmission, quantile, sampleRows } from '../../src/filter/readmit.js';
import { rowCosines } from '../../src/util/rows.js';
import { Rng } from '../../src/util/rng.js';

describe('re-admission', () => {
  it('rowCosines: cosine of each row pair, 0 for a zero row', () => {
    const a = Float32Array.from([1, 0, 3, 4, 0, 0, 2, 2]);
    const b = Float32Array.from([0, 5, 3, 4, 1, 1, -1, -1]);
    const cos = rowCosines(a, b, 4, 2);
    expect(cos[0]).toBeCloseTo(0, 12);
    expect(cos[1]).toBeCloseTo(1, 6);
    expect(cos[2]).toBe(0);
    expect(cos[3]).toBeCloseTo(-1, 6);
    // scale-free: only the directions count
    const scaled = rowCosines(Float32Array.from([10, 0]), Float32Array.from([1, 1]), 1, 2);
    expect(scaled[0]).toBeCloseTo(Math.SQRT1_2, 6);
  });

  it('quantile: linear interpolation between order statistics (numpy default), non-finite values ignored', () => {
    const v = [4, 1, 3, 2, 5];
    expect(quantile(v, 0)).toBe(1);
    expect(quantile(v, 1)).toBe(5);
    expect(quantile(v, 0.5)).toBe(3);
    // numpy.quantile([1,2,3,4,5], 0.1) = 1.4
    expect(quantile(v, 0.1)).toBeCloseTo(1.4, 12);
    expect(quantile([NaN, 2, Infinity, 1], 0.5)).toBeCloseTo(1.5, 12);
    expect(quantile([NaN], 0.5)).toBeNaN();
  });

  it('decideReadmission: strictly above the kept samples\' quantile, the held ones above theirs; non-finite agreement never comes back', () => {
    const kept = Float64Array.from({ length: 101 }, (_, i) => i / 100); // 0.00 .. 1.00: 5% quantile 0.05, median 0.5
    const candidates = Float64Array.from([0.04, 0.05, 0.0501, 0.9, NaN, -Infinity, 0.3, 0.6]);
    const open = new Uint8Array(candidates.length);
    const d = decideReadmission(candidates, open, kept, 0.05, 0.5);
    expect(d.threshold).toBeCloseTo(0.05, 12);
    expect(d.heldThreshold).toBeCloseTo(0.5, 12);
    expect(Array.from(d.readmitted)).toEqual([2, 3, 6, 7]);
    // the same agreements, held: only those above the median
    const held = new Uint8Array(candidates.length).fill(1);
    expect(Array.from(decideReadmission(candidates, held, kept, 0.05, 0.5).readmitted)).toEqual([3, 7]);
    // vetoed (2): never, whatever the agreement; held (1) above the median; not held (0) above the 5% quantile
    expect(Array.from(decideReadmission(Float64Array.from([2, 2, 2, 0.3]), Uint8Array.from([2, 1, 0, 0]), kept, 0.05, 0.5).readmitted)).toEqual([1, 2, 3]);
    // heldQuantile 1: held candidates never come back, whatever their agreement
    const never = decideReadmission(Float64Array.from([2, 0.9]), Uint8Array.from([1, 0]), kept, 0.05, 1);
    expect(never.heldThreshold).toBe(Infinity);
    expect(Array.from(never.readmitted)).toEqual([1]);
    // no kept sample to compare with: nothing comes back
    const none = decideReadmission(candidates, open, new Float64Array(0), 0.05, 0.5);
    expect(none.threshold).toBeNaN();
    expect(none.readmitted.length).toBe(0);
  });

  it('sampleRows: distinct members of the pool, sorted, deterministic per seed, the pool untouched', () => {
    const pool = Int32Array.from({ length: 1000 }, (_, i) => 3 * i);
    const copy = Int32Array.from(pool);
    const a = sampleRows(pool, 100, Rng.derive(7, 'x'));
    const b = sampleRows(pool, 100, Rng.derive(7, 'x'));
    expect(Array.from(pool)).toEqual(Array.from(copy));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(a.length).toBe(100);
    expect(new Set(a).size).toBe(100);
    for (let i = 1; i < a.length; i++) expect(a[i]).toBeGreaterThan(a[i - 1]);
    for (const v of a) expect(v % 3).toBe(0);
    expect(Array.from(sampleRows(pool.subarray(0, 5), 100, Rng.derive(7, 'x')))).toEqual([0, 3, 6, 9, 12]);
  });
});
