import { Arena, KernelHeap } from '../../backend/wasm/heap.js';
import { kernelExactNeighbors, kernelQueryNeighbors } from '../kernelSearch.js';
import { checkSearchInput, type Distance, type NeighborGraph } from '../types.js';
import {
  candidateCount,
  DEFAULT_TILE,
  fillQuerySelf,
  fillSet,
  gatherPoints,
  layoutLists,
  layoutScratch,
  layoutSet,
  REFINE_ROWS,
  resetLists,
  setCenter,
} from './engine.js';
import { knnPool, resolveThreads } from './pool.js';
import type { ExactPlan } from './protocol.js';

export interface ParallelExactOptions {
  distance?: Distance;
  /** Worker threads (default: os.availableParallelism()). */
  threads?: number;
  /** Tile side in rows (multiple of 16, default 256); results do not depend on it. */
  tile?: number;
  /**
   * Searches over fewer points than this run in the calling thread (the same
   * arithmetic, so the same result; threads cost more than they save on
   * small sets). Default 4096; 0 always uses threads.
   */
  inThreadBelow?: number;
}

let nextJob = 1;

/**
 * Exact k-NN of every point on `threads` worker threads sharing one wasm
 * heap: the kernels of ./engine.ts on the symmetric tiles, claimed
 * dynamically, each thread with its own candidate buffers, merged and
 * refined in parallel. Identical to `kernelExactNeighbors` (same arithmetic,
 * a kept set independent of the split). Memory: the points twice (raw and
 * packed), a candidate buffer of 2 (k + 4) + 16 entries (8 bytes each) per point and thread, and a 256 x 256
 * tile per thread; never n x n.
 */
export async function parallelExactNeighbors(points: Float32Array, n: number, d: number, k: number, options: ParallelExactOptions = {}): Promise<NeighborGraph> {
  checkSearchInput(points, n, d, k, 'exact neighbour search');
  const distance = options.distance ?? 'l2';
  const threads = resolveThreads(options.threads);
  const tile = options.tile ?? DEFAULT_TILE;
  if (n < (options.inThreadBelow ?? 4096)) return kernelExactNeighbors(points, n, d, k, { distance, tile });
  return run(points, n, d, k, distance, threads, tile, null);
}

/**
 * Exact k-NN of the points `queries` (rows of `points`, each excluding
 * itself) among all n points, on worker threads: row t of the result is
 * query t. Identical to `kernelQueryNeighbors`.
 */
export async function parallelQueryNeighbors(points: Float32Array, n: number, d: number, queries: Int32Array, k: number, options: ParallelExactOptions = {}): Promise<NeighborGraph> {
  checkSearchInput(points, n, d, k, 'exact neighbour search');
  const distance = options.distance ?? 'l2';
  const threads = resolveThreads(options.threads);
  const tile = options.tile ?? DEFAULT_TILE;
  for (const q of queries) if (!Number.isInteger(q) || q < 0 || q >= n) throw new RangeError(`query row ${q} is outside 0..${n - 1}`);
  if (n * queries.length < (options.inThreadBelow ?? 4096) ** 2) return kernelQueryNeighbors(points, n, d, queries, k, { distance, tile });
  return run(points, n, d, k, distance, threads, tile, queries);
}

async function run(points: Float32Array, n: number, d: number, k: number, distance: Distance, threads: number, tile: number, queries: Int32Array | null): Promise<NeighborGraph> {
  if (!Number.isInteger(tile) || tile < 16 || tile % 16 !== 0) throw new RangeError(`tile must be a positive multiple of 16, got ${tile}`);
  const cc = candidateCount(n, k);
  const arena = new Arena(64);
  const control = arena.alloc(64);
  const set = layoutSet(arena, n, d, distance);
  const qs = queries ? layoutSet(arena, queries.length, d, distance) : null;
  const querySelf = qs ? arena.alloc(qs.mp * 4) : 0;
  const queryLists = qs ? layoutLists(arena, qs.mp, cc) : null;
  const rows = qs ? qs.m : n;
  const outIdx = arena.alloc(rows * k * 4);
  const outDist = arena.alloc(rows * k * 4);
  const perWorker = Array.from({ length: threads }, () => ({
    lists: qs ? null : layoutLists(arena, set.mp, cc),
    scratch: layoutScratch(arena, tile),
    out: arena.alloc(REFINE_ROWS * cc * 8),
    merged: arena.alloc(REFINE_ROWS * cc * 4),
  }));
  const heap = KernelHeap.createShared(arena.top);
  fillSet(heap, set, points);
  if (qs) {
    fillSet(heap, qs, gatherPoints(points, d, queries!), setCenter(heap, set));
    fillQuerySelf(heap, querySelf, queries!, qs.mp);
    resetLists(heap, queryLists!);
  }
  const plan: ExactPlan = { job: nextJob++, mode: qs ? 'queries' : 'symmetric', workers: threads, k, cc, tile, set, queries: qs, querySelf, queryLists, control, outIdx, outDist, rows, perWorker };
  const pool = knnPool(threads);
  const counters = new Int32Array(heap.memory.buffer, control, 2);
  const all = (type: 'exact-tiles' | 'exact-refine' | 'exact-queries' | 'exact-release') =>
    Promise.all(Array.from({ length: threads }, (_, w) => pool.runOn(w, { type, job: plan.job, worker: w })));
  try {
    await Promise.all(Array.from({ length: threads }, (_, w) => pool.runOn(w, { type: 'exact-attach', memory: heap.memory, fma: heap.fma, plan })));
    counters.fill(0);
    if (qs) await all('exact-queries');
    else {
      await all('exact-tiles');
      await all('exact-refine');
    }
    return {
      n: rows,
      k,
      indices: new Int32Array(heap.memory.buffer, outIdx, rows * k).slice(),
      distances: new Float32Array(heap.memory.buffer, outDist, rows * k).slice(),
    };
  } finally {
    if (pool.usable) await all('exact-release').catch(() => undefined);
  }
}
