import * as tf from '@tensorflow/tfjs';
import { CandidateRefiner, checkSearchInput, rowNorms, type Distance, type NeighborGraph } from './types.js';

export interface ExactOptions {
  distance?: Distance;
  /** Query rows per matMul (default 2048). Memory holds blockSize x referenceBlock scores at once. */
  blockSize?: number;
  /** Reference points per matMul (default: as many as keep blockSize x referenceBlockSize at 2^25 scores). */
  referenceBlockSize?: number;
  /** Called after every query block with (rows done, n). */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Candidates kept per row beyond k + 1 (self). The float32 matMul form
 * misorders distances that differ by less than its rounding error; the
 * candidates are re-ranked with exact distances, so a few spares let a true
 * neighbour that the matMul ranked just outside the k recover its place.
 */
const SPARE_CANDIDATES = 8;
/** Scores materialised per matMul: queryBlock x referenceBlock floats (128 MB). */
const SCORE_BUDGET = 1 << 25;
/** Reference blocks stay uploaded across query blocks while they total at most this many floats. */
const RESIDENT_REFERENCE_BUDGET = 1 << 26;

/**
 * Exact k nearest neighbours of every row by blocked matMul + top-k in
 * tfjs (whatever backend is active), never materialising n x n.
 *
 * Ranking uses one plain matMul per (query block, reference block) on
 * augmented features: L2 scores are 2 x.y - |y|^2 on mean-centred data (query
 * [x, 1] times reference [2y, -|y|^2]; the query's own |x|^2 is constant per row
 * so it does not change the order), cosine scores are the dot products of
 * unit rows. The reference is stored already transposed ([features, points])
 * because wasm runs matMul(a, b, false, true) about 10x slower than a plain
 * one. The top k + 1 + spares candidates per row are then re-ranked with
 * distances recomputed in float64 from the coordinates, which also yields the
 * reported (true) distances.
 */
export function exactNeighbors(points: Float32Array, n: number, d: number, k: number, options: ExactOptions = {}): NeighborGraph {
  checkSearchInput(points, n, d, k, 'exact neighbour search');
  const distance = options.distance ?? 'l2';
  const blockSize = Math.max(1, Math.min(options.blockSize ?? 2048, n));
  const norms = rowNorms(points, n, d);
  const features = distance === 'l2' ? d + 1 : d;
  const center = distance === 'l2' ? columnMeans(points, n, d) : null;

  const refSize = Math.max(1, Math.min(n, options.referenceBlockSize ?? Math.max(blockSize, Math.floor(SCORE_BUDGET / blockSize))));
  const refBlocks: { start: number; size: number; data: Float32Array; tensor: tf.Tensor2D | null }[] = [];
  for (let start = 0; start < n; start += refSize) {
    const size = Math.min(refSize, n - start);
    refBlocks.push({ start, size, data: referenceBlock(points, d, start, size, distance, norms, center), tensor: null });
  }
  const resident = n * features <= RESIDENT_REFERENCE_BUDGET;

  const c = Math.min(n, k + 1 + SPARE_CANDIDATES);
  const indices = new Int32Array(n * k);
  const distances = new Float32Array(n * k);
  const refiner = new CandidateRefiner(points, d, distance, norms, k);
  const queryBuf = new Float32Array(blockSize * features);
  const candScore = new Float32Array(blockSize * c);
  const candIdx = new Int32Array(blockSize * c);

  try {
    for (let q0 = 0; q0 < n; q0 += blockSize) {
      const b = Math.min(blockSize, n - q0);
      fillQueries(queryBuf, points, d, q0, b, distance, norms, center);
      candScore.fill(-Infinity, 0, b * c);
      candIdx.fill(-1, 0, b * c);
      const query = tf.tensor2d(queryBuf.subarray(0, b * features), [b, features]);
      try {
        for (const ref of refBlocks) {
          const refTensor = ref.tensor ?? tf.tensor2d(ref.data, [features, ref.size]);
          if (resident) ref.tensor = refTensor;
          const kb = Math.min(c, ref.size);
          const scores = tf.matMul(query, refTensor);
          const top = tf.topk(scores, kb, true);
          scores.dispose();
          if (!resident) refTensor.dispose();
          const values = top.values.dataSync() as Float32Array;
          const ids = top.indices.dataSync() as Int32Array;
          top.values.dispose();
          top.indices.dispose();
          mergeCandidates(values, ids, b, kb, ref.start, q0, candScore, candIdx, c);
        }
      } finally {
        query.dispose();
      }
      for (let r = 0; r < b; r++) {
        const row = q0 + r;
        if (refiner.refine(row, candIdx, r * c, c, k, indices, distances) < k) refiner.scan(row, n, k, indices, distances);
      }
      options.onProgress?.(q0 + b, n);
    }
  } finally {
    for (const ref of refBlocks) ref.tensor?.dispose();
  }
  return { n, k, indices, distances };
}

function columnMeans(points: Float32Array, n: number, d: number): Float64Array {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    for (let f = 0; f < d; f++) mean[f] += points[o + f];
  }
  for (let f = 0; f < d; f++) mean[f] /= n;
  return mean;
}

/** Reference rows start..start+size as a [features, size] matrix (already transposed). */
function referenceBlock(points: Float32Array, d: number, start: number, size: number, distance: Distance, norms: Float64Array, center: Float64Array | null): Float32Array {
  const features = distance === 'l2' ? d + 1 : d;
  const out = new Float32Array(features * size);
  for (let j = 0; j < size; j++) {
    const o = (start + j) * d;
    if (center) {
      let sq = 0;
      for (let f = 0; f < d; f++) {
        const v = points[o + f] - center[f];
        sq += v * v;
        out[f * size + j] = 2 * v;
      }
      out[d * size + j] = -sq;
    } else {
      const inv = norms[start + j] > 0 ? 1 / norms[start + j] : 0;
      for (let f = 0; f < d; f++) out[f * size + j] = points[o + f] * inv;
    }
  }
  return out;
}

function fillQueries(buf: Float32Array, points: Float32Array, d: number, q0: number, b: number, distance: Distance, norms: Float64Array, center: Float64Array | null): void {
  const features = distance === 'l2' ? d + 1 : d;
  for (let r = 0; r < b; r++) {
    const o = (q0 + r) * d;
    const w = r * features;
    if (center) {
      for (let f = 0; f < d; f++) buf[w + f] = points[o + f] - center[f];
      buf[w + d] = 1;
    } else {
      const inv = norms[q0 + r] > 0 ? 1 / norms[q0 + r] : 0;
      for (let f = 0; f < d; f++) buf[w + f] = points[o + f] * inv;
    }
  }
}

/** Merge one reference block's top candidates (descending) into each row's running best-c list, skipping the row itself. */
function mergeCandidates(values: Float32Array, ids: Int32Array, b: number, kb: number, refStart: number, q0: number, candScore: Float32Array, candIdx: Int32Array, c: number): void {
  for (let r = 0; r < b; r++) {
    const self = q0 + r;
    const base = r * c;
    for (let t = 0; t < kb; t++) {
      const v = values[r * kb + t];
      const j = ids[r * kb + t] + refStart;
      if (j === self) continue;
      if (!(v > candScore[base + c - 1])) break; // the block's list is descending: nothing later fits
      let p = c - 1;
      while (p > 0 && candScore[base + p - 1] < v) {
        candScore[base + p] = candScore[base + p - 1];
        candIdx[base + p] = candIdx[base + p - 1];
        p--;
      }
      candScore[base + p] = v;
      candIdx[base + p] = j;
    }
  }
}
