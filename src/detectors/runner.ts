import { knnPool, resolveThreads, runBounded } from '../neighbors/parallel/pool.js';
import { buildGraph, buildGraphAsync, referencePlan, type NeighborSearchOptions } from '../neighbors/search.js';
import { gatherRows } from '../neighbors/reference.js';
import type { NeighborGraph } from '../neighbors/types.js';
import { Rng } from '../util/rng.js';
import { graphRequest, referenceGraphWith, scoreFromGraph, scoreSetWith, type ReferenceSet, type SetScoreSpec } from './setScore.js';
import type { DetectorInput, ParallelOptions } from './types.js';

export { dropPartners, type ReferenceSet } from './setScore.js';

/** Indices of rows whose coordinates (and caption's, if given) are all finite; null when every row is. */
export function finiteRows(embeddings: Float32Array, n: number, d: number, text?: Float32Array): Int32Array | null {
  const keep = new Int32Array(n);
  let m = 0;
  for (let i = 0; i < n; i++) {
    let ok = true;
    const o = i * d;
    for (let f = 0; f < d && ok; f++) {
      const v = embeddings[o + f];
      if (v - v !== 0) ok = false;
    }
    if (text) {
      for (let f = 0; f < d && ok; f++) {
        const v = text[o + f];
        if (v - v !== 0) ok = false;
      }
    }
    if (ok) keep[m++] = i;
  }
  return m === n ? null : keep.slice(0, m);
}

/** NaN -> +Infinity ("could not be scored"): the last guard behind every detector. */
export function noNaN(scores: Float64Array): Float64Array {
  for (let i = 0; i < scores.length; i++) if (scores[i] !== scores[i]) scores[i] = Infinity;
  return scores;
}

/** The finite rows of an input, as their own input, or null when every row is finite. */
function finitePart(input: DetectorInput): { keep: Int32Array; inner: DetectorInput } | null {
  const { embeddings, d, textEmbeddings } = input;
  const keep = finiteRows(embeddings, input.n, d, textEmbeddings);
  if (!keep) return null;
  const inner = {
    ...input,
    embeddings: gatherRows(embeddings, d, keep),
    textEmbeddings: textEmbeddings ? gatherRows(textEmbeddings, d, keep) : undefined,
    n: keep.length,
    graph: undefined,
  };
  return { keep, inner };
}

/** Scores of the finite rows put back in place; every other row +Infinity. */
function withInfinities(n: number, keep: Int32Array, scores: Float64Array | null): Float64Array {
  const out = new Float64Array(n).fill(Infinity);
  if (scores) for (let t = 0; t < keep.length; t++) out[keep[t]] = scores[t];
  return noNaN(out);
}

/**
 * Runs `fn` on the finite rows only and gives every row with a NaN/Inf
 * coordinate (in its image or, when given, its caption embedding) the score
 * +Infinity: it could not be scored and ranks most suspicious. Non-finite
 * rows never enter a reference set, so they cannot distort other scores.
 */
export function withFiniteRows(input: DetectorInput, fn: (input: DetectorInput) => Float64Array): Float64Array {
  const part = finitePart(input);
  if (!part) return noNaN(fn(input));
  return withInfinities(input.n, part.keep, part.keep.length ? fn(part.inner) : null);
}

/** Scores the m images of one reference set. */
export type SetScorer = (set: ReferenceSet) => Float64Array;

/** The in-thread set scorer of a spec (neighbours from `buildGraph`). */
export function specScorer(spec: SetScoreSpec): SetScorer {
  return (set) => scoreSetWith(spec, set, buildGraph);
}

/** `withFiniteRows` for an asynchronous scorer. */
export async function withFiniteRowsAsync(input: DetectorInput, fn: (input: DetectorInput) => Promise<Float64Array>): Promise<Float64Array> {
  const part = finitePart(input);
  if (!part) return noNaN(await fn(input));
  return withInfinities(input.n, part.keep, part.keep.length ? await fn(part.inner) : null);
}

/**
 * Applies a set scorer over the configured references: the whole input as
 * one set (`all`), or every chunk of `referenceRepeats` random permutations
 * (`sampled`), averaging each sample's scores over the repeats. `minSize` is
 * the smallest set the scorer accepts.
 */
export function scoreOverReferences(input: DetectorInput, search: NeighborSearchOptions, minSize: number, text: boolean, scorer: SetScorer): Float64Array {
  const { embeddings, n, d, k } = input;
  const rng = input.rng ?? new Rng(0, 'reference-sets');
  const textEmbeddings = text ? input.textEmbeddings : undefined;
  const setSearch = { method: search.method, distance: search.distance, blockSize: search.blockSize, hnsw: search.hnsw, ivf: search.ivf };
  if (search.reference === 'all') {
    return scorer({ embeddings, text: textEmbeddings, m: n, d, k, search: setSearch, seed: rng.nextUint32() });
  }
  return scorePlan(input, referencePlan(n, k, minSize, search, rng), textEmbeddings, setSearch, scorer);
}

