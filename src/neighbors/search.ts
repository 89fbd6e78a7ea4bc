import type { FilterConfig } from '../config/schema.js';
import { UserError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';
import { exactNeighbors } from './exact.js';
import { hnswNeighbors } from './hnsw.js';
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
  method: 'exact' | 'hnsw';
  reference: 'all' | 'sampled';
  referenceSize: number;
  referenceRepeats: number;
  distance: Distance;
  blockSize: number;
  hnsw: { M: number; efConstruction: number; efSearch: number };
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
});

type SearchConfigKeys = 'neighbors' | 'reference' | 'referenceSize' | 'referenceRepeats' | 'distance' | 'blockSize' | 'hnsw';

/** Search options from the validated `filter` config section. */
export function searchOptionsFromConfig(filter: Pick<FilterConfig, SearchConfigKeys>): NeighborSearchOptions {
  return {
    method: filter.neighbors,
    reference: filter.reference,
    referenceSize: filter.referenceSize,
    referenceRepeats: filter.referenceRepeats,
    distance: filter.distance,
    blockSize: filter.blockSize,
    hnsw: { M: filter.hnsw.M, efConstruction: filter.hnsw.efConstruction, efSearch: filter.hnsw.efSearch },
  };
}

/** One graph over all n points with the configured method. `seed` seeds HNSW's level generator. */
export function buildGraph(
  points: Float32Array,
  n: number,
  d: number,
  k: number,
  options: Pick<NeighborSearchOptions, 'method' | 'distance' | 'blockSize' | 'hnsw'>,
  seed?: number,
  onProgress?: (done: number, total: number) => void,
): NeighborGraph {
  if (options.method === 'hnsw') return hnswNeighbors(points, n, d, k, { distance: options.distance, ...options.hnsw, seed, onProgress });
  return exactNeighbors(points, n, d, k, { distance: options.distance, blockSize: options.blockSize, onProgress });
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
