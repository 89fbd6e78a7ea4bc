/**
 * Backdoor-sample detectors: one suspiciousness score per sample (higher =
 * more likely poisoned), computed from the poisoned model's embeddings.
 *
 * Detectors (`filter.detector`):
 * - `slof` (default), `kdist`, `lof`, `lid`, `dao`: textbook local outlier
 *   scores on k nearest neighbours (formulas and index conventions in
 *   ./local.ts), over the configured reference sets: the whole set
 *   (`filter.reference: all`, exact or HNSW neighbours) or random chunks of
 *   `filter.referenceSize` (`sampled`, each sample scored against its own
 *   chunk, the neighbours' k-distances/LIDs taken inside the same chunk,
 *   `filter.referenceRepeats` permutations averaged). With
 *   `filter.embedding: image+text` the captions join the reference and every
 *   point excludes its own partner.
 * - `slof-official`, `kdist-official`, `dao-official`: the official code's
 *   semantics, literally (./official.ts), on the same reference sets.
 * - `iforest`: isolation forest on the raw embeddings (baseline).
 * - `clipscore`: -cos(image, own caption) (baseline; needs caption embeddings).
 *
 * Duplicate policy (on purpose). With k + 1 or more identical embeddings
 * d_k = 0 and every density ratio is 0/0. Before any ratio, every distance is
 * floored at eps = 1e-6 x (the median of the positive k-distances of the
 * reference set being scored; 1e-12 if there is none). Consequences:
 * - a duplicate among duplicates has the same density as its neighbours:
 *   SLOF = LOF = 1, DAO = 0 (0/0 ratios become eps/eps = 1);
 * - a point whose neighbours are exact duplicates but which is not one
 *   itself gets a large finite ratio (about d_k / eps);
 * - LID's MLE diverges when all k distances are equal (sum of logs = 0): it is
 *   set to the embedding dimension d instead of Infinity;
 * - `kdist` reports the true, unfloored k-distance (0 inside such groups).
 * `countDuplicateGroups` and `zeroKDistanceCount` let callers report mass
 * duplicates, which look dense to every density-ratio score (the CC3M natural
 * backdoor is 798 near-duplicates). The `-official` variants keep the official
 * handling instead: NaN/+inf -> 1000, -inf -> 0.
 *
 * Non-finite embeddings: a row with a NaN/Inf coordinate (in its image or, when
 * captions are used, its caption embedding) could not be scored and gets
 * +Infinity, i.e. it ranks most suspicious; it is left out of every reference
 * set. No detector ever outputs NaN.
 *
 * Thresholding and what to do with high scores is the filter's job.
 */
import type { FilterConfig } from '../config/schema.js';
import { DEFAULT_SEARCH, searchOptionsFromConfig, type NeighborSearchOptions } from '../neighbors/search.js';
import { truncateGraph, type NeighborGraph } from '../neighbors/types.js';
import { UserError } from '../util/errors.js';
import { rowCosines } from '../util/rows.js';
import { Rng } from '../util/rng.js';
import { isolationForestScores } from './iforest.js';
import { scoreGraph, type GraphScoreKind } from './local.js';
import { officialMinBatch, type OfficialKind } from './official.js';
import { finiteRows, noNaN, scoreOverReferences, scoreOverReferencesAsync, specScorer, withFiniteRows, withFiniteRowsAsync } from './runner.js';
import type { SetScoreSpec } from './setScore.js';
import type { Detector, DetectorInput, ParallelOptions } from './types.js';

export type { Detector, DetectorInput, ParallelOptions } from './types.js';
export type { SetScoreSpec } from './setScore.js';
export { countDuplicateGroups, zeroKDistanceCount, type DuplicateGroups } from './duplicates.js';
export { kdistScores, slofScores, lofScores, lidScores, daoScores, distanceFloor, kDistances, scoreGraph, type GraphScoreKind } from './local.js';
export { officialBatchScores, officialScoresFromGraph, officialMinBatch, OFFICIAL_MAX_SCORE, type OfficialKind } from './official.js';
export { isolationForestScores, averagePathLength } from './iforest.js';

export type DetectorName = FilterConfig['detector'];
export const DETECTOR_NAMES: readonly DetectorName[] = ['slof', 'kdist', 'lof', 'lid', 'dao', 'iforest', 'clipscore', 'slof-official', 'kdist-official', 'dao-official'];