/** Every chunk of a drawn plan scored in this thread; each sample's scores averaged over the repeats. */
function scorePlan(input: DetectorInput, plan: Int32Array[][], textEmbeddings: Float32Array | undefined, setSearch: ReferenceSet['search'], scorer: SetScorer): Float64Array {
  const { embeddings, n, d, k } = input;
  const sum = new Float64Array(n);
  const chunkSearch = { ...setSearch, method: 'exact' as const };
  for (const chunks of plan) {
    for (const members of chunks) {
      const scores = scorer({
        embeddings: gatherRows(embeddings, d, members),
        text: textEmbeddings ? gatherRows(textEmbeddings, d, members) : undefined,
        m: members.length,
        d,
        k,
        search: chunkSearch,
        seed: 0,
      });
      for (let t = 0; t < members.length; t++) sum[members[t]] += scores[t];
    }
  }
  if (plan.length > 1) for (let i = 0; i < n; i++) sum[i] /= plan.length;
  return sum;
}

/** kNN graph of a reference set: over the images, or over [images; captions] without partners. */
export function referenceGraph(set: ReferenceSet): NeighborGraph {
  return referenceGraphWith(set, buildGraph);
}

/** Chunks in flight per thread: one computing, one queued, so a thread never waits for the main thread's copy. */
const IN_FLIGHT_PER_THREAD = 2;

/**
 * `scoreOverReferences` for a named set score, with the work on worker
 * threads (`threads`, default os.availableParallelism()); the same scores:
 * the same reference plan (same rng draws), the same per-set arithmetic
 * (./setScore.ts), the same summation order over repeats.
 * - `all`: one neighbour graph of the whole set by the parallel exact or
 *   HNSW search (../neighbors/search.ts buildGraphAsync), scored here
 *   (scoring is linear in n and cheap).
 * - `sampled`: every chunk is copied (m x d, transferred) to a thread that
 *   searches and scores it; at most 2 chunks per thread are in flight, so
 *   the extra memory is O(threads x referenceSize x d).
 */
export async function scoreOverReferencesAsync(
  input: DetectorInput,
  search: NeighborSearchOptions,
  minSize: number,
  text: boolean,
  spec: SetScoreSpec,
  options: ParallelOptions = {},
): Promise<Float64Array> {
  const { embeddings, n, d, k } = input;
  const threads = resolveThreads(options.threads ?? search.threads);
  const rng = input.rng ?? new Rng(0, 'reference-sets');
  const textEmbeddings = text ? input.textEmbeddings : undefined;
  const setSearch = { method: search.method, distance: search.distance, blockSize: search.blockSize, hnsw: search.hnsw, ivf: search.ivf };
  if (search.reference === 'all') {
    const set: ReferenceSet = { embeddings, text: textEmbeddings, m: n, d, k, search: setSearch, seed: rng.nextUint32() };
    const req = graphRequest(spec, set);
    const graph = await buildGraphAsync(req.points, req.n, d, req.k, { ...setSearch, threads }, set.seed);
    return scoreFromGraph(spec, set, graph);
  }
  const plan = referencePlan(n, k, minSize, search, rng);
  const chunkCount = plan.reduce((s, chunks) => s + chunks.length, 0);
  if (threads === 1 || chunkCount === 1) return scorePlan(input, plan, textEmbeddings, setSearch, specScorer(spec));
  const perRepeat = plan.map(() => new Float64Array(n));
  const pool = knnPool(threads);
  function* chunkTasks(): Generator<() => Promise<void>> {
    for (let r = 0; r < plan.length; r++) {
      for (const members of plan[r]) {
        yield async () => {
          const chunk = gatherRows(embeddings, d, members);
          const chunkText = textEmbeddings ? gatherRows(textEmbeddings, d, members) : undefined;
          const transfer = (chunkText ? [chunk.buffer, chunkText.buffer] : [chunk.buffer]) as ArrayBuffer[];
          const scores = await pool.run<Float64Array>({ type: 'score-chunk', embeddings: chunk, text: chunkText, m: members.length, d, k, distance: search.distance, spec }, transfer);
          const out = perRepeat[r];
          for (let t = 0; t < members.length; t++) out[members[t]] = scores[t];
        };
      }
    }
  }
  await runBounded(threads * IN_FLIGHT_PER_THREAD, chunkTasks());
  const sum = new Float64Array(n);
  for (const scores of perRepeat) for (let i = 0; i < n; i++) sum[i] += scores[i];
  if (plan.length > 1) for (let i = 0; i < n; i++) sum[i] /= plan.length;
  return sum;
}
