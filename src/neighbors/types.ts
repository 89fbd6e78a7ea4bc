import { UserError } from '../util/errors.js';

export type Distance = 'l2' | 'cosine';

/**
 * k nearest neighbours of every point of a set. Row i lists the k nearest
 * *other* points of i (a point is excluded by index, never by distance, so
 * exact duplicates are neighbours of each other), ordered by ascending
 * distance, ties by ascending index.
 */
export interface NeighborGraph {
  n: number;
  k: number;
  /** n*k row-major neighbour indices. */
  indices: Int32Array;
  /** n*k true distances: L2, or cosine distance 1 - cos (a zero vector has cos 0 with everything). */
  distances: Float32Array;
}

/** Checks shared by every neighbour search; throws UserError for what a user controls (k vs n). */
export function checkSearchInput(points: ArrayLike<number>, n: number, d: number, k: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(d) || d < 1) throw new RangeError(`${what}: invalid shape n=${n}, d=${d}`);
  if (points.length !== n * d) throw new RangeError(`${what}: expected n*d = ${n * d} coordinates, got ${points.length}`);
  if (!Number.isInteger(k) || k < 1) throw new UserError(`${what}: k must be a positive integer, got ${k}`, 'K_INVALID', 'set filter.k to a positive integer');
  if (k > n - 1) {
    throw new UserError(
      `${what}: k = ${k} neighbours need at least k + 1 = ${k + 1} points, the set has ${n}`,
      'K_TOO_LARGE',
      'lower filter.k or score more samples (with filter.reference: sampled also raise filter.referenceSize)',
    );
  }
  // v * 0 is NaN exactly for NaN and +-Infinity: one branch-free pass, then find the row only if needed
  let probe = 0;
  for (let i = 0; i < points.length; i++) probe += points[i] * 0;
  if (probe === 0) return;
  for (let i = 0; i < points.length; i++) {
    const v = points[i];
    if (v - v !== 0) {
      throw new RangeError(`${what}: row ${Math.floor(i / d)} has a non-finite coordinate (${v}); detectors drop such rows before searching`);
    }
  }
}

/** The first k columns of a graph with more neighbours per row (rows are sorted, so this is the k-NN graph). */
export function truncateGraph(graph: NeighborGraph, k: number): NeighborGraph {
  if (k === graph.k) return graph;
  if (k > graph.k || k < 1) throw new RangeError(`truncateGraph: cannot take ${k} of ${graph.k} neighbours`);
  const indices = new Int32Array(graph.n * k);
  const distances = new Float32Array(graph.n * k);
  for (let i = 0; i < graph.n; i++) {
    indices.set(graph.indices.subarray(i * graph.k, i * graph.k + k), i * k);
    distances.set(graph.distances.subarray(i * graph.k, i * graph.k + k), i * k);
  }
  return { n: graph.n, k, indices, distances };
}

/** Euclidean row norms in float64. */
export function rowNorms(points: ArrayLike<number>, n: number, d: number): Float64Array {
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * d;
    for (let f = 0; f < d; f++) s += points[o + f] * points[o + f];
    norms[i] = Math.sqrt(s);
  }
  return norms;
}

/**
 * Distance between rows i and j computed in float64 from the coordinates.
 * `norms` (from rowNorms) is required for cosine.
 */
export function pointDistance(points: ArrayLike<number>, d: number, i: number, j: number, distance: Distance, norms?: Float64Array): number {
  const a = i * d;
  const b = j * d;
  if (distance === 'l2') {
    let s = 0;
    for (let f = 0; f < d; f++) {
      const t = points[a + f] - points[b + f];
      s += t * t;
    }
    return Math.sqrt(s);
  }
  const denom = norms![i] * norms![j];
  if (denom === 0) return 1;
  let dot = 0;
  for (let f = 0; f < d; f++) dot += points[a + f] * points[b + f];
  const dist = 1 - dot / denom;
  return dist < 0 ? 0 : dist > 2 ? 2 : dist;
}

/**
 * Turns candidate lists into final neighbour rows: recomputes every
 * candidate's distance exactly from the coordinates, drops the row's own
 * index and padding (-1), and keeps the k best by (distance, index). One
 * instance per search: it owns scratch arrays of length k.
 * Returns how many valid candidates the row had (callers fall back to a scan
 * when it is below k).
 */
export class CandidateRefiner {
  private readonly dist: Float64Array;
  private readonly idx: Int32Array;

  constructor(
    private readonly points: ArrayLike<number>,
    private readonly d: number,
    private readonly distance: Distance,
    private readonly norms: Float64Array | undefined,
    /** The k of the rows to produce. */
    capacity: number,
  ) {
    this.dist = new Float64Array(capacity);
    this.idx = new Int32Array(capacity);
  }

  refine(row: number, cand: Int32Array, from: number, count: number, k: number, outIdx: Int32Array, outDist: Float32Array): number {
    const { dist, idx } = this;
    let kept = 0;
    let valid = 0;
    for (let t = 0; t < count; t++) {
      const j = cand[from + t];
      if (j < 0 || j === row) continue;
      valid++;
      const dj = pointDistance(this.points, this.d, row, j, this.distance, this.norms);
      // Bounded insertion sort: only the best k are kept.
      let p: number;
      if (kept === k) {
        if (dj > dist[k - 1] || (dj === dist[k - 1] && j > idx[k - 1])) continue;
        p = k - 1;
      } else {
        p = kept++;
      }
      while (p > 0 && (dist[p - 1] > dj || (dist[p - 1] === dj && idx[p - 1] > j))) {
        dist[p] = dist[p - 1];
        idx[p] = idx[p - 1];
        p--;
      }
      dist[p] = dj;
      idx[p] = j;
    }
    const o = row * k;
    for (let t = 0; t < kept; t++) {
      outIdx[o + t] = idx[t];
      outDist[o + t] = dist[t];
    }
    return valid;
  }

  /** Exact scan over all points for one row (fallback when candidates ran short). */
  scan(row: number, n: number, k: number, outIdx: Int32Array, outDist: Float32Array): void {
    const all = new Int32Array(n);
    for (let j = 0; j < n; j++) all[j] = j;
    this.refine(row, all, 0, n, k, outIdx, outDist);
  }
}
