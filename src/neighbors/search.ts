import { currentBackend } from '../backend/select.js';
import type { FilterConfig } from '../config/schema.js';
import { UserError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';
import { exactNeighbors } from './exact.js';
import { hnswNeighbors } from './hnsw.js';
import { ivfNeighbors } from './ivf.js';
import { kernelExactNeighbors } from './kernelSearch.js';
import { parallelExactNeighbors } from './parallel/exact.js';
import { parallelHnswNeighbors } from './parallel/hnsw.js';
import { parallelIvfNeighbors } from './parallel/ivf.js';
import { sampledReferences } from './reference.js';
import type { Distance, NeighborGraph } from './types.js';

/**
 * How neighbours are found, as configured by `filter.*`:
 * - `reference: all`: one graph over the whole set, by `method` (exact
 *   blocked matMul, or HNSW);
 * - `reference: sampled`: random chunks of `referenceSize` (see
 *   sampledReferences), each searched exactly on its own; `referenceRepeats`
 *   independent permutations. `method` does not apply (chunks are small).
 */
export interface NeighborSearchOptions {
  /** `ivf`: inverted file (k-means lists) searched with the exact kernels (./ivf.ts). */
  method: 'exact' | 'hnsw' | 'ivf';
  reference: 'all' | 'sampled';
  referenceSize: number;
  referenceRepeats: number;
  distance: Distance;
  blockSize: number;
  hnsw: { M: number; efConstruction: number; efSearch: number };
  /**
   * Worker threads of the asynchronous search and scoring (`buildGraphAsync`,
   * `Detector.scoreAsync`); default os.availableParallelism(). The config
   * key `filter.threads` (0 = default) lands here.
   */
  threads?: number;
  /** IVF lists and probes (`method: ivf`); defaults round(sqrt(n)) and 16. */
  ivf?: { lists?: number; probes?: number };
}

/** The schema defaults of `filter.*`. */
export const DEFAULT_SEARCH: Readonly<NeighborSearchOptions> = Object.freeze({
  method: 'exact',
  reference: 'sampled',
  referenceSize: 2048,
  referenceRepeats: 4,
  distance: 'l2',
  blockSize: 2048,
  hnsw: { M: 16, efConstruction: 200, efSearch: 64 },
  ivf: { probes: 16 },
});

type SearchConfigKeys = 'neighbors' | 'reference' | 'referenceSize' | 'referenceRepeats' | 'distance' | 'blockSize' | 'hnsw' | 'ivf' | 'threads';

/** Search options from the validated `filter` config section. */
export function searchOptionsFromConfig(filter: Pick<FilterConfig, SearchConfigKeys>): NeighborSearchOptions {
  return {
    ...(filter.threads > 0 ? { threads: filter.threads } : {}),
    ivf: { ...(filter.ivf.lists !== undefined ? { lists: filter.ivf.lists } : {}), probes: filter.ivf.probes },
    method: filter.neighbors,
    reference: filter.reference,
    referenceSize: filter.referenceSize,
    referenceRepeats: filter.referenceRepeats,
    distance: filter.distance,
    blockSize: filter.blockSize,
    hnsw: { M: filter.hnsw.M, efConstruction: filter.hnsw.efConstruction, efSearch: filter.hnsw.efSearch },
  };
}

/**
 * Whether the exact search should use tfjs matMul rather than the wasm
 * kernels: only with the native TensorFlow backend (multi-threaded BLAS,
 * maybe a GPU); on wasm and cpu the kernels are 2-3x faster per thread and
 * exploit the symmetry of the problem.
 */
function tfjsExact(): boolean {
  return currentBackend()?.name === 'tensorflow';
}

/**
 * One graph over all n points with the configured method, in the calling
 * thread. `seed` seeds HNSW's level generator. Exact neighbours come from
 * the wasm kernels (kernelExactNeighbors; tfjs matMul on the native
 * backend).
 */
export function buildGraph(
  points: Float32Array,
  n: number,
  d: number,
  k: number,
  options: Pick<NeighborSearchOptions, 'method' | 'distance' | 'blockSize' | 'hnsw' | 'ivf'>,
  seed?: number,
  onProgress?: (done: number, total: number) => void,
): NeighborGraph {
  if (options.method === 'hnsw') return hnswNeighbors(points, n, d, k, { distance: options.distance, ...options.hnsw, seed, onProgress });
  if (options.method === 'ivf') {
    const graph = ivfNeighbors(points, n, d, k, { distance: options.distance, ...options.ivf, seed });
    onProgress?.(n, n);
    return graph;
  }
  if (tfjsExact()) return exactNeighbors(points, n, d, k, { distance: options.distance, blockSize: options.blockSize, onProgress });
  const graph = kernelExactNeighbors(points, n, d, k, { distance: options.distance });
  onProgress?.(n, n);
  return graph;
}

/**
 * `buildGraph` on worker threads (`options.threads`, default
 * os.availableParallelism()): the exact graph is identical to buildGraph's;
 * HNSW builds one index per thread (parallelHnswNeighbors).
 */
export async function buildGraphAsync(
  points: Float32Array,
  n: number,
  d: number,
  k: number,
  options: Pick<NeighborSearchOptions, 'method' | 'distance' | 'blockSize' | 'hnsw' | 'ivf' | 'threads'>,
  seed?: number,
  onProgress?: (done: number, total: number) => void,
): Promise<NeighborGraph> {
  if (options.method === 'hnsw') return parallelHnswNeighbors(points, n, d, k, { distance: options.distance, ...options.hnsw, seed, onProgress, threads: options.threads });
  if (options.method === 'ivf') {
    const graph = await parallelIvfNeighbors(points, n, d, k, { distance: options.distance, ...options.ivf, seed, threads: options.threads });
    onProgress?.(n, n);
    return graph;
  }
  if (tfjsExact()) return exactNeighbors(points, n, d, k, { distance: options.distance, blockSize: options.blockSize, onProgress });
  const graph = await parallelExactNeighbors(points, n, d, k, { distance: options.distance, threads: options.threads });
  onProgress?.(n, n);
  return graph;
}

/**
 * The reference chunks of every repeat for `reference: sampled`. `minSize`
 * is the smallest set the scorer can work on with this k (k + 1 for the
 * textbook detectors, more for the official variants); a last chunk smaller
 * than that is merged into the previous one.
 */
export function referencePlan(
  n: number,
  k: number,
  minSize: number,
  options: Pick<NeighborSearchOptions, 'referenceSize' | 'referenceRepeats'>,
  rng: Rng,
): Int32Array[][] {
  if (options.referenceSize < minSize) {
    throw new UserError(
      `filter.referenceSize = ${options.referenceSize} is too small for k = ${k}: each reference set needs at least ${minSize} samples`,
      'REFERENCE_TOO_SMALL',
      `raise filter.referenceSize to at least ${minSize} (the paper uses 2048) or lower filter.k`,
    );
  }
  if (n < minSize) {
    throw new UserError(`only ${n} samples can be scored, fewer than the ${minSize} that k = ${k} needs`, 'K_TOO_LARGE', 'lower filter.k or score more samples');
  }
  const plan: Int32Array[][] = [];
  for (let r = 0; r < options.referenceRepeats; r++) plan.push(sampledReferences(n, options.referenceSize, minSize - 1, rng));
  return plan;
}
