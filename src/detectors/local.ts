import type { NeighborGraph } from '../neighbors/types.js';

/**
 * Textbook local outlier scores on a neighbour graph (higher = more
 * suspicious). Notation: d_1(x) <= ... <= d_k(x) are the distances from x to
 * its 1st..k-th nearest *other* point (graph row x, columns 0..k-1), N_k(x)
 * those k points, d_k(x) the k-distance. Every distance is floored at `eps`
 * first (see the duplicate policy in ./index.ts); all sums run in float64.
 */

/** Relative size of the distance floor: eps = EPS_RELATIVE x median positive k-distance. */
export const EPS_RELATIVE = 1e-6;
/** The floor when no point has a positive k-distance (everything identical). */
export const EPS_ABSOLUTE = 1e-12;

export type GraphScoreKind = 'kdist' | 'slof' | 'lof' | 'lid' | 'dao';

/** Raw (unfloored) k-distance of every row. */
export function kDistances(graph: NeighborGraph): Float64Array {
  const { n, k, distances } = graph;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = distances[i * k + k - 1];
  return out;
}

/** eps = 1e-6 x the median of the positive k-distances (mean of the two middle ones for an even count); 1e-12 if none. */
export function distanceFloor(graph: NeighborGraph): number {
  const { n, k, distances } = graph;
  let count = 0;
  for (let i = 0; i < n; i++) if (distances[i * k + k - 1] > 0) count++;
  if (count === 0) return EPS_ABSOLUTE;
  const positive = new Float64Array(count);
  count = 0;
  for (let i = 0; i < n; i++) {
    const v = distances[i * k + k - 1];
    if (v > 0) positive[count++] = v;
  }
  const mid = count >> 1;
  const upper = select(positive, mid);
  if (count % 2 === 1) return EPS_RELATIVE * upper;
  // after select, positive[0..mid) holds the smaller half: its maximum is the lower middle
  let lower = -Infinity;
  for (let i = 0; i < mid; i++) if (positive[i] > lower) lower = positive[i];
  return EPS_RELATIVE * ((lower + upper) / 2);
}

/** In-place quickselect: the value of rank `r` (0-based); a[0..r) end up <= it. */
function select(a: Float64Array, r: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (hi > lo) {
    // median of three as the pivot keeps sorted inputs linear
    const m = (lo + hi) >> 1;
    const p = Math.max(Math.min(a[lo], a[m]), Math.min(Math.max(a[lo], a[m]), a[hi]));
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < p) i++;
      while (a[j] > p) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (r <= j) hi = j;
    else if (r >= i) lo = i;
    else return a[r];
  }
  return a[r];
}

function flooredKDistances(graph: NeighborGraph, eps: number): Float64Array {
  const dk = kDistances(graph);
  for (let i = 0; i < dk.length; i++) if (dk[i] < eps) dk[i] = eps;
  return dk;
}

/** k-distance d_k(x), unfloored: a true distance, no ratio to protect. */
export function kdistScores(graph: NeighborGraph): Float64Array {
  return kDistances(graph);
}

/** Simplified LOF: mean over o in N_k(x) of d_k(x) / d_k(o). */
export function slofScores(graph: NeighborGraph, eps: number): Float64Array {
  const { n, k, indices } = graph;
  const inv = flooredKDistances(graph, eps);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = inv[i];
  for (let i = 0; i < n; i++) inv[i] = 1 / inv[i];
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * k;
    for (let t = 0; t < k; t++) s += inv[indices[o + t]];
    out[i] = (out[i] * s) / k;
  }
  return out;
}

/**
 * Local outlier factor with reachability distance, as scikit-learn's
 * LocalOutlierFactor (`-negative_outlier_factor_`):
 * reach(x, o) = max(d_k(o), d(x, o)), lrd(x) = 1 / mean_o reach(x, o),
 * LOF(x) = mean_o lrd(o) / lrd(x). scikit-learn adds 1e-10 to the mean
 * reachability instead of flooring; on data without (near) duplicates the two
 * agree to ~1e-9 relative.
 */
export function lofScores(graph: NeighborGraph, eps: number): Float64Array {
  const { n, k, indices, distances } = graph;
  const dk = flooredKDistances(graph, eps);
  const meanReach = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * k;
    for (let t = 0; t < k; t++) {
      const reachFloor = dk[indices[o + t]];
      const dist = distances[o + t];
      s += dist > reachFloor ? dist : reachFloor; // dk is already >= eps
    }
    meanReach[i] = s / k;
  }
  // mean_o lrd(o) / lrd(x) = meanReach(x) * mean_o 1 / meanReach(o)
  const lrd = dk; // reused as 1 / meanReach
  for (let i = 0; i < n; i++) lrd[i] = 1 / meanReach[i];
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * k;
    for (let t = 0; t < k; t++) s += lrd[indices[o + t]];
    out[i] = (meanReach[i] * s) / k;
  }
  return out;
}

/**
 * Local intrinsic dimensionality, maximum-likelihood estimate
 *   LID(x) = -k / sum_{i=1}^{k-1} log(d_i(x) / d_k(x))
 * with 1-based neighbour ranks i (d_1 = nearest other point) and numerator k
 * (RESEARCH.md; the i = k term is log 1 = 0, so summing to k is the same).
 * When every d_i equals d_k after flooring (inside a group of >= k+1
 * duplicates, or exactly equidistant neighbours) the sum is 0 and the MLE
 * diverges; such points get `degenerate` (detectors pass the embedding
 * dimension, the largest meaningful local dimension) instead of Infinity.
 * With k = 1 the sum is empty and every point gets `degenerate`.
 */
export function lidScores(graph: NeighborGraph, eps: number, degenerate: number): Float64Array {
  const { n, k, distances } = graph;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    const dk = Math.max(distances[o + k - 1], eps);
    let s = 0;
    for (let t = 0; t < k - 1; t++) s += Math.log(Math.max(distances[o + t], eps) / dk);
    out[i] = s < 0 ? -k / s : degenerate;
  }
  return out;
}

/**
 * Dimensionality-aware outlier score:
 *   DAO(x) = mean over o in N_k(x) of LID(o) * log(d_k(x) / d_k(o)),
 * LID(o) from o's own k neighbours (lidScores, same degenerate rule).
 */
export function daoScores(graph: NeighborGraph, eps: number, degenerate: number): Float64Array {
  const { n, k, indices } = graph;
  const dk = flooredKDistances(graph, eps);
  const lid = lidScores(graph, eps, degenerate);
  const logDk = new Float64Array(n);
  for (let i = 0; i < n; i++) logDk[i] = Math.log(dk[i]);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let t = 0; t < k; t++) {
      const o = indices[i * k + t];
      s += lid[o] * (logDk[i] - logDk[o]);
    }
    out[i] = s / k;
  }
  return out;
}

/** One textbook score on a graph; `dimension` is the embedding dimension (LID's degenerate value). */
export function scoreGraph(kind: GraphScoreKind, graph: NeighborGraph, dimension: number): Float64Array {
  if (kind === 'kdist') return kdistScores(graph);
  const eps = distanceFloor(graph);
  switch (kind) {
    case 'slof':
      return slofScores(graph, eps);
    case 'lof':
      return lofScores(graph, eps);
    case 'lid':
      return lidScores(graph, eps, dimension);
    case 'dao':
      return daoScores(graph, eps, dimension);
  }
}
