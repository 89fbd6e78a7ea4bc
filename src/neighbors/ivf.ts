import { KernelHeap } from '../backend/wasm/heap.js';
import { localHeap, queryNeighbors, searchSets, DEFAULT_TILE } from './parallel/engine.js';
import { Rng } from '../util/rng.js';
import { checkSearchInput, type Distance, type NeighborGraph } from './types.js';

/**
 * Approximate whole-set k-NN by an inverted file (IVF) searched with the
 * exact GEMM kernels: k-means on a sample gives `lists` centroids, every
 * point joins the list of its nearest centroid and *probes* the lists of
 * its `probes` nearest centroids (its own first). A point's neighbours are
 * the k nearest among the members of the lists it probes: the faiss
 * IndexIVFFlat semantics, per point. The work is arranged per list, so that
 * it stays a dense product: the points probing list c, as one query block,
 * against the members of c, then merged into each point's running k best.
 * Cost 2 n (probes n / lists) d multiply-adds instead of n^2 d, at the rate
 * of the exact kernels. Neighbours outside the probed lists are missed:
 * recall grows with probes / lists (measured by bench/knn.ts and the tests).
 * Distances are exact; rows are sorted by (distance, index) and never
 * contain self. A point whose probed lists hold fewer than k other points
 * is searched exactly against the whole set.
 *
 * (An earlier version probed per list — every member of a list searched the
 * same lists, those nearest to its centroid — which misses the neighbours
 * across a list's boundary: recall 0.79 against 0.954 per point for the
 * same 8 of 316 lists, at 100k on bench/knn.ts's data.)
 */

export interface IvfOptions {
  distance?: Distance;
  /** Number of lists (k-means centroids); default round(sqrt(n)). */
  lists?: number;
  /** Lists each point searches, its own included; default 16. */
  probes?: number;
  /** k-means iterations; default 10. */
  iterations?: number;
  /** k-means training sample; default min(n, 40 x lists). */
  sample?: number;
  seed?: number;
}

export interface IvfPlan {
  lists: number;
  probes: number;
  iterations: number;
  sample: number;
}

/** Resolved IVF parameters for n points (lists capped so every list can average at least 2k points). */
export function ivfPlan(n: number, k: number, options: IvfOptions = {}): IvfPlan {
  const lists = Math.max(1, Math.min(options.lists ?? Math.round(Math.sqrt(n)), Math.floor(n / (2 * (k + 1)))));
  const probes = Math.max(1, Math.min(options.probes ?? 16, lists));
  const iterations = options.iterations ?? 10;
  const sample = Math.min(n, Math.max(lists, options.sample ?? 40 * lists));
  for (const [name, v] of Object.entries({ lists, probes, iterations, sample })) {
    if (!Number.isInteger(v) || v < (name === 'iterations' ? 0 : 1)) throw new RangeError(`ivf: ${name} must be a positive integer, got ${v}`);
  }
  return { lists, probes, iterations, sample };
}

function gather(points: Float32Array, d: number, rows: ArrayLike<number>, count = rows.length): Float32Array {
  const out = new Float32Array(count * d);
  for (let t = 0; t < count; t++) out.set(points.subarray(rows[t] * d, rows[t] * d + d), t * d);
  return out;
}

/**
 * The `probes` nearest centroids of points [from, to), nearest first (ties:
 * lower centroid index), into rows of `out` (n x probes).
 */
export function nearestLists(heap: KernelHeap, points: Float32Array, d: number, from: number, to: number, centroids: Float32Array, lists: number, probes: number, distance: Distance, out: Int32Array): void {
  const block = 65536;
  for (let s = from; s < to; s += block) {
    const e = Math.min(to, s + block);
    const g = searchSets(heap, points.subarray(s * d, e * d), e - s, centroids, lists, d, probes, distance, null, DEFAULT_TILE);
    out.set(g.indices, s * probes);
  }
}

/**
 * k-means (Lloyd) on a random sample: `lists` centroids. Cosine trains on
 * unit rows (spherical k-means). Empty clusters are re-seeded from the
 * sample. Deterministic for a seed.
 */
