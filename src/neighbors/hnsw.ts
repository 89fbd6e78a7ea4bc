import { createRequire } from 'node:module';
import { UserError } from '../util/errors.js';
import { CandidateRefiner, checkSearchInput, rowNorms, type Distance, type NeighborGraph } from './types.js';

type HnswLib = typeof import('hnswlib-node');

export interface HnswOptions {
  distance?: Distance;
  /** Graph degree (hnswlib M). */
  M?: number;
  efConstruction?: number;
  /** Search beam width; raised to k + 1 when smaller. */
  efSearch?: number;
  /** Seed of hnswlib's level generator (default 100, hnswlib's own default). */
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

let cached: HnswLib | null = null;

/**
 * Load the native hnswlib binding. A missing or broken build (no compiler at
 * install time, Node ABI change) becomes a UserError that names the fix.
 * `load` is injectable so the error path can be tested.
 */
export function loadHnswlib(load?: (id: string) => unknown): HnswLib {
  if (cached && !load) return cached;
  let lib: HnswLib;
  try {
    lib = (load ?? createRequire(import.meta.url))('hnswlib-node') as HnswLib;
    if (typeof lib?.HierarchicalNSW !== 'function') throw new Error('the module has no HierarchicalNSW export');
  } catch (e) {
    throw new UserError(
      `the native neighbour index hnswlib-node is not usable (${(e as Error).message.split('\n')[0]}), needed by filter.neighbors: hnsw`,
      'HNSW_UNAVAILABLE',
      'rebuild it with `npm rebuild hnswlib-node` (needs python3, make and g++), or set filter.neighbors: exact',
    );
  }
  if (!load) cached = lib;
  return lib;
}

/**
 * Approximate k nearest neighbours with hnswlib (HNSW graph, one thread,
 * synchronous). L2 uses hnswlib's 'l2' space (which ranks by squared L2);
 * cosine inserts unit rows into the inner-product space (distance 1 - cos; a
 * zero row stays zero, i.e. cos 0 with everything, as in the exact search).
 * Each point queries k + 1 neighbours and drops itself by label (the farthest
 * if it was not returned, which happens among more than k duplicates). The
 * reported distances are recomputed exactly from the coordinates, so they are
 * true distances, not hnswlib's squared ones.
 */
export function hnswNeighbors(points: Float32Array, n: number, d: number, k: number, options: HnswOptions = {}): NeighborGraph {
  checkSearchInput(points, n, d, k, 'HNSW neighbour search');
  const distance = options.distance ?? 'l2';
  const lib = loadHnswlib();
  const norms = rowNorms(points, n, d);
  const index = new lib.HierarchicalNSW(distance === 'l2' ? 'l2' : 'ip', d);
  index.initIndex({ maxElements: n, m: options.M ?? 16, efConstruction: options.efConstruction ?? 200, randomSeed: options.seed ?? 100 });
  // hnswlib-node only takes number[]: one reusable buffer avoids a per-point array.
  const row: number[] = new Array<number>(d).fill(0);
  const fill = (i: number) => {
    const o = i * d;
    const scale = distance === 'cosine' ? (norms[i] > 0 ? 1 / norms[i] : 0) : 1;
    for (let f = 0; f < d; f++) row[f] = points[o + f] * scale;
  };
  for (let i = 0; i < n; i++) {
    fill(i);
    index.addPoint(row, i);
  }
  index.setEf(Math.max(options.efSearch ?? 64, k + 1));

  const indices = new Int32Array(n * k);
  const distances = new Float32Array(n * k);
  const refiner = new CandidateRefiner(points, d, distance, norms, k);
  const cand = new Int32Array(k + 1);
  const want = Math.min(k + 1, n);
  const progressEvery = Math.max(1, Math.floor(n / 100));
  for (let i = 0; i < n; i++) {
    fill(i);
    const found = index.searchKnn(row, want).neighbors;
    cand.fill(-1);
    for (let t = 0; t < found.length && t < cand.length; t++) cand[t] = found[t];
    if (refiner.refine(i, cand, 0, cand.length, k, indices, distances) < k) refiner.scan(i, n, k, indices, distances);
    if (options.onProgress && ((i + 1) % progressEvery === 0 || i === n - 1)) options.onProgress(i + 1, n);
  }
  return { n, k, indices, distances };
}
