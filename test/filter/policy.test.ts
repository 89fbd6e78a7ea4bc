import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import { decideWeights, rankDescending, robustStats, robustZ } from '../../src/filter/policy.js';
import { isRoundEpoch } from '../../src/filter/hook.js';

const policy = (over: object = {}) => ({ ...resolveConfig({}).filter, maxDropFraction: 1, ...over });

describe('robust statistics', () => {
  it('median and 1.4826 x MAD', () => {
    // values 1..5 and 100: median 3.5, |v - 3.5| = 2.5 1.5 .5 .5 1.5 96.5 -> MAD 1.5
    const { median, scale } = robustStats([1, 2, 3, 4, 5, 100]);
    expect(median).toBe(3.5);
    expect(scale).toBeCloseTo(1.4826 * 1.5, 10);
    expect(Array.from(robustZ([1, 2, 3, 4, 5, 100]))[5]).toBeCloseTo((100 - 3.5) / (1.4826 * 1.5), 10);
  });

  it('stays finite when most scores are identical, and ranks +Infinity first', () => {
    const z = robustZ([1, 1, 1, 1, 1, 2, Infinity]);
    expect(Number.isFinite(z[5])).toBe(true);
    expect(z[5]).toBeGreaterThan(0);
    expect(z[6]).toBe(Infinity);
    expect(Array.from(rankDescending([0.5, Infinity, 2, 2]))).toEqual([1, 2, 3, 0]);
  });
});

describe('decideWeights', () => {
  const scores = [1, 1.1, 0.9, 1.05, 0.95, 1.02, 0.98, 5, 6, 1.01];

  it('drops the top fraction', () => {
    const d = decideWeights(scores, policy({ dropFraction: 0.2 }));
    expect(Array.from(d.weights)).toEqual([1, 1, 1, 1, 1, 1, 1, 0, 0, 1]);
    expect(d.cut).toBe(5);
  });

  it('drops above an absolute threshold', () => {
    const d = decideWeights(scores, policy({ threshold: 1.06, thresholdKind: 'absolute' }));
    expect(Array.from(d.weights)).toEqual([1, 0, 1, 1, 1, 1, 1, 0, 0, 1]);
  });

  it('drops above a robust z-score by default and caps at maxDropFraction', () => {
    const d = decideWeights(scores, policy());
    expect(Array.from(d.weights)).toEqual([1, 1, 1, 1, 1, 1, 1, 0, 0, 1]);
    const capped = decideWeights(scores, policy({ maxDropFraction: 0.1 }));
    expect(Array.from(capped.weights).filter((w) => w === 0)).toHaveLength(1);
    expect(capped.weights[8]).toBe(0);
    expect(capped.capped).toBe(true);
  });

  it('down-weights with a logistic on the robust z-score', () => {
    const d = decideWeights(scores, policy({ action: 'downweight', weightCenter: 3, weightTemperature: 1 }));
    const z = robustZ(scores);
    for (let i = 0; i < scores.length; i++) expect(d.weights[i]).toBeCloseTo(1 / (1 + Math.exp(z[i] - 3)), 6);
    expect(d.weights[8]).toBeLessThan(1e-6);
  });

  it('never raises a weight above 1 or below 0, and drops only the highest scores (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { minLength: 1, maxLength: 60 }), fc.double({ min: 0, max: 1, noNaN: true }), (s, frac) => {
        const d = decideWeights(s, policy({ dropFraction: frac, maxDropFraction: 1 }));
        const dropped = s.filter((_, i) => d.weights[i] === 0);
        const kept = s.filter((_, i) => d.weights[i] === 1);
        expect(dropped.length + kept.length).toBe(s.length);
        expect(dropped.length).toBe(Math.round(frac * s.length));
        if (dropped.length && kept.length) expect(Math.min(...dropped)).toBeGreaterThanOrEqual(Math.max(...kept));
      }),
    );
  });
});

describe('round schedule', () => {
  it('scores after the warm-up, then every N epochs, never after the last epoch', () => {
    const rounds = (cfg: { warmupEpochs: number; every: number }, total: number) => Array.from({ length: total + 1 }, (_, e) => e).filter((e) => isRoundEpoch(e, total, cfg));
    expect(rounds({ warmupEpochs: 1, every: 1 }, 5)).toEqual([1, 2, 3, 4]);
    expect(rounds({ warmupEpochs: 2, every: 2 }, 9)).toEqual([2, 4, 6, 8]);
    expect(rounds({ warmupEpochs: 1, every: 0 }, 5)).toEqual([1]);
    expect(rounds({ warmupEpochs: 0, every: 3 }, 7)).toEqual([0, 3, 6]);
  });
});
