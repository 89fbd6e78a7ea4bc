import { buildGraph, referencePlan, type NeighborSearchOptions } from '../neighbors/search.js';
import { gatherRows } from '../neighbors/reference.js';
import type { NeighborGraph } from '../neighbors/types.js';
import { Rng } from '../util/rng.js';
import type { DetectorInput } from './types.js';

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

/**
 * Runs `fn` on the finite rows only and gives every row with a NaN/Inf
 * coordinate (in its image or, when given, its caption embedding) the score
 * +Infinity: it could not be scored and ranks most suspicious. Non-finite
 * rows never enter a reference set, so they cannot distort other scores.
 */
export function withFiniteRows(input: DetectorInput, fn: (input: DetectorInput) => Float64Array): Float64Array {
  const { embeddings, n, d, textEmbeddings } = input;
  const keep = finiteRows(embeddings, n, d, textEmbeddings);
  if (!keep) return noNaN(fn(input));
  const out = new Float64Array(n).fill(Infinity);
  if (keep.length === 0) return out;
  const inner = fn({
    ...input,
    embeddings: gatherRows(embeddings, d, keep),
    textEmbeddings: textEmbeddings ? gatherRows(textEmbeddings, d, keep) : undefined,
    n: keep.length,
    graph: undefined,
  });
  for (let t = 0; t < keep.length; t++) out[keep[t]] = inner[t];
  return noNaN(out);
}

/**
 * For a graph over [images; captions] (2m rows, at least k + 1 neighbours):
 * the k-NN graph in which each image also excludes its own caption and each
 * caption its own image (the official CLIP mode's reference).
 */
export function dropPartners(graph: NeighborGraph, m: number, k: number): NeighborGraph {
  if (graph.n !== 2 * m) throw new RangeError(`dropPartners: graph has ${graph.n} rows, expected 2 x ${m}`);
  if (graph.k < k + 1) throw new RangeError(`dropPartners: need ${k + 1} neighbours per row, graph has ${graph.k}`);
  const K = graph.k;
  const indices = new Int32Array(graph.n * k);
  const distances = new Float32Array(graph.n * k);
  for (let r = 0; r < graph.n; r++) {
    const partner = r < m ? r + m : r - m;
    let w = 0;
    for (let t = 0; t < K && w < k; t++) {
      const j = graph.indices[r * K + t];
      if (j === partner) continue;
      indices[r * k + w] = j;
      distances[r * k + w] = graph.distances[r * K + t];
      w++;
    }
  }
  return { n: graph.n, k, indices, distances };
}

/** One reference set handed to a set scorer: m images (and their m captions in image+text mode). */
export interface ReferenceSet {
  embeddings: Float32Array;
  text?: Float32Array;
  m: number;
  d: number;
  k: number;
  /** Neighbour search for this set: the configured method for `all`, exact inside sampled chunks. */
  search: Pick<NeighborSearchOptions, 'method' | 'distance' | 'blockSize' | 'hnsw'>;
  /** Seed for HNSW's level generator. */
  seed: number;
}

/** Scores the m images of one reference set. */
export type SetScorer = (set: ReferenceSet) => Float64Array;

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
  const setSearch = { method: search.method, distance: search.distance, blockSize: search.blockSize, hnsw: search.hnsw };
  if (search.reference === 'all') {
    return scorer({ embeddings, text: textEmbeddings, m: n, d, k, search: setSearch, seed: rng.nextUint32() });
  }
  const plan = referencePlan(n, k, minSize, search, rng);
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
  const { embeddings, text, m, d, k } = set;
  if (!text) return buildGraph(embeddings, m, d, k, set.search, set.seed);
  const both = new Float32Array(2 * m * d);
  both.set(embeddings, 0);
  both.set(text, m * d);
  return dropPartners(buildGraph(both, 2 * m, d, k + 1, set.search, set.seed), m, k);
}
