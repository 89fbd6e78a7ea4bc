import { hnswNeighbors, loadHnswlib, type HnswOptions } from '../hnsw.js';
import { checkSearchInput, type NeighborGraph } from '../types.js';
import { knnPool, resolveThreads } from './pool.js';

export interface ParallelHnswOptions extends HnswOptions {
  /** Worker threads = index partitions (default: os.availableParallelism()). */
  threads?: number;
  /** Below this many points the search runs in the calling thread with one index (default 4096; 0: always threads). */
  inThreadBelow?: number;
}

let nextJob = 1;

/**
 * Approximate k-NN on worker threads with hnswlib-node, which has no batch
 * API and runs one thread per index: the points are split into `threads`
 * contiguous partitions, each thread builds an HNSW index over one
 * (construction in parallel, each index 1/threads of the points), then
 * queries every point against it (k + 1 labels); the threads' candidates
 * are merged and re-ranked with exact distances (self dropped by index,
 * ties by index), also in parallel. Each point gets the best of threads x
 * (k + 1) candidates from indexes built over fewer points each, so recall
 * is at least that of one index in practice; but the neighbours depend on
 * the thread count (the partition), unlike the exact search.
 *
 * Cost: construction ~1/threads of one index; queries do not shrink (every
 * point queries every partition); the binding converts each row to a JS
 * array per call.
 */
export async function parallelHnswNeighbors(points: Float32Array, n: number, d: number, k: number, options: ParallelHnswOptions = {}): Promise<NeighborGraph> {
  checkSearchInput(points, n, d, k, 'HNSW neighbour search');
  const threads = resolveThreads(options.threads);
  if (n < (options.inThreadBelow ?? 4096)) return hnswNeighbors(points, n, d, k, options);
  loadHnswlib(); // a missing native build fails here, in the caller's thread, with the fix named
  const distance = options.distance ?? 'l2';
  const parts = Math.min(threads, Math.floor(n / (k + 1)));
  const shared = new SharedArrayBuffer(n * d * 4);
  new Float32Array(shared).set(points.subarray(0, n * d));
  const want = k + 1;
  const width = parts * want;
  const candidates = new SharedArrayBuffer(n * width * 4);
  const indices = new SharedArrayBuffer(n * k * 4);
  const distances = new SharedArrayBuffer(n * k * 4);
  const pool = knnPool(threads);
  const job = nextJob++;
  const bound = (p: number) => Math.round((p * n) / parts);
  const M = options.M ?? 16;
  const efConstruction = options.efConstruction ?? 200;
  const efSearch = Math.max(options.efSearch ?? 64, k + 1);
  const seed = options.seed ?? 100;
  try {
    await Promise.all(
      Array.from({ length: parts }, (_, p) =>
        pool.runOn(p, { type: 'hnsw-build', job, points: shared, n, d, from: bound(p), to: bound(p + 1), distance, M, efConstruction, seed: seed + p }),
      ),
    );
    options.onProgress?.(Math.floor(n / 2), n);
    await Promise.all(Array.from({ length: parts }, (_, p) => pool.runOn(p, { type: 'hnsw-query', job, efSearch, want, candidates, slots: parts, slot: p })));
    const step = Math.ceil(n / threads);
    await Promise.all(
      Array.from({ length: threads }, (_, w) =>
        pool.runOn(w, { type: 'hnsw-refine', job, points: shared, n, d, k, distance, candidates, width, from: Math.min(n, w * step), to: Math.min(n, (w + 1) * step), indices, distances }),
      ),
    );
    options.onProgress?.(n, n);
    return { n, k, indices: new Int32Array(indices).slice(), distances: new Float32Array(distances).slice() };
  } finally {
    if (pool.usable) await Promise.all(Array.from({ length: parts }, (_, p) => pool.runOn(p, { type: 'hnsw-release', job }))).catch(() => undefined);
  }
}
