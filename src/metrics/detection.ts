/**
 * Detection metrics of a score vector (higher = more suspicious) against 0/1
 * ground truth (1 = poison). Everything works on typed arrays; `+Infinity`
 * scores (rows a detector could not score) rank highest like any other value.
 * NaN scores are a bug upstream (detectors never emit them) and throw.
 *
 * Tie semantics follow scikit-learn: thresholds sit at distinct score values,
 * so a group of tied scores enters a curve as one step (AUROC counts a tied
 * positive/negative pair as 1/2, AP takes one precision per distinct score).
 */

export type Labels = ArrayLike<number>;

interface Prepared {
  /** Row indices sorted by score, descending. */
  order: Int32Array;
  positives: number;
  negatives: number;
}

function prepare(scores: ArrayLike<number>, labels: Labels, what: string): Prepared | null {
  const n = scores.length;
  if (labels.length !== n) throw new RangeError(`${what}: ${n} scores but ${labels.length} labels`);
  let positives = 0;
  for (let i = 0; i < n; i++) {
    const s = scores[i];
    if (s !== s) throw new RangeError(`${what}: score ${i} is NaN (detectors must not emit NaN)`);
    const l = labels[i];
    if (l === 1) positives++;
    else if (l !== 0) throw new RangeError(`${what}: label ${i} is ${l}, labels must be 0 or 1`);
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return null;
  return { order: sortDescending(scores), positives, negatives };
}

function sortDescending(scores: ArrayLike<number>): Int32Array {
  const n = scores.length;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  // Ties broken by index only so the order is deterministic; no metric here depends on it.
  order.sort((a, b) => (scores[b] > scores[a] ? 1 : scores[b] < scores[a] ? -1 : a - b));
  return order;
}

/**
 * Walk the distinct-score groups from the highest score down, calling `visit`
 * with the cumulative true/false positive counts after each group.
 */
function forEachThreshold(scores: ArrayLike<number>, labels: Labels, p: Prepared, visit: (tp: number, fp: number) => boolean | void): void {
  const { order } = p;
  const n = order.length;
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < n; i++) {
    const row = order[i];
    if (labels[row] === 1) tp++;
    else fp++;
    if (i === n - 1 || scores[order[i + 1]] !== scores[row]) {
      if (visit(tp, fp) === false) return;
    }
  }
}

/**
 * Area under the ROC curve, equal to scikit-learn's `roc_auc_score`: the
 * probability that a random poison scores above a random clean sample, ties
 * counting 1/2. `null` when only one class is present.
 */
export function auroc(scores: ArrayLike<number>, labels: Labels): number | null {
  const p = prepare(scores, labels, 'auroc');
  if (!p) return null;
  // Trapezoids between consecutive distinct thresholds: a tied group adds a
  // diagonal segment, which is exactly the 1/2 credit for tied pairs.
  let area = 0;
  let prevTp = 0;
  let prevFp = 0;
  forEachThreshold(scores, labels, p, (tp, fp) => {
    area += (fp - prevFp) * (tp + prevTp);
    prevTp = tp;
    prevFp = fp;
  });
  return area / (2 * p.positives * p.negatives);
}

/**
 * Average precision, equal to scikit-learn's `average_precision_score`:
 * sum over distinct thresholds of (recall step) x (precision at that
 * threshold), no interpolation. `null` when only one class is present.
 */
export function auprc(scores: ArrayLike<number>, labels: Labels): number | null {
  const p = prepare(scores, labels, 'auprc');
  if (!p) return null;
  let ap = 0;
  let prevTp = 0;
  forEachThreshold(scores, labels, p, (tp, fp) => {
    if (tp !== prevTp) ap += ((tp - prevTp) / p.positives) * (tp / (tp + fp));
    prevTp = tp;
    return tp < p.positives;
  });
  return ap;
}

/**
 * False-positive rate at the first distinct-score threshold whose true-positive
 * rate reaches `tpr` (the smallest FPR among ROC points with TPR >= tpr).
 * `null` when only one class is present.
 */