export function trainCentroids(heap: KernelHeap, points: Float32Array, n: number, d: number, plan: IvfPlan, distance: Distance, seed: number): Float32Array {
  const rng = new Rng(seed, 'ivf/kmeans');
  const rows = rng.permutation(n).subarray(0, plan.sample);
  const sample = gather(points, d, rows);
  const m = plan.sample;
  if (distance === 'cosine') {
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let f = 0; f < d; f++) s += sample[i * d + f] ** 2;
      const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
      for (let f = 0; f < d; f++) sample[i * d + f] *= inv;
    }
  }
  const C = plan.lists;
  const centroids = sample.slice(0, C * d); // the sample is a random permutation: its first rows are a random init
  const assign = new Int32Array(m);
  const sums = new Float64Array(C * d);
  const counts = new Int32Array(C);
  for (let it = 0; it < plan.iterations; it++) {
    nearestLists(heap, sample, d, 0, m, centroids, C, 1, 'l2', assign);
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < m; i++) {
      const c = assign[i];
      counts[c]++;
      for (let f = 0; f < d; f++) sums[c * d + f] += sample[i * d + f];
    }
    for (let c = 0; c < C; c++) {
      if (counts[c] === 0) {
        const row = rng.int(m);
        centroids.set(sample.subarray(row * d, row * d + d), c * d);
        continue;
      }
      for (let f = 0; f < d; f++) centroids[c * d + f] = sums[c * d + f] / counts[c];
    }
  }
  return centroids;
}

/** Members of every list, contiguous: order[start[c] .. start[c + 1]) in ascending index. */
export function listMembers(assign: Int32Array, lists: number, stride = 1): { order: Int32Array; start: Int32Array } {
  const n = assign.length / stride;
  const start = new Int32Array(lists + 1);
  for (let i = 0; i < n; i++) start[assign[i * stride] + 1]++;
  for (let c = 0; c < lists; c++) start[c + 1] += start[c];
  const fill = start.slice(0, lists);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[fill[assign[i * stride]]++] = i;
  return { order, start };
}

/**
 * For every list, the points of `owned` (ascending) that probe it,
 * contiguous and ascending: queries[start[c] .. start[c + 1]).
 */
export function listProbers(probeOf: Int32Array, probes: number, lists: number, owned: Int32Array): { queries: Int32Array; start: Int32Array } {
  const start = new Int32Array(lists + 1);
  for (const q of owned) for (let t = 0; t < probes; t++) start[probeOf[q * probes + t] + 1]++;
  for (let c = 0; c < lists; c++) start[c + 1] += start[c];
  const fill = start.slice(0, lists);
  const queries = new Int32Array(start[lists]);
  for (const q of owned) for (let t = 0; t < probes; t++) queries[fill[probeOf[q * probes + t]]++] = q;
  return { queries, start };
}

/**
 * Merge candidates (sorted by (distance, index)) into row `row` of the
 * running k best, kept sorted by (distance, index); empty slots hold index
 * -1 and sort last.
 */
export function mergeRow(outIdx: Int32Array, outDist: Float32Array, row: number, k: number, candIdx: Int32Array, candDist: Float32Array, from: number, count: number): void {
  const o = row * k;
  for (let t = 0; t < count; t++) {
    const gi = candIdx[from + t];
    const gd = candDist[from + t];
    const last = outIdx[o + k - 1];
    if (last >= 0 && (gd > outDist[o + k - 1] || (gd === outDist[o + k - 1] && gi > last))) return; // candidates are sorted: the rest are worse
    let p = k - 1;
    while (p > 0) {
      const pi = outIdx[o + p - 1];
      if (pi >= 0 && (outDist[o + p - 1] < gd || (outDist[o + p - 1] === gd && pi < gi))) break;
      outIdx[o + p] = pi;
      outDist[o + p] = outDist[o + p - 1];
      p--;
    }
    outIdx[o + p] = gi;
    outDist[o + p] = gd;
  }
}

/**
 * Search list c for the points that probe it (`queries`, global indices,
 * ascending) and merge the results into their rows of the running graph.
 * `ownList[q]`/`ownSlot[q]` place a point among its own list's members, so
 * that it never finds itself.
 */
export function searchListFor(
  heap: KernelHeap,
  points: Float32Array,
  d: number,
  k: number,
  distance: Distance,
  c: number,
  members: Int32Array,
  queries: Int32Array,
  ownList: Int32Array,
  ownSlot: Int32Array,
  outIdx: Int32Array,
  outDist: Float32Array,
): void {
  const r = members.length;
  const q = queries.length;
  // with the self exclusion the kernels keep at most r - 1 candidates per row; a
  // point that needs the r-th (a list of at most k points it is not in) ends
  // short and is searched exactly by the caller
  const kk = Math.min(k, r - 1);
  if (q === 0 || kk < 1) return;
  const self = new Int32Array(q);
  for (let t = 0; t < q; t++) self[t] = ownList[queries[t]] === c ? ownSlot[queries[t]] : -1;
  const g = searchSets(heap, gather(points, d, queries), q, gather(points, d, members), r, d, kk, distance, self);
  for (let t = 0; t < kk * q; t++) g.indices[t] = members[g.indices[t]];
  for (let t = 0; t < q; t++) mergeRow(outIdx, outDist, queries[t], k, g.indices, g.distances, t * kk, kk);
}