export interface DetectorOptions {
  /** Neighbour search and reference sets (`filter.neighbors`, `filter.reference*`, `filter.distance`, ...). */
  search: NeighborSearchOptions;
  /** `image+text`: captions join the reference sets (needs `textEmbeddings`). */
  embedding: 'image' | 'image+text';
  iforestTrees: number;
  iforestSampleSize: number;
}

export const DEFAULT_DETECTOR_OPTIONS: Readonly<DetectorOptions> = Object.freeze({
  search: DEFAULT_SEARCH,
  embedding: 'image',
  iforestTrees: 100,
  iforestSampleSize: 256,
});

/** Detector options from the validated `filter` config section. */
export function detectorOptionsFromConfig(filter: FilterConfig): DetectorOptions {
  return {
    search: searchOptionsFromConfig(filter),
    embedding: filter.embedding,
    iforestTrees: filter.iforestTrees,
    iforestSampleSize: filter.iforestSampleSize,
  };
}

function requireText(input: DetectorInput, name: string, why: string): Float32Array {
  const text = input.textEmbeddings;
  if (!text) throw new UserError(`detector "${name}" needs caption embeddings (${why}) but none were given`, 'DETECTOR_NEEDS_TEXT', 'set filter.embedding: image, or choose another filter.detector');
  if (text.length !== input.n * input.d) throw new RangeError(`detector "${name}": textEmbeddings has ${text.length} values, expected n*d = ${input.n * input.d}`);
  return text;
}

function checkInput(input: DetectorInput, name: string): void {
  const { embeddings, n, d, k } = input;
  if (embeddings.length !== n * d) throw new RangeError(`detector "${name}": embeddings has ${embeddings.length} values, expected n*d = ${n * d}`);
  if (!Number.isInteger(k) || k < 1) throw new UserError(`filter.k must be a positive integer, got ${k}`, 'K_INVALID');
}

class GraphDetector implements Detector {
  readonly needsText: boolean;
  private readonly spec: SetScoreSpec;
  constructor(
    readonly name: DetectorName,
    private readonly kind: GraphScoreKind,
    private readonly options: DetectorOptions,
  ) {
    this.needsText = options.embedding === 'image+text';
    this.spec = { family: 'graph', kind };
  }

  private minSize(k: number): number {
    return this.needsText ? Math.ceil((k + 2) / 2) : k + 1;
  }

  score(input: DetectorInput): Float64Array {
    checkInput(input, this.name);
    if (input.graph) return this.scoreWithGraph(input, input.graph);
    const text = this.needsText;
    if (text) requireText(input, this.name, 'filter.embedding is image+text');
    return withFiniteRows(input, (inp) => scoreOverReferences(inp, this.options.search, this.minSize(inp.k), text, specScorer(this.spec)));
  }

  async scoreAsync(input: DetectorInput, options: ParallelOptions = {}): Promise<Float64Array> {
    checkInput(input, this.name);
    if (input.graph) return this.scoreWithGraph(input, input.graph);
    const text = this.needsText;
    if (text) requireText(input, this.name, 'filter.embedding is image+text');
    return withFiniteRowsAsync(input, (inp) => scoreOverReferencesAsync(inp, this.options.search, this.minSize(inp.k), text, this.spec, options));
  }

  /** A caller-supplied whole-set graph: non-finite rows get +Infinity, the rest are scored from the graph as given. */
  private scoreWithGraph(input: DetectorInput, graph: NeighborGraph): Float64Array {
    if (graph.n !== input.n) throw new RangeError(`detector "${this.name}": graph has ${graph.n} rows, embeddings ${input.n}`);
    if (graph.k < input.k) throw new RangeError(`detector "${this.name}": graph has ${graph.k} neighbours per row, k = ${input.k}`);
    const scores = scoreGraph(this.kind, truncateGraph(graph, input.k), input.d);
    const keep = finiteRows(input.embeddings, input.n, input.d);
    if (keep) {
      const ok = new Uint8Array(input.n);
      for (let t = 0; t < keep.length; t++) ok[keep[t]] = 1;
      for (let i = 0; i < input.n; i++) if (!ok[i]) scores[i] = Infinity;
    }
    return noNaN(scores);
  }
}

