import type { NeighborGraph } from '../neighbors/types.js';
import type { Rng } from '../util/rng.js';

export interface DetectorInput {
  /** n x d row-major image embeddings (the poisoned model's projected, unnormalised embeddings). */
  embeddings: Float32Array;
  n: number;
  d: number;
  /** Neighbours per point. */
  k: number;
  /**
   * Precomputed neighbours of the `embeddings` rows (at least k per row; extra
   * columns are ignored). When given, graph detectors use it as the whole-set
   * reference and skip their own search; the reference options do not apply.
   */
  graph?: NeighborGraph;
  /** n x d caption embeddings, row i = caption of image i (clipscore, image+text mode). */
  textEmbeddings?: Float32Array;
  /** Draws reference permutations (sampled references) and isolation trees; default: a fixed seed. */
  rng?: Rng;
}

/** How `scoreAsync` may use the machine. */
export interface ParallelOptions {
  /** Worker threads for the neighbour search and scoring (default: the search options' `threads`, else os.availableParallelism()). */
  threads?: number;
}

/** A suspiciousness score per sample: higher = more likely poisoned. Never NaN. */
export interface Detector {
  readonly name: string;
  /** Whether `textEmbeddings` must be given. */
  readonly needsText?: boolean;
  /** Scores computed in the calling thread (single core). */
  score(input: DetectorInput): Float64Array;
  /**
   * The same scores with the neighbour search (and, for sampled references,
   * the scoring) on worker threads: identical to `score` for exact and
   * sampled references; for HNSW, one index per thread (see
   * parallelHnswNeighbors). The calling thread stays free meanwhile.
   */
  scoreAsync(input: DetectorInput, options?: ParallelOptions): Promise<Float64Array>;
}