/** Rows of the graph with an empty slot (their probed lists held fewer than k other points). */
export function shortRows(outIdx: Int32Array, n: number, k: number): Int32Array {
  const rows: number[] = [];
  for (let i = 0; i < n; i++) if (outIdx[i * k + k - 1] < 0) rows.push(i);
  return Int32Array.from(rows);
}

/** The exact rows for the short ones (few, if any: tiny or lopsided lists). */
export function fillShortRows(heap: KernelHeap, points: Float32Array, n: number, d: number, k: number, distance: Distance, outIdx: Int32Array, outDist: Float32Array): number {
  const rows = shortRows(outIdx, n, k);
  if (rows.length === 0) return 0;
  const g = queryNeighbors(heap, points, n, d, rows, k, distance);
  for (let t = 0; t < rows.length; t++) {
    outIdx.set(g.indices.subarray(t * k, t * k + k), rows[t] * k);
    outDist.set(g.distances.subarray(t * k, t * k + k), rows[t] * k);
  }
  return rows.length;
}

/** Where every point sits in its own list: ownList[i] = its list, ownSlot[i] = its position among the members. */
export function ownPlaces(order: Int32Array, start: Int32Array): { ownList: Int32Array; ownSlot: Int32Array } {
  const n = order.length;
  const ownList = new Int32Array(n);
  const ownSlot = new Int32Array(n);
  for (let c = 0; c + 1 < start.length; c++) {
    for (let t = start[c]; t < start[c + 1]; t++) {
      ownList[order[t]] = c;
      ownSlot[order[t]] = t - start[c];
    }
  }
  return { ownList, ownSlot };
}

/**
 * Every list searched for the points of `owned` that probe it; rows of the
 * other points are left untouched (threads split the points this way, each
 * owning its rows, so no two threads ever merge into the same row).
 */
export function searchOwned(
  heap: KernelHeap,
  points: Float32Array,
  d: number,
  k: number,
  distance: Distance,
  probeOf: Int32Array,
  probes: number,
  lists: number,
  owned: Int32Array,
  outIdx: Int32Array,
  outDist: Float32Array,
): void {
  const { order, start } = listMembers(probeOf, lists, probes);
  const { ownList, ownSlot } = ownPlaces(order, start);
  const probers = listProbers(probeOf, probes, lists, owned);
  for (let c = 0; c < lists; c++) {
    searchListFor(heap, points, d, k, distance, c, order.subarray(start[c], start[c + 1]), probers.queries.subarray(probers.start[c], probers.start[c + 1]), ownList, ownSlot, outIdx, outDist);
  }
}

/** The points a thread owns: every `threads`-th, from `thread`. */
export function ownedPoints(n: number, thread: number, threads: number): Int32Array {
  const out = new Int32Array(Math.max(0, Math.ceil((n - thread) / threads)));
  for (let t = 0; t < out.length; t++) out[t] = thread + t * threads;
  return out;
}

/** IVF k-NN of every point in the calling thread (see the module comment). */
export function ivfNeighbors(points: Float32Array, n: number, d: number, k: number, options: IvfOptions = {}): NeighborGraph {
  checkSearchInput(points, n, d, k, 'IVF neighbour search');
  const distance = options.distance ?? 'l2';
  const plan = ivfPlan(n, k, options);
  const heap = localHeap();
  const centroids = trainCentroids(heap, points, n, d, plan, distance, options.seed ?? 1);
  const probeOf = new Int32Array(n * plan.probes);
  nearestLists(heap, points, d, 0, n, centroids, plan.lists, plan.probes, distance, probeOf);
  const indices = new Int32Array(n * k).fill(-1);
  const distances = new Float32Array(n * k).fill(Infinity);
  searchOwned(heap, points, d, k, distance, probeOf, plan.probes, plan.lists, ownedPoints(n, 0, 1), indices, distances);
  fillShortRows(heap, points, n, d, k, distance, indices, distances);
  return { n, k, indices, distances };
}
