import type { Rng } from '../util/rng.js';
import { kernelExactNeighbors } from './kernelSearch.js';
import type { Distance, NeighborGraph } from './types.js';

/**
 * The official batch scheme of reference sets: a random permutation of
 * 0..n-1 cut into consecutive chunks of `referenceSize`. A last chunk of at
 * most `k` points (too small to give its members k neighbours) is merged into
 * the previous chunk. Every index appears in exactly one chunk.
 */
export function sampledReferences(n: number, referenceSize: number, k: number, rng: Rng): Int32Array[] {
  if (!Number.isInteger(referenceSize) || referenceSize < 1) throw new RangeError(`sampledReferences: referenceSize must be a positive integer, got ${referenceSize}`);
  if (n === 0) return [];
  const perm = rng.permutation(n);
  const bounds: number[] = [];
  for (let start = 0; start < n; start += referenceSize) bounds.push(start);
  if (bounds.length > 1 && n - bounds[bounds.length - 1] <= k) bounds.pop();
  bounds.push(n);
  const chunks: Int32Array[] = [];
  for (let c = 0; c + 1 < bounds.length; c++) chunks.push(perm.slice(bounds[c], bounds[c + 1]));
  return chunks;
}

/** Rows `members` of a row-major n x d matrix, gathered into a new m x d matrix. */
export function gatherRows(points: Float32Array, d: number, members: Int32Array): Float32Array {
  const out = new Float32Array(members.length * d);
  // an element loop: a subarray per row costs an allocation each (most of the time for d ~ 100)
  for (let t = 0; t < members.length; t++) {
    const o = members[t] * d;
    const w = t * d;
    for (let f = 0; f < d; f++) out[w + f] = points[o + f];
  }
  return out;
}

export interface LocalGraph {
  /** Neighbours in chunk-local positions 0..members.length-1. */
  graph: NeighborGraph;
  /** Local position -> global row. */
  members: Int32Array;
}

/** Exact kNN among the rows `members` only (one reference chunk), on the wasm kernels. `blockSize` is accepted for compatibility and has no effect. */
export function neighborsWithin(points: Float32Array, d: number, members: Int32Array, k: number, distance: Distance, _blockSize?: number): LocalGraph {
  const local = gatherRows(points, d, members);
  return { graph: kernelExactNeighbors(local, members.length, d, k, { distance }), members };
}