export function fprAtTpr(scores: ArrayLike<number>, labels: Labels, tpr = 0.95): number | null {
  if (!(tpr > 0 && tpr <= 1)) throw new RangeError(`fprAtTpr: tpr must be in (0, 1], got ${tpr}`);
  const p = prepare(scores, labels, 'fprAtTpr');
  if (!p) return null;
  let result = 1;
  forEachThreshold(scores, labels, p, (tp, fp) => {
    if (tp / p.positives >= tpr) {
      result = fp / p.negatives;
      return false;
    }
    return true;
  });
  return result;
}

/**
 * Share of all positives found among the `count` highest scores. A tied group
 * straddling the cut counts with its expected share (ties broken at random),
 * so the value does not depend on row order. `null` when only one class is
 * present.
 */
export function recallAtCount(scores: ArrayLike<number>, labels: Labels, count: number): number | null {
  if (!(count >= 0) || !Number.isInteger(count)) throw new RangeError(`recallAtCount: count must be a non-negative integer, got ${count}`);
  const p = prepare(scores, labels, 'recallAtCount');
  if (!p) return null;
  const { order } = p;
  const n = order.length;
  const cut = Math.min(count, n);
  let found = 0;
  let i = 0;
  while (i < cut) {
    // Extent of the tied group starting at i.
    let j = i;
    let groupPos = 0;
    const s = scores[order[i]];
    while (j < n && scores[order[j]] === s) {
      if (labels[order[j]] === 1) groupPos++;
      j++;
    }
    const taken = Math.min(j, cut) - i;
    found += (groupPos * taken) / (j - i);
    i = j;
  }
  return found / p.positives;
}

/** Average (fractional) ranks, 1-based, of `values`; ties share their mean rank. */
export function averageRanks(values: ArrayLike<number>): Float64Array {
  const n = values.length;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => (values[a] < values[b] ? -1 : values[a] > values[b] ? 1 : a - b));
  const ranks = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i + 1;
    while (j < n && values[order[j]] === values[order[i]]) j++;
    const rank = (i + 1 + j) / 2; // mean of the 1-based ranks i+1..j
    for (let t = i; t < j; t++) ranks[order[t]] = rank;
    i = j;
  }
  return ranks;
}

/**
 * Spearman rank correlation (Pearson correlation of average ranks, as
 * `scipy.stats.spearmanr`). `null` when undefined: fewer than 2 values or a
 * constant input. Throws on NaN.
 */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number | null {
  const n = a.length;
  if (b.length !== n) throw new RangeError(`spearman: lengths differ (${n} vs ${b.length})`);
  for (let i = 0; i < n; i++) {
    if (a[i] !== a[i] || b[i] !== b[i]) throw new RangeError(`spearman: value ${i} is NaN`);
  }
  if (n < 2) return null;
  const ra = averageRanks(a);
  const rb = averageRanks(b);
  const mean = (n + 1) / 2;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const x = ra[i] - mean;
    const y = rb[i] - mean;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  if (saa === 0 || sbb === 0) return null;
  return sab / Math.sqrt(saa * sbb);
}

/** All detection metrics of one score vector, for logs and summaries. */
export interface DetectionReport {
  auroc: number | null;
  auprc: number | null;
  fprAt95Tpr: number | null;
  /** Recall among the `positives` highest scores (= R-precision). */
  recallAtPositives: number | null;
}

/** AUROC, AP, FPR@95%TPR and recall at the number of positives in one call. */
export function detectionReport(scores: ArrayLike<number>, labels: Labels): DetectionReport {
  let positives = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === 1) positives++;
  return {
    auroc: auroc(scores, labels),
    auprc: auprc(scores, labels),
    fprAt95Tpr: fprAtTpr(scores, labels, 0.95),
    recallAtPositives: recallAtCount(scores, labels, positives),
  };
}
