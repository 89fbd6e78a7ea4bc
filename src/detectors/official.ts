import { kernelExactNeighbors } from '../neighbors/kernelSearch.js';
import type { NeighborGraph } from '../neighbors/types.js';

/**
 * The official code's scores (HanxunH/Detect-CLIP-Backdoor-Samples), as
 * described in RESEARCH.md, reproduced literally for comparison with the
 * paper; the textbook detectors in ./local.ts are the defaults. Per query i
 * of a reference batch of m points, L2 on raw embeddings:
 *
 * - `a`: the query's distances to the other points (itself removed; in
 *   image+text mode [other images, other captions], own caption removed too),
 *   sorted ascending, 0-based; `idx`: the sorting permutation *of that masked
 *   row* (positions, not batch indices).
 * - `F`: the row-sorted full distance matrix of the batch ([images; captions]
 *   in image+text mode), self included, so F[o, 0] = 0.
 * - kdist = a[k] (the (k+1)-th nearest other point).
 * - SLOF = mean_{t<k} a[k] / F[idx[t], k].
 * - DAO  = mean_{t<k} LIDF[idx[t]] * log(a[k] / F[idx[t], k]) with
 *   LIDF[o] = -k / sum_{t<k} log(F[o, t] / F[o, k] + 1e-4) (t = 0 is the
 *   point itself: a log(1e-4) term).
 * - SLOF and DAO map NaN -> 1000, +inf -> 1000, -inf -> 0.
 *
 * Because idx indexes the masked row but is used as a row of F, a neighbour
 * that sits after the query in the batch is read one row early (possibly the
 * query's own row); in image+text mode every position is read as a row of
 * [images; captions]. That is kept on purpose. Ties in a sorted row are
 * ordered by position (a stable sort; torch.sort does not promise one).
 * Exact duplicates tie bit for bit in the neighbour search too and keep that
 * order; near-duplicates closer than float32 matMul precision may not.
 *
 * Only the first k + 1 entries of each sorted row are ever read, so the
 * implementation uses an exact (k+1)-NN graph (k+2 in image+text mode, to
 * skip the own caption) instead of the full matrix: F[o, 0] = 0 and
 * F[o, t] = the t-th neighbour distance of o.
 */

export type OfficialKind = 'kdist' | 'slof' | 'dao';

/** The official code's replacement for NaN and +inf scores (its maximum). */
export const OFFICIAL_MAX_SCORE = 1000;
const LID_OFFSET = 1e-4;

/** Smallest batch the official scores are defined on: a[k] must exist (and F[., k]). */
export function officialMinBatch(k: number, text: boolean): number {
  return text ? Math.ceil((k + 3) / 2) : k + 2;
}

function officialMap(v: number): number {
  if (v !== v || v === Infinity) return OFFICIAL_MAX_SCORE;
  if (v === -Infinity) return 0;
  return v;
}

/**
 * Official scores of the m images of one batch, from a neighbour graph over
 * the batch (image mode: m rows, >= k+1 neighbours; image+text mode: 2m rows
 * [images; captions], >= k+2 neighbours; self excluded, sorted by distance
 * then index).
 */
export function officialScoresFromGraph(graph: NeighborGraph, m: number, k: number, kind: OfficialKind, text: boolean): Float64Array {
  const K = graph.k;
  const { indices, distances } = graph;
  if (graph.n !== (text ? 2 * m : m)) throw new RangeError(`officialScoresFromGraph: graph has ${graph.n} rows for a batch of ${m}${text ? ' images + captions' : ''}`);
  if (K < (text ? k + 2 : k + 1)) throw new RangeError(`officialScoresFromGraph: graph has ${K} neighbours per row, need ${text ? k + 2 : k + 1}`);
  // F[o, k] = distance to o's k-th other point (F[o, 0] is o itself).
  const fk = (o: number) => distances[o * K + k - 1];

  let lidf: Float64Array | null = null;
  if (kind === 'dao') {
    lidf = new Float64Array(graph.n);
    for (let o = 0; o < graph.n; o++) {
      const fo = fk(o);
      let s = Math.log(0 / fo + LID_OFFSET);
      for (let t = 1; t < k; t++) s += Math.log(distances[o * K + t - 1] / fo + LID_OFFSET);
      lidf[o] = -k / s;
    }
  }

  const out = new Float64Array(m);
  const pos = new Int32Array(k);
  for (let i = 0; i < m; i++) {
    // Walk the sorted neighbours, skipping the own caption, to get a[0..k] and idx[0..k-1].
    let w = 0;
    let ak = NaN;
    for (let t = 0; t < K && w <= k; t++) {
      const j = indices[i * K + t];
      if (text && j === i + m) continue;
      if (w === k) {
        ak = distances[i * K + t];
      } else if (!text || j < m) {
        pos[w] = j < i ? j : j - 1;
      } else {
        const c = j - m;
        pos[w] = m - 1 + (c < i ? c : c - 1);
      }
      w++;
    }
    if (kind === 'kdist') {
      out[i] = ak;
      continue;
    }
    let s = 0;
    for (let t = 0; t < k; t++) {
      const row = pos[t];
      s += kind === 'slof' ? ak / fk(row) : lidf![row] * Math.log(ak / fk(row));
    }
    out[i] = officialMap(s / k);
  }
  return out;
}

/**
 * Official scores of one reference batch (m x d images, optionally the m x d
 * captions for image+text mode), exact L2 neighbours.
 */
export function officialBatchScores(batch: Float32Array, m: number, d: number, k: number, kind: OfficialKind, textBatch?: Float32Array): Float64Array {
  if (!textBatch) return officialScoresFromGraph(kernelExactNeighbors(batch, m, d, k + 1, { distance: 'l2' }), m, k, kind, false);
  const both = new Float32Array(2 * m * d);
  both.set(batch.subarray(0, m * d), 0);
  both.set(textBatch.subarray(0, m * d), m * d);
  return officialScoresFromGraph(kernelExactNeighbors(both, 2 * m, d, k + 2, { distance: 'l2' }), m, k, kind, true);
}
