import type { Rng } from '../util/rng.js';

const EULER_GAMMA = 0.5772156649015329;

/**
 * Average path length of an unsuccessful search in a binary search tree of
 * `size` points (Liu et al. 2008): c(s) = 2 H(s-1) - 2 (s-1) / s with
 * H(i) ~ ln i + gamma; c(2) = 1, c(s <= 1) = 0.
 */
export function averagePathLength(size: number): number {
  if (size <= 1) return 0;
  if (size === 2) return 1;
  return 2 * (Math.log(size - 1) + EULER_GAMMA) - (2 * (size - 1)) / size;
}

export interface IsolationForestOptions {
  trees: number;
  /** Points per tree (psi), capped at n. */
  sampleSize: number;
  rng: Rng;
}

/**
 * Isolation-forest anomaly score s(x) = 2^(-E[h(x)] / c(psi)) in (0, 1],
 * higher = easier to isolate (Liu, Ting, Zhou 2008): each tree is grown on
 * psi points drawn without replacement, splitting on a uniformly chosen
 * non-constant feature at a uniform threshold in [min, max), down to depth
 * ceil(log2 psi); h(x) = depth reached + c(size of the leaf). Trees live in
 * typed arrays; evaluating all n points costs n x trees x depth steps.
 */
export function isolationForestScores(embeddings: Float32Array, n: number, d: number, options: IsolationForestOptions): Float64Array {
  const { rng } = options;
  const psi = Math.min(Math.max(1, options.sampleSize), n);
  const maxDepth = Math.ceil(Math.log2(Math.max(2, psi)));
  const capacity = 2 * psi + 1;
  const feature = new Int32Array(capacity); // -1 = leaf
  const threshold = new Float64Array(capacity);
  const left = new Int32Array(capacity);
  const right = new Int32Array(capacity);
  const leafSize = new Int32Array(capacity);
  const pool = new Int32Array(n);
  for (let i = 0; i < n; i++) pool[i] = i;
  const work = new Int32Array(psi);
  const pathSum = new Float64Array(n);

  for (let tree = 0; tree < options.trees; tree++) {
    // Partial Fisher-Yates over a persistent permutation: a uniform sample without replacement.
    for (let t = 0; t < psi; t++) {
      const j = t + rng.int(n - t);
      const tmp = pool[t];
      pool[t] = pool[j];
      pool[j] = tmp;
      work[t] = pool[t];
    }
    let nodes = 0;
    const build = (lo: number, hi: number, depth: number): number => {
      const node = nodes++;
      const size = hi - lo;
      feature[node] = -1;
      leafSize[node] = size;
      if (depth >= maxDepth || size <= 1) return node;
      const split = chooseSplit(embeddings, d, work, lo, hi, rng);
      if (split < 0) return node;
      const f = split;
      let min = Infinity;
      let max = -Infinity;
      for (let t = lo; t < hi; t++) {
        const v = embeddings[work[t] * d + f];
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const thr = min + rng.float() * (max - min);
      // Partition work[lo, hi) into x < thr | x >= thr.
      let mid = lo;
      for (let t = lo; t < hi; t++) {
        if (embeddings[work[t] * d + f] < thr) {
          const tmp = work[t];
          work[t] = work[mid];
          work[mid] = tmp;
          mid++;
        }
      }
      feature[node] = f;
      threshold[node] = thr;
      left[node] = build(lo, mid, depth + 1);
      right[node] = build(mid, hi, depth + 1);
      return node;
    };
    build(0, psi, 0);

    for (let i = 0; i < n; i++) {
      let node = 0;
      let depth = 0;
      const o = i * d;
      while (feature[node] >= 0) {
        node = embeddings[o + feature[node]] < threshold[node] ? left[node] : right[node];
        depth++;
      }
      pathSum[i] += depth + averagePathLength(leafSize[node]);
    }
  }
  const norm = averagePathLength(psi);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const mean = pathSum[i] / options.trees;
    out[i] = norm > 0 ? Math.pow(2, -mean / norm) : 0.5;
  }
  return out;
}

/** A uniformly random feature among those not constant on work[lo, hi); -1 if all are constant. */
function chooseSplit(x: Float32Array, d: number, work: Int32Array, lo: number, hi: number, rng: Rng): number {
  const isConstant = (f: number) => {
    const first = x[work[lo] * d + f];
    for (let t = lo + 1; t < hi; t++) if (x[work[t] * d + f] !== first) return false;
    return true;
  };
  // A first uniform draw that is non-constant is accepted; otherwise draw
  // uniformly among the non-constant ones. Together: uniform over non-constant features.
  const first = rng.int(d);
  if (!isConstant(first)) return first;
  let candidates = 0;
  for (let f = 0; f < d; f++) if (!isConstant(f)) candidates++;
  if (candidates === 0) return -1;
  let pick = rng.int(candidates);
  for (let f = 0; f < d; f++) {
    if (!isConstant(f) && pick-- === 0) return f;
  }
  return -1;
}
