import * as tf from '@tensorflow/tfjs';
import { copyTensorInto, tensorFrom } from '../backend/tensorIO.js';
import type { Param } from '../model/params.js';
import { KernelHeap } from '../backend/wasm/heap.js';
import { decayMask, flatLayout, type FlatLayout } from './flatLayout.js';
import type { AdamWOptions } from './optimizer.js';

/** Flat parameter and moment vectors (views of shared memory) and the decay mask. */
export interface FlatOptimizerState {
  readonly params: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
  /** 1 where decoupled weight decay applies. */
  readonly decay: Uint8Array;
}

/** The per-step scalars of an AdamW update: both bias corrections and the decoupled weight-decay factor. */
function adamwScalars(options: AdamWOptions, lr: number, step: number): { invSqrtC2: number; stepSize: number; shrink: number } {
  const { beta1, beta2, weightDecay } = options;
  return { invSqrtC2: 1 / Math.sqrt(1 - beta2 ** step), stepSize: lr / (1 - beta1 ** step), shrink: weightDecay > 0 ? 1 - lr * weightDecay : 1 };
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
  const { beta1, beta2, eps } = options;
  const c1 = 1 - beta1;
  const c2 = 1 - beta2;
  const { invSqrtC2: invSqrtCorrection2, stepSize, shrink } = adamwScalars(options, lr, step);
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

/** Where `adamwRangeKernel` finds the vectors: a heap and byte offsets in it. */
export interface HeapOptimizerState {
  readonly heap: KernelHeap;
  readonly params: number;
  readonly m: number;
  readonly v: number;
  /** The first gradient slot; the others follow `gradStride` bytes apart. */
  readonly grads: number;
  readonly gradStride: number;
  readonly gradCount: number;
}

/**
 * `adamwRange` over [lo, hi) on the wasm SIMD kernel: the same bits (the
 * kernel runs the same float64 operations, summing the gradient slots in
 * order), about 10x faster. `state` holds JS views of the same vectors, for
 * the last n % 4 elements of each parameter, which the kernel leaves.
 */
export function adamwRangeKernel(
  at: HeapOptimizerState,
  state: FlatOptimizerState,
  grads: readonly Float32Array[],
  layout: FlatLayout,
  lo: number,
  hi: number,
  options: AdamWOptions,
  lr: number,
  step: number,
): void {
  const { beta1, beta2, eps } = options;
  const { invSqrtC2, stepSize, shrink } = adamwScalars(options, lr, step);
  for (const s of layout.slots) {
    const from = Math.max(lo, s.offset);
    const to = Math.min(hi, s.offset + s.size);
    if (from >= to) continue;
    const n = (to - from) & ~3;
    if (n > 0) {
      const b = from * 4;
      at.heap.k.adamwsum(at.params + b, at.m + b, at.v + b, at.grads + b, n, beta1, 1 - beta1, beta2, 1 - beta2, invSqrtC2, eps, stepSize, s.decay ? shrink : 1, at.gradStride, at.gradCount);
    }
    if (from + n < to) adamwRange(state, grads, from + n, to, options, lr, step);
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

/**
 * AdamW over host copies of the parameters (one flat vector): the gradient
 * tensors are read once, the update is one typed-array loop, and each
 * variable gets one new tensor. On the CPU backends this replaces ~10 small
 * kernels per parameter tensor of the tensor-op `AdamW`; results are the
 * same (tested). The host vector is the source of truth between steps:
 * `reload()` after the model's variables were changed elsewhere (rewind,
 * checkpoint restore).
 */
export class FlatAdamW {
  readonly layout: FlatLayout;
  private readonly state: FlatOptimizerState;
  private readonly grad: Float32Array;
  /** With `wasm` storage: the heap holding params, m, v, grad (in that order; never grown, so the views stay valid). */
  private readonly heap: KernelHeap | null;
  step = 0;

  /**
   * `storage: 'wasm'` keeps the vectors in a wasm heap and updates them with
   * the SIMD `adamw` kernel (same bits as the JS loop, ~10x faster; used
   * with the kernel step, where the update was a fifth of the step).
   */
  constructor(
    private readonly params: readonly Param[],
    readonly options: AdamWOptions,
    storage: 'js' | 'wasm' = 'js',
  ) {
    this.layout = flatLayout(params.map((p) => ({ name: p.name, shape: p.variable.shape, decay: p.decay })));
    const n = this.layout.total;
    if (storage === 'wasm') {
      this.heap = KernelHeap.private(16 * n + 64);
      const buffer = this.heap.memory.buffer;
      const view = (k: number) => new Float32Array(buffer, k * n * 4, n);
      this.state = { params: view(0), m: view(1), v: view(2), decay: decayMask(this.layout) };
      this.grad = view(3);
    } else {
      this.heap = null;
      this.state = { params: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n), decay: decayMask(this.layout) };
      this.grad = new Float32Array(n);
    }
    this.reload();
  }

  /** Take the variables' current values as the parameters. */
  reload(): void {
    this.params.forEach((p, i) => copyTensorInto(p.variable, this.state.params, this.layout.slots[i].offset));
  }

  apply(grads: tf.NamedTensorMap, lr: number): void {
    this.params.forEach((p, i) => {
      const g = grads[p.variable.name];
      const slot = this.layout.slots[i];
      if (g) copyTensorInto(g, this.grad, slot.offset);
      else this.grad.fill(0, slot.offset, slot.offset + slot.size);
    });
    this.applyFlat(this.grad, lr);
  }

  /** The current parameters, flat (read-only for callers: `applyFlat` owns them). */
  get values(): Float32Array {
    return this.state.params;
  }

  /** A gradient vector in the flat layout that callers may fill and pass to `applyFlat`. */
  get gradient(): Float32Array {
    return this.grad;
  }

  /** One update from a gradient already in the flat layout; the variables get the new values. */
  applyFlat(grad: Float32Array, lr: number): void {
    this.step += 1;
    if (this.heap) this.wasmUpdate(grad, lr);
    else adamwRange(this.state, [grad], 0, this.layout.total, this.options, lr, this.step);
    tf.tidy(() => {
      this.params.forEach((p, i) => {
        const slot = this.layout.slots[i];
        p.variable.assign(tensorFrom(this.state.params.subarray(slot.offset, slot.offset + slot.size), slot.shape));
      });
    });
  }

  private wasmUpdate(grad: Float32Array, lr: number): void {
    const heap = this.heap!;
    if (grad !== this.grad) this.grad.set(grad);
    const { beta1, beta2, eps } = this.options;
    const t = this.step;
    const n = this.layout.total;
    const { invSqrtC2, stepSize, shrink } = adamwScalars(this.options, lr, t);
    for (const s of this.layout.slots) {
      const at = s.offset * 4;
      heap.k.adamw(at, at + 4 * n, at + 8 * n, at + 12 * n, s.size, beta1, 1 - beta1, beta2, 1 - beta2, invSqrtC2, eps, stepSize, s.decay ? shrink : 1);
      const done = s.size - (s.size % 4);
      if (done < s.size) adamwRange(this.state, [this.grad], s.offset + done, s.offset + s.size, this.options, lr, t);
    }
  }

  stateByName(): { step: number; moments: Map<string, { m: Float32Array; v: Float32Array; shape: number[] }> } {
    const moments = new Map<string, { m: Float32Array; v: Float32Array; shape: number[] }>();
    for (const s of this.layout.slots) {
      moments.set(s.name, { m: this.state.m.slice(s.offset, s.offset + s.size), v: this.state.v.slice(s.offset, s.offset + s.size), shape: [...s.shape] });
    }
    return { step: this.step, moments };
  }

  restore(step: number, moments: Map<string, { m: Float32Array; v: Float32Array }>): void {
    this.step = step;
    for (const s of this.layout.slots) {
      const mv = moments.get(s.name);
      if (!mv) throw new Error(`optimizer state has no moments for ${s.name}`);
      this.state.m.set(mv.m, s.offset);
      this.state.v.set(mv.v, s.offset);
    }
    this.reload();
  }

  reset(): void {
    this.step = 0;
    this.state.m.fill(0);
    this.state.v.fill(0);
    this.reload();
  }
}
