import type { AdamWOptions } from '../optimizer.js';

/** Flat parameter and moment vectors (views of shared memory) and the decay mask. */
export interface FlatOptimizerState {
  readonly params: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
  /** 1 where decoupled weight decay applies. */
  readonly decay: Uint8Array;
}

/**
 * One AdamW update (torch.optim.AdamW, same formula as `AdamW.apply`) of
 * elements [lo, hi) of the flat vectors, with the gradient being the sum of
 * `grads` taken in array order, so that the result does not depend on which
 * thread runs it. `step` is the update's 1-based count (bias correction).
 * Plain typed-array loops: no allocation per element.
 */
export function adamwRange(
  state: FlatOptimizerState,
  grads: readonly Float32Array[],
  lo: number,
  hi: number,
  options: AdamWOptions,
  lr: number,
  step: number,
): void {
  const { params, m, v, decay } = state;
  const { beta1, beta2, eps, weightDecay } = options;
  const c1 = 1 - beta1;
  const c2 = 1 - beta2;
  const invSqrtCorrection2 = 1 / Math.sqrt(1 - beta2 ** step);
  const stepSize = lr / (1 - beta1 ** step);
  const shrink = weightDecay > 0 ? 1 - lr * weightDecay : 1;
  const g0 = grads[0];
  const g1 = grads.length > 1 ? grads[1] : null;
  const nGrads = grads.length;
  for (let i = lo; i < hi; i++) {
    let g = g0[i];
    if (g1 !== null) {
      g += g1[i];
      for (let w = 2; w < nGrads; w++) g += grads[w][i];
    }
    const mi = beta1 * m[i] + c1 * g;
    const vi = beta2 * v[i] + c2 * g * g;
    m[i] = mi;
    v[i] = vi;
    const denom = Math.sqrt(vi) * invSqrtCorrection2 + eps;
    const p = decay[i] === 1 ? params[i] * shrink : params[i];
    params[i] = p - (mi / denom) * stepSize;
  }
}

/** The part [starts[w], starts[w+1]) of a flat vector of `total` elements that worker w updates. */
export function updatePartition(total: number, workers: number, w: number): [number, number] {
  // Cut at multiples of 16 floats (64 bytes) so two threads never write the same cache line.
  const lines = Math.ceil(total / 16);
  const lo = Math.min(total, Math.floor((lines * w) / workers) * 16);
  const hi = w === workers - 1 ? total : Math.min(total, Math.floor((lines * (w + 1)) / workers) * 16);
  return [lo, hi];
}