class OfficialDetector implements Detector {
  readonly needsText: boolean;
  private readonly spec: SetScoreSpec;
  constructor(
    readonly name: DetectorName,
    kind: OfficialKind,
    private readonly options: DetectorOptions,
  ) {
    this.needsText = options.embedding === 'image+text';
    this.spec = { family: 'official', kind };
  }

  /** Ignores `input.graph`: the official scores are defined on their own reference batches. */
  score(input: DetectorInput): Float64Array {
    checkInput(input, this.name);
    const text = this.needsText;
    if (text) requireText(input, this.name, 'filter.embedding is image+text');
    return withFiniteRows({ ...input, graph: undefined }, (inp) => scoreOverReferences(inp, this.options.search, officialMinBatch(inp.k, text), text, specScorer(this.spec)));
  }

  async scoreAsync(input: DetectorInput, options: ParallelOptions = {}): Promise<Float64Array> {
    checkInput(input, this.name);
    const text = this.needsText;
    if (text) requireText(input, this.name, 'filter.embedding is image+text');
    return withFiniteRowsAsync({ ...input, graph: undefined }, (inp) =>
      scoreOverReferencesAsync(inp, this.options.search, officialMinBatch(inp.k, text), text, this.spec, options),
    );
  }
}

class IsolationForestDetector implements Detector {
  readonly name = 'iforest';
  constructor(private readonly options: DetectorOptions) {}

  score(input: DetectorInput): Float64Array {
    checkInput(input, this.name);
    return withFiniteRows({ ...input, textEmbeddings: undefined }, (inp) =>
      isolationForestScores(inp.embeddings, inp.n, inp.d, {
        trees: this.options.iforestTrees,
        sampleSize: this.options.iforestSampleSize,
        rng: inp.rng ?? new Rng(0, 'iforest'),
      }),
    );
  }

  /** No neighbour search to parallelise: the in-thread scores. */
  async scoreAsync(input: DetectorInput): Promise<Float64Array> {
    return this.score(input);
  }
}

/** -cos(image_i, caption_i); a zero vector has cos 0 (score 0). */
class ClipScoreDetector implements Detector {
  readonly name = 'clipscore';
  readonly needsText = true;

  score(input: DetectorInput): Float64Array {
    checkInput(input, this.name);
    requireText(input, this.name, 'it scores each image against its own caption');
    return withFiniteRows(input, ({ embeddings, textEmbeddings, n, d }) => {
      const out = rowCosines(embeddings, textEmbeddings!, n, d);
      for (let i = 0; i < n; i++) out[i] = 0 - out[i]; // not -out[i]: a zero row scores +0, not -0
      return out;
    });
  }

  /** Linear in n, no neighbours: the in-thread scores. */
  async scoreAsync(input: DetectorInput): Promise<Float64Array> {
    return this.score(input);
  }
}

/**
 * The detector `name` (one of `filter.detector`). Options default to the
 * config schema's defaults; `detectorOptionsFromConfig` builds them from a run
 * config.
 */
export function createDetector(name: DetectorName, options: Partial<DetectorOptions> = {}): Detector {
  const opts: DetectorOptions = {
    ...DEFAULT_DETECTOR_OPTIONS,
    ...options,
    search: { ...DEFAULT_SEARCH, ...options.search, hnsw: { ...DEFAULT_SEARCH.hnsw, ...options.search?.hnsw } },
  };
  switch (name) {
    case 'slof':
    case 'kdist':
    case 'lof':
    case 'lid':
    case 'dao':
      return new GraphDetector(name, name, opts);
    case 'slof-official':
    case 'kdist-official':
    case 'dao-official':
      if (opts.search.distance !== 'l2') {
        throw new UserError(`detector "${name}" reproduces the official code, which uses L2 distance; filter.distance is ${opts.search.distance}`, 'DETECTOR_DISTANCE', `set filter.distance: l2, or use "${name.replace('-official', '')}"`);
      }
      return new OfficialDetector(name, name.replace('-official', '') as OfficialKind, opts);
    case 'iforest':
      return new IsolationForestDetector(opts);
    case 'clipscore':
      return new ClipScoreDetector();
    default:
      throw new UserError(`unknown detector "${String(name)}"`, 'DETECTOR_UNKNOWN', `choose filter.detector from: ${DETECTOR_NAMES.join(', ')}`);
  }
}
