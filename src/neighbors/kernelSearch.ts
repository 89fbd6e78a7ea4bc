import { KernelHeap } from '../backend/wasm/heap.js';
import { localHeap, queryBytes, queryNeighbors, symmetricBytes, symmetricNeighbors, DEFAULT_TILE } from './parallel/engine.js';
import { checkSearchInput, type Distance, type NeighborGraph } from './types.js';

/**
 * Exact k-NN on the WebAssembly SIMD kernels, in the calling thread (no
 * tfjs). The same arithmetic as the worker-thread search
 * (./parallel/exact.ts): both give identical graphs. See
 * ./parallel/engine.ts for the method.
 */

export interface KernelSearchOptions {
  distance?: Distance;
  /** Tile side in rows (a multiple of 16; default 256). Results do not depend on it. */
  tile?: number;
}

/** Heaps up to this size are kept for reuse by the thread; larger ones are dropped after the call. */
const KEEP_HEAP_BYTES = 64 << 20;

function heapFor(bytes: number): KernelHeap {
  return bytes <= KEEP_HEAP_BYTES ? localHeap() : KernelHeap.private(bytes);
}

function checkTile(tile: number): number {
  if (!Number.isInteger(tile) || tile < 16 || tile % 16 !== 0) throw new RangeError(`tile must be a positive multiple of 16, got ${tile}`);
  return tile;
}

/**
 * Exact k nearest neighbours of every row among the n rows of `points`
 * (self excluded by index; sorted by distance, then index; true float64
 * distances rounded to float32), like `exactNeighbors` but on the wasm
 * kernels: memory O(n x (d + k)), no n x n matrix.
 */
export function kernelExactNeighbors(points: Float32Array, n: number, d: number, k: number, options: KernelSearchOptions = {}): NeighborGraph {
  checkSearchInput(points, n, d, k, 'exact neighbour search');
  const distance = options.distance ?? 'l2';
  const tile = checkTile(options.tile ?? DEFAULT_TILE);
  return symmetricNeighbors(heapFor(symmetricBytes(n, d, k, distance, tile)), points, n, d, k, distance, tile);
}

/**
 * Exact k nearest neighbours of the points `queries` (row indices into
 * `points`) among all n points, each excluding itself: row t of the result
 * is query t. The same neighbours as rows `queries` of kernelExactNeighbors.
 */
export function kernelQueryNeighbors(points: Float32Array, n: number, d: number, queries: Int32Array, k: number, options: KernelSearchOptions = {}): NeighborGraph {
  checkSearchInput(points, n, d, k, 'exact neighbour search');
  const distance = options.distance ?? 'l2';
  const tile = checkTile(options.tile ?? DEFAULT_TILE);
  for (const q of queries) if (!Number.isInteger(q) || q < 0 || q >= n) throw new RangeError(`query row ${q} is outside 0..${n - 1}`);
  return queryNeighbors(heapFor(queryBytes(n, queries.length, d, k, distance, tile)), points, n, d, queries, k, distance, tile);
}
