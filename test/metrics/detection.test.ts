import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { auprc, auroc, averageRanks, detectionReport, fprAtTpr, recallAtCount, spearman } from '../../src/metrics/detection.js';

// Expected values computed once with scikit-learn 1.2.1 / scipy (/usr/bin/python3):
// roc_auc_score, average_precision_score, fpr[argmax(tpr >= 0.95)] of roc_curve, spearmanr.
const CASES = {
  classic: { s: [0.1, 0.4, 0.35, 0.8], l: [0, 0, 1, 1], auroc: 0.75, ap: 0.8333333333333333, fpr95: 0.5 },
  ties: { s: [1, 1, 2, 2, 3, 0.5], l: [0, 1, 1, 0, 1, 0], auroc: 0.7777777777777778, ap: 0.7555555555555555, fpr95: 0.6666666666666666 },
  // sklearn rejects inf, so the reference replaced it by 1e300 (same order)
  infinite: { s: [Infinity, 0.3, Infinity, 0.2, 0.9, 0.1], l: [1, 0, 0, 0, 1, 1], auroc: 0.5, ap: 0.5555555555555556, fpr95: 1.0 },
  random30: {
    s: [0.0, 0.8, 0.2, -0.4, -0.5, -0.5, 0.1, 1.8, -0.5, -0.1, 1.0, 0.4, 0.1, -0.9, -0.0, 0.7, -0.8, -0.5, -1.9, -1.3, -1.8, -0.2, -0.8, 0.3, 0.2, 0.3, -2.5, -0.5, -0.0, 0.1],
    l: [0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0],
    auroc: 0.6499999999999999,
    ap: 0.6038699102829537,
    fpr95: 0.75,
  },
};

describe('detection metrics against scikit-learn', () => {
  it.each(Object.entries(CASES))('%s', (_name, c) => {
    const scores = Float64Array.from(c.s);
    const labels = Uint8Array.from(c.l);
    expect(auroc(scores, labels)).toBeCloseTo(c.auroc, 14);
    expect(auprc(scores, labels)).toBeCloseTo(c.ap, 14);
    expect(fprAtTpr(scores, labels, 0.95)).toBeCloseTo(c.fpr95, 14);
  });

  it('hand-computed small cases', () => {
    // perfect and inverted rankings
    expect(auroc([3, 2, 1, 0], [1, 1, 0, 0])).toBe(1);
    expect(auroc([0, 1, 2, 3], [1, 1, 0, 0])).toBe(0);
    // all tied: every pair counts 1/2; AP = precision at the single threshold = 2/4
    expect(auroc([5, 5, 5, 5], [1, 0, 1, 0])).toBe(0.5);
    expect(auprc([5, 5, 5, 5], [1, 0, 1, 0])).toBe(0.5);
    // ranking pos, neg, pos: AP = 1/2 * 1 + 1/2 * 2/3 = 5/6; AUROC: pairs (p1, n) won, (p2, n) lost -> 1/2
    expect(auprc([3, 2, 1], [1, 0, 1])).toBeCloseTo(5 / 6, 15);
    expect(auroc([3, 2, 1], [1, 0, 1])).toBe(0.5);
    // FPR at TPR 95%: need both positives -> threshold 1 -> fpr 1 (one negative)
    expect(fprAtTpr([3, 2, 1], [1, 0, 1])).toBe(1);
    expect(fprAtTpr([3, 2, 1], [1, 0, 1], 0.5)).toBe(0);
  });

  it('+Infinity scores rank highest', () => {
    expect(auroc([Infinity, 1e308, -Infinity], [1, 0, 0])).toBe(1);
    expect(auroc([Infinity, Infinity, 0], [1, 0, 0])).toBe(0.75);
    expect(auprc([Infinity, 1, 2], [1, 0, 0])).toBe(1);
  });

  it('returns null when only one class is present, throws on NaN or bad labels', () => {
    for (const f of [auroc, auprc, fprAtTpr]) {
      expect(f([1, 2, 3], [0, 0, 0])).toBeNull();
      expect(f([1, 2, 3], [1, 1, 1])).toBeNull();
      expect(() => f([1, NaN, 3], [0, 1, 0])).toThrow(/NaN/);
      expect(() => f([1, 2, 3], [0, 2, 1])).toThrow(/0 or 1/);
      expect(() => f([1, 2], [0, 1, 1])).toThrow(/labels/);
    }
    expect(recallAtCount([1, 2], [1, 1], 1)).toBeNull();
  });

  it('recallAtCount counts a tied group at the cut with its expected share', () => {
    // sorted: 5 (pos) | 4, 4 (one pos) | 3 (pos); count 2 takes 5 and half of the tied pair
    expect(recallAtCount([5, 4, 4, 3, 0], [1, 1, 0, 1, 0], 2)).toBeCloseTo(1.5 / 3, 15);
    expect(recallAtCount([5, 4, 4, 3, 0], [1, 1, 0, 1, 0], 0)).toBe(0);
    expect(recallAtCount([5, 4, 4, 3, 0], [1, 1, 0, 1, 0], 4)).toBe(1);
    expect(recallAtCount([5, 4, 4, 3, 0], [1, 1, 0, 1, 0], 100)).toBe(1);
  });

  it('AUROC equals the pairwise win rate (ties 1/2) on random data with ties', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: -5, max: 5 }), fc.boolean()), { minLength: 2, maxLength: 60 }), (rows) => {
        const s = rows.map((r) => r[0]);
        const l = rows.map((r) => (r[1] ? 1 : 0));
        const pos = s.filter((_, i) => l[i] === 1);
        const neg = s.filter((_, i) => l[i] === 0);
        const got = auroc(s, l);
        if (pos.length === 0 || neg.length === 0) return got === null;
        let wins = 0;
        for (const p of pos) for (const q of neg) wins += p > q ? 1 : p === q ? 0.5 : 0;
        return Math.abs(got! - wins / (pos.length * neg.length)) < 1e-12;
      }),
    );
  });

  it('detectionReport bundles the metrics', () => {
    const c = CASES.random30;
    const r = detectionReport(c.s, c.l);
    expect(r.auroc).toBeCloseTo(c.auroc, 14);
    expect(r.auprc).toBeCloseTo(c.ap, 14);
    expect(r.fprAt95Tpr).toBeCloseTo(c.fpr95, 14);
    expect(r.recallAtPositives).toBe(recallAtCount(c.s, c.l, 9));
  });
});

describe('spearman', () => {
  it('matches scipy.stats.spearmanr with ties', () => {
    // spearmanr([3,1,4,1,5,9,2,6,5,3], [2,7,1,8,2,8,1,8,2,8]) = 0.13471506281091267
    expect(spearman([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], [2, 7, 1, 8, 2, 8, 1, 8, 2, 8])).toBeCloseTo(0.13471506281091267, 14);
  });

  it('is 1 for monotone maps, -1 reversed, null when undefined', () => {
    expect(spearman([1, 2, 3, 4], [10, 100, 1000, Infinity])).toBe(1);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toBe(-1);
    expect(spearman([1, 1, 1], [1, 2, 3])).toBeNull();
    expect(spearman([1], [2])).toBeNull();
  });

  it('averageRanks gives ties their mean rank', () => {
    expect(Array.from(averageRanks([10, 20, 10, 30, 20, 20]))).toEqual([1.5, 4, 1.5, 6, 4, 4]);
  });
});
