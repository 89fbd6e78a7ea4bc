import { fillShortRows, ivfNeighbors, ivfPlan, type IvfOptions } from '../ivf.js';
import { checkSearchInput, type NeighborGraph } from '../types.js';
import { localHeap } from './engine.js';
import { knnPool, resolveThreads } from './pool.js';

export interface ParallelIvfOptions extends IvfOptions {
  /** Worker threads (default os.availableParallelism()). */
  threads?: number;
  /** Below this many points the search runs in the calling thread (default 4096; 0: always threads). */
  inThreadBelow?: number;
}

/**
 * `ivfNeighbors` on worker threads, the same graph: k-means in one thread
 * (a small sample), the probed lists of every point split by point ranges,
 * then every thread searches every list for the points it owns (every
 * threads-th point), so that each row of the graph has one writer. The
 * points are copied once into shared memory.
 */
export async function parallelIvfNeighbors(points: Float32Array, n: number, d: number, k: number, options: ParallelIvfOptions = {}): Promise<NeighborGraph> {
  checkSearchInput(points, n, d, k, 'IVF neighbour search');
  const threads = resolveThreads(options.threads);
  if (n < (options.inThreadBelow ?? 4096)) return ivfNeighbors(points, n, d, k, options);
  const distance = options.distance ?? 'l2';
  const plan = ivfPlan(n, k, options);
  const shared = new SharedArrayBuffer(n * d * 4);
  new Float32Array(shared).set(points.subarray(0, n * d));
  const pool = knnPool(threads);
  const centroids = await pool.run<Float32Array>({ type: 'ivf-train', points: shared, n, d, plan, distance, seed: options.seed ?? 1 });
  const probeOf = new SharedArrayBuffer(n * plan.probes * 4);
  const step = Math.ceil(n / threads);
  await Promise.all(
    Array.from({ length: threads }, (_, w) =>
      pool.runOn(w, { type: 'ivf-probe', points: shared, n, d, from: Math.min(n, w * step), to: Math.min(n, (w + 1) * step), centroids, lists: plan.lists, probes: plan.probes, distance, probeOf }),
    ),
  );
  const indices = new SharedArrayBuffer(n * k * 4);
  const distances = new SharedArrayBuffer(n * k * 4);
  new Int32Array(indices).fill(-1);
  new Float32Array(distances).fill(Infinity);
  const task = { type: 'ivf-lists' as const, points: shared, n, d, k, distance, probeOf, probes: plan.probes, lists: plan.lists, threads, indices, distances };
  await Promise.all(Array.from({ length: threads }, (_, w) => pool.runOn(w, { ...task, thread: w })));
  const graph = { n, k, indices: new Int32Array(indices).slice(), distances: new Float32Array(distances).slice() };
  fillShortRows(localHeap(), points, n, d, k, distance, graph.indices, graph.distances);
  return graph;
}
