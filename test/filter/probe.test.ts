import { describe, expect, it } from 'vitest';
import { fitLogistic, probeDrops, probeScores } from '../../src/filter/probe.js';
import { Rng } from '../../src/util/rng.js';

const D = 6;

/** Gradient of the balanced, ridge-penalised logistic loss at `coef`, written out independently of the fit. */
function lossGradient(points: Float32Array, pos: number[], neg: number[], coef: Float64Array, l2: number): number[] {
  const m = pos.length + neg.length;
  const grad = Array.from({ length: D + 1 }, (_, f) => (f < D ? l2 * coef[f] : 0));
  for (const [rows, y, w] of [
    [pos, 1, m / (2 * pos.length)],
    [neg, 0, m / (2 * neg.length)],
  ] as const) {
    for (const i of rows) {
      const norm = Math.hypot(...Array.from(points.subarray(i * D, i * D + D)));
      const x = [...Array.from(points.subarray(i * D, i * D + D), (v) => v / norm), 1];
      const z = x.reduce((s, v, f) => s + v * coef[f], 0);
      const g = w * (1 / (1 + Math.exp(-z)) - y);
      x.forEach((v, f) => (grad[f] += g * v));
    }
  }
  return grad;
}

/**
 * Clean rows around 4 directions in the first D - 1 coordinates; a poisoned
 * row adds a trigger along the last one (a direction of its own, as a
 * trained-in trigger roughly is in an encoder's space).
 */
function planted(n: number, poisoned: Set<number>, seed: number): Float32Array {
  const rng = new Rng(seed, 'probe-test');
  const centres = Array.from({ length: 4 }, () => Array.from({ length: D }, (_, f) => (f < D - 1 ? 2 * rng.normal() : 0)));
  const x = new Float32Array(n * D);
  for (let i = 0; i < n; i++) {
    for (let f = 0; f < D; f++) x[i * D + f] = centres[i % 4][f] + 0.3 * rng.normal() + (poisoned.has(i) && f === D - 1 ? 2 : 0);
  }
  return x;
}

describe('trigger probe', () => {
  it('fits the balanced ridge logistic regression to its optimum (zero gradient)', () => {
    const n = 300;
    const x = planted(n, new Set(Array.from({ length: 30 }, (_, i) => i * 10)), 1);
    const pos = Array.from({ length: 30 }, (_, i) => i * 10);
    const neg = Array.from({ length: n }, (_, i) => i).filter((i) => i % 10 !== 0);
    for (const l2 of [0.1, 1, 10]) {
      const probe = fitLogistic(x, D, Int32Array.from(pos), Int32Array.from(neg), l2);
      expect(probe.iterations).toBeLessThan(50);
      for (const g of lossGradient(x, pos, neg, probe.coef, l2)) expect(Math.abs(g)).toBeLessThan(1e-7);
    }
  });

  it('ranks the kept rows that carry the seeds\' trigger first and drops within the budget', () => {
    const n = 1000;
    // rows 0..39: found poisons (seeds, dropped); 40..49: surviving poisons (kept)
    const poisoned = new Set(Array.from({ length: 50 }, (_, i) => i));
    const x = planted(n, poisoned, 2);
    x[500 * D + 2] = Infinity;
    const weights = new Float32Array(n).fill(1).fill(0, 0, 40);
    const seeds = Int32Array.from({ length: 40 }, (_, i) => i);
    const wide = probeDrops(x, n, D, weights, seeds, 40, { negatives: 8192, l2: 1, seed: 1 });
    const survivors = Array.from({ length: 10 }, (_, i) => 40 + i);
    expect(Array.from(wide.rows.subarray(0, 10)).sort((a, b) => a - b)).toEqual(survivors);
    for (const i of wide.rows) expect(wide.scores[i]).toBeGreaterThan(0);
    expect(wide.rows.length).toBeLessThanOrEqual(40);
    expect(Array.from(wide.rows).some((i) => i < 40)).toBe(false);
    expect(Number.isNaN(wide.scores[500])).toBe(true);
    expect(Array.from(wide.rows)).not.toContain(500);
    // a tight budget keeps the best-ranked, in order of the decision value
    const tight = probeDrops(x, n, D, weights, seeds, 4, { negatives: 8192, l2: 1, seed: 1 });
    expect(Array.from(tight.rows)).toEqual(Array.from(wide.rows.subarray(0, 4)));
    // scores are the probe's decision values on unit rows
    expect(probeScores(wide.probe, x, n, D)[45]).toBeCloseTo(wide.scores[45], 12);
  });

  it('drops nothing when there is nothing to tell apart (no finite seed, or nothing kept)', () => {
    const n = 50;
    const x = planted(n, new Set([0, 1]), 4);
    x[0] = NaN;
    const none = probeDrops(x, n, D, new Float32Array(n).fill(1), Int32Array.from([0]), 10, { negatives: 100, l2: 1, seed: 1 });
    expect(none.rows).toHaveLength(0);
    expect(Array.from(none.scores).every(Number.isNaN)).toBe(true);
    const allDropped = probeDrops(x, n, D, new Float32Array(n), Int32Array.from([1, 2]), 10, { negatives: 100, l2: 1, seed: 1 });
    expect(allDropped.rows).toHaveLength(0);
  });

  it('samples at most `negatives` kept rows for the fit, deterministically, and still scores every row', () => {
    const n = 600;
    const x = planted(n, new Set(Array.from({ length: 30 }, (_, i) => i)), 3);
    const weights = new Float32Array(n).fill(1).fill(0, 0, 25);
    const seeds = Int32Array.from({ length: 25 }, (_, i) => i);
    const a = probeDrops(x, n, D, weights, seeds, 25, { negatives: 100, l2: 1, seed: 7 });
    const b = probeDrops(x, n, D, weights, seeds, 25, { negatives: 100, l2: 1, seed: 7 });
    expect(Array.from(a.scores)).toEqual(Array.from(b.scores));
    expect(Array.from(a.rows.subarray(0, 5)).sort((p, q) => p - q)).toEqual([25, 26, 27, 28, 29]);
  });
});
