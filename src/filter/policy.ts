import type { FilterConfig } from '../config/schema.js';

/**
 * Turning scores into sample weights, separate from scoring (like PyOD's
 * thresholders). Scores are "higher = more suspicious"; +Infinity means the
 * sample could not be scored (non-finite embedding) and is treated as the
 * most suspicious. NaN never reaches here (detectors guarantee it).
 */

/** Median and MAD of the finite values (MAD scaled by 1.4826 to estimate a normal's sigma). */
export function robustStats(values: ArrayLike<number>): { median: number; scale: number } {
  const finite: number[] = [];
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) finite.push(values[i]);
  if (!finite.length) return { median: 0, scale: 1 };
  const sorted = Float64Array.from(finite).sort();
  const median = quantileSorted(sorted, 0.5);
  const dev = sorted.map((v) => Math.abs(v - median)).sort();
  let scale = 1.4826 * quantileSorted(dev, 0.5);
  if (!(scale > 0)) {
    // More than half the scores are identical (e.g. mass duplicates): fall
    // back to the mean absolute deviation, then to 1, so z stays finite.
    let s = 0;
    for (const v of sorted) s += Math.abs(v - median);
    scale = s > 0 ? (1.2533 * s) / sorted.length : 1;
  }
  return { median, scale };
}

export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Robust z-score (s - median) / scale of every score. +Infinity stays +Infinity. */
export function robustZ(scores: ArrayLike<number>, stats = robustStats(scores)): Float64Array {
  const { median, scale } = stats;
  const z = new Float64Array(scores.length);
  for (let i = 0; i < scores.length; i++) z[i] = (scores[i] - median) / scale;
  return z;
}

export type PolicyConfig = Pick<
  FilterConfig,
  'action' | 'dropFraction' | 'threshold' | 'thresholdKind' | 'weightTemperature' | 'weightCenter' | 'maxDropFraction'
>;

/**
 * Default z-score cut when neither dropFraction nor threshold is given. 3.0
 * rather than the customary 3.5: on Fashion-MNIST with fixed BadNets at 1%,
 * 3.5 left ~18 poisons and ASR 0.05-0.08 over three seeds, 3.0 left 5-11 and
 * ASR 0.011-0.029, for 3% more of the clean data dropped (README, filter results).
 */
export const DEFAULT_Z_THRESHOLD = 3.0;

export interface PolicyDecision {
  /** New weight of each scored sample (same order as the scores). */
  readonly weights: Float32Array;
  /** How the cut was made, for the report. */
  readonly rule: string;
  /** Score value at the cut (drop), or at weight 0.5 (downweight). */
  readonly cut: number;
  /** True when maxDropFraction limited the drop. */
  readonly capped: boolean;
  /** Robust z-score of every score (what the z rules and the trigger probe's seeds read). */
  readonly z: Float64Array;
}

/** Indices of scores ordered from most to least suspicious (stable on ties). */
export function rankDescending(scores: ArrayLike<number>): Int32Array {
  const order = Int32Array.from({ length: scores.length }, (_, i) => i);
  order.sort((a, b) => (scores[b] > scores[a] ? 1 : scores[b] < scores[a] ? -1 : a - b));
  return order;
}

/**
 * Weights for one round's scores. `drop` gives 0 or 1: the top `dropFraction`,
 * or everything above `threshold` (absolute score, or robust z-score), never
 * more than `maxDropFraction` of the scored samples. `downweight` gives
 * w = 1 / (1 + exp((z - center) / temperature)) on the robust z-score.
 */
export function decideWeights(scores: ArrayLike<number>, policy: PolicyConfig): PolicyDecision {
  const n = scores.length;
  const weights = new Float32Array(n).fill(1);
  const stats = robustStats(scores);
  const { median, scale } = stats;
  const z = robustZ(scores, stats);
  if (policy.action === 'downweight') {
    for (let i = 0; i < n; i++) {
      const w = 1 / (1 + Math.exp((z[i] - policy.weightCenter) / policy.weightTemperature));
      weights[i] = Number.isFinite(w) ? w : 0;
    }
    return { weights, rule: `logistic(z; center ${policy.weightCenter}, temperature ${policy.weightTemperature})`, cut: median + policy.weightCenter * scale, capped: false, z };
  }
  const order = rankDescending(scores);
  const maxDrop = Math.floor(policy.maxDropFraction * n);
  let count: number;
  let rule: string;
  if (policy.dropFraction !== undefined) {
    count = Math.round(policy.dropFraction * n);
    rule = `top ${(policy.dropFraction * 100).toFixed(3)}%`;
  } else {
    const kind = policy.threshold === undefined ? 'zscore' : policy.thresholdKind;
    const threshold = policy.threshold ?? DEFAULT_Z_THRESHOLD;
    const value = kind === 'zscore' ? z : scores;
    count = 0;
    while (count < n && value[order[count]] > threshold) count++;
    rule = kind === 'zscore' ? `robust z > ${threshold}` : `score > ${threshold}`;
  }
  const capped = count > maxDrop;
  if (capped) count = maxDrop;
  for (let r = 0; r < count; r++) weights[order[r]] = 0;
  const cut = count > 0 ? scores[order[count - 1]] : Infinity;
  return { weights, rule: capped ? `${rule}, capped at ${(policy.maxDropFraction * 100).toFixed(1)}%` : rule, cut, capped, z };
}
