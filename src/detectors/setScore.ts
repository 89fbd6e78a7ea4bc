import type { NeighborSearchOptions } from '../neighbors/search.js';
import type { NeighborGraph } from '../neighbors/types.js';
import { scoreGraph, type GraphScoreKind } from './local.js';
import { officialScoresFromGraph, type OfficialKind } from './official.js';

/**
 * Scoring of one reference set, shared by the calling thread and the worker
 * threads of the parallel path (../neighbors/parallel/worker.ts): neither
 * this module nor what it imports loads tfjs, and the neighbour search is
 * passed in, so both paths run the same arithmetic.
 */

/** Which score a set scorer computes: a textbook graph score, or an official-code variant. */
export type SetScoreSpec = { family: 'graph'; kind: GraphScoreKind } | { family: 'official'; kind: OfficialKind };

/** One reference set handed to a set scorer: m images (and their m captions in image+text mode). */
export interface ReferenceSet {
  embeddings: Float32Array;
  text?: Float32Array;
  m: number;
  d: number;
  k: number;
  /** Neighbour search for this set: the configured method for `all`, exact inside sampled chunks. */
  search: Pick<NeighborSearchOptions, 'method' | 'distance' | 'blockSize' | 'hnsw' | 'ivf'>;
  /** Seed for HNSW's level generator. */
  seed: number;
}

/** A k-NN graph over n x d points with the set's search options. */
export type GraphBuilder = (points: Float32Array, n: number, d: number, k: number, search: ReferenceSet['search'], seed?: number) => NeighborGraph;

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

/** [images; captions] stacked: the point set of image+text mode. */
export function stackWithText(set: ReferenceSet): Float32Array {
  const both = new Float32Array(2 * set.m * set.d);
  both.set(set.embeddings.subarray(0, set.m * set.d), 0);
  both.set(set.text!.subarray(0, set.m * set.d), set.m * set.d);
  return both;
}

/** kNN graph of a reference set: over the images, or over [images; captions] without partners. */
export function referenceGraphWith(set: ReferenceSet, build: GraphBuilder): NeighborGraph {
  const { embeddings, text, m, d, k } = set;
  if (!text) return build(embeddings, m, d, k, set.search, set.seed);
  return dropPartners(build(stackWithText(set), 2 * m, d, k + 1, set.search, set.seed), m, k);
}

/** Scores of the m images of a set from its graph (the graph `needsGraph` describes). */
export function scoreFromGraph(spec: SetScoreSpec, set: ReferenceSet, graph: NeighborGraph): Float64Array {
  if (spec.family === 'official') return officialScoresFromGraph(graph, set.m, set.k, spec.kind, !!set.text);
  const scores = scoreGraph(spec.kind, set.text ? dropPartners(graph, set.m, set.k) : graph, set.d);
  // image+text: rows m..2m-1 are the captions, scored only as neighbours
  return set.text ? scores.slice(0, set.m) : scores;
}

/**
 * The graph a spec scores from, as (points, rows, neighbours per row):
 * textbook scores need k (k + 1 with captions, before dropping partners),
 * official ones k + 1 (k + 2 with captions).
 */
export function graphRequest(spec: SetScoreSpec, set: ReferenceSet): { points: Float32Array; n: number; k: number } {
  const extra = (spec.family === 'official' ? 1 : 0) + (set.text ? 1 : 0);
  return set.text ? { points: stackWithText(set), n: 2 * set.m, k: set.k + extra } : { points: set.embeddings, n: set.m, k: set.k + extra };
}

/** Scores of the m images of one reference set, neighbours from `build`. */
export function scoreSetWith(spec: SetScoreSpec, set: ReferenceSet, build: GraphBuilder): Float64Array {
  const req = graphRequest(spec, set);
  return scoreFromGraph(spec, set, build(req.points, req.n, set.d, req.k, set.search, set.seed));
}
