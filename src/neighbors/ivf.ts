import { KernelHeap } from '../backend/wasm/heap.js';
import { localHeap, searchSets, DEFAULT_TILE } from './parallel/engine.js';
import { Rng } from '../util/rng.js';
import { checkSearchInput, type Distance, type NeighborGraph } from './types.js';

/**
 * Approximate whole-set k-NN by a coarse partition searched with the exact
 * GEMM kernels (an inverted file, IVF): k-means on a sample gives `lists`
 * centroids; every point joins the list of its nearest centroid; the points
 * of a list are searched exactly against the points of the `probes` lists
 * whose centroids are nearest to their own list's centroid (their own list
 * first). Each list is one dense block of work for the kernels (~n/lists
 * queries x ~probes n/lists references), so the cost is
 * 2 n (probes n / lists) d multiply-adds instead of n^2 d, at the speed of
 * the exact search. Neighbours outside the probed lists are missed: recall
 * grows with `probes` (measured by bench/knn.ts and the tests). Distances
 * are exact; rows are sorted by (distance, index) and never contain self.
 */

export interface IvfOptions {
  distance?: Distance;
  /** Number of lists (k-means centroids); default round(sqrt(n)). */
  lists?: number;
  /** Lists each list's points are searched against, its own included; default 8. */
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
  const probes = Math.max(1, Math.min(options.probes ?? 8, lists));
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

/** Nearest centroid of points [from, to) (ties: lower centroid index). */
export function assignRange(heap: KernelHeap, points: Float32Array, d: number, from: number, to: number, centroids: Float32Array, lists: number, distance: Distance, out: Int32Array): void {
  const block = 65536;
  for (let s = from; s < to; s += block) {
    const e = Math.min(to, s + block);
    const g = searchSets(heap, points.subarray(s * d, e * d), e - s, centroids, lists, d, 1, distance, null, DEFAULT_TILE);
    out.set(g.indices, s);
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
    assignRange(heap, sample, d, 0, m, centroids, C, 'l2', assign);
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

/** For every centroid, the `probes` lists to search: itself, then its nearest other centroids. */
export function probeLists(heap: KernelHeap, centroids: Float32Array, lists: number, d: number, probes: number): Int32Array {
  const out = new Int32Array(lists * probes);
  for (let c = 0; c < lists; c++) out[c * probes] = c;
  if (probes === 1) return out;
  const self = Int32Array.from({ length: lists }, (_, c) => c);
  const g = searchSets(heap, centroids, lists, centroids, lists, d, probes - 1, 'l2', self);
  for (let c = 0; c < lists; c++) out.set(g.indices.subarray(c * (probes - 1), (c + 1) * (probes - 1)), c * probes + 1);
  return out;
}

/** Members of every list, contiguous: order[start[c] .. start[c + 1]) in ascending index. */
export function listMembers(assign: Int32Array, lists: number): { order: Int32Array; start: Int32Array } {
  const start = new Int32Array(lists + 1);
  for (const c of assign) start[c + 1]++;
  for (let c = 0; c < lists; c++) start[c + 1] += start[c];
  const fill = start.slice(0, lists);
  const order = new Int32Array(assign.length);
  for (let i = 0; i < assign.length; i++) order[fill[assign[i]]++] = i;
  return { order, start };
}

/**
 * Search the points of list c against the points of its probed lists,
 * writing their rows of the graph (global indices, sorted by distance then
 * index). When the probed lists hold fewer than k + 1 points, the next
 * nearest lists are added (probe order of list c, then all).
 */
export function searchList(
  heap: KernelHeap,
  points: Float32Array,
  d: number,
  k: number,
  distance: Distance,
  c: number,
  order: Int32Array,
  start: Int32Array,
  probes: Int32Array,
  probeCount: number,
  outIdx: Int32Array,
  outDist: Float32Array,
): void {
  const m = start[c + 1] - start[c];
  if (m === 0) return;
  const lists = start.length - 1;
  const chosen: number[] = [];
  let r = 0;
  for (let t = 0; t < probeCount; t++) {
    const l = probes[c * probeCount + t];
    chosen.push(l);
    r += start[l + 1] - start[l];
  }
  for (let l = 0; r < k + 1 && l < lists; l++) {
    if (chosen.includes(l)) continue;
    chosen.push(l);
    r += start[l + 1] - start[l];
  }
  const refIds = new Int32Array(r);
  let w = 0;
  for (const l of chosen) for (let t = start[l]; t < start[l + 1]; t++) refIds[w++] = order[t];
  const queries = refIds.subarray(0, m); // list c comes first: query t is reference t
  const g = searchSets(heap, gather(points, d, queries), m, gather(points, d, refIds), r, d, k, distance, Int32Array.from({ length: m }, (_, t) => t));
  const dist = new Float32Array(k);
  const idx = new Int32Array(k);
  for (let t = 0; t < m; t++) {
    // back to global indices; ties by global index as everywhere else
    for (let j = 0; j < k; j++) {
      const gi = refIds[g.indices[t * k + j]];
      const gd = g.distances[t * k + j];
      let p = j;
      while (p > 0 && (dist[p - 1] > gd || (dist[p - 1] === gd && idx[p - 1] > gi))) {
        dist[p] = dist[p - 1];
        idx[p] = idx[p - 1];
        p--;
      }
      dist[p] = gd;
      idx[p] = gi;
    }
    const row = queries[t] * k;
    outIdx.set(idx, row);
    outDist.set(dist, row);
  }
}

/** IVF k-NN of every point in the calling thread (see the module comment). */
export function ivfNeighbors(points: Float32Array, n: number, d: number, k: number, options: IvfOptions = {}): NeighborGraph {
  checkSearchInput(points, n, d, k, 'IVF neighbour search');
  const distance = options.distance ?? 'l2';
  const plan = ivfPlan(n, k, options);
  const heap = localHeap();
  const centroids = trainCentroids(heap, points, n, d, plan, distance, options.seed ?? 1);
  const assign = new Int32Array(n);
  assignRange(heap, points, d, 0, n, centroids, plan.lists, distance, assign);
  const probes = probeLists(heap, centroids, plan.lists, d, plan.probes);
  const { order, start } = listMembers(assign, plan.lists);
  const indices = new Int32Array(n * k);
  const distances = new Float32Array(n * k);
  for (let c = 0; c < plan.lists; c++) searchList(heap, points, d, k, distance, c, order, start, probes, plan.probes, indices, distances);
  return { n, k, indices, distances };
}
