import * as tf from '@tensorflow/tfjs';
import type { Param } from '../model/params.js';

export interface AdamWOptions {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
}

/**
 * AdamW (Loshchilov & Hutter), as torch.optim.AdamW: decoupled weight decay
 * `p -= lr * wd * p` on parameters marked `decay`, then the bias-corrected
 * Adam step. tfjs has no AdamW; its Adam would fold decay into the gradient.
 */
export class AdamW {
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  /** Number of updates applied (the bias correction's t). */
  step = 0;

  constructor(
    private readonly params: readonly Param[],
    readonly options: AdamWOptions,
  ) {
    for (const p of params) {
      this.m.set(p.name, tf.variable(tf.zerosLike(p.variable), false));
      this.v.set(p.name, tf.variable(tf.zerosLike(p.variable), false));
    }
  }

  apply(grads: tf.NamedTensorMap, lr: number): void {
    this.step += 1;
    const { beta1, beta2, eps, weightDecay } = this.options;
    const correction1 = 1 - beta1 ** this.step;
    const correction2 = 1 - beta2 ** this.step;
    const stepSize = lr / correction1;
    tf.tidy(() => {
      for (const p of this.params) {
        const g = grads[p.variable.name];
        if (!g) continue;
        const m = this.m.get(p.name)!;
        const v = this.v.get(p.name)!;
        const newM = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const newV = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        m.assign(newM);
        v.assign(newV);
        const denom = tf.add(tf.div(tf.sqrt(newV), Math.sqrt(correction2)), eps);
        let value: tf.Tensor = p.variable;
        if (p.decay && weightDecay > 0) value = tf.mul(value, 1 - lr * weightDecay);
        p.variable.assign(tf.sub(value, tf.mul(tf.div(newM, denom), stepSize)));
      }
    });
  }

  /** Moment estimates by parameter name, for checkpoints. */
  async state(): Promise<{ step: number; moments: Map<string, { m: Float32Array; v: Float32Array; shape: number[] }> }> {
    const moments = new Map<string, { m: Float32Array; v: Float32Array; shape: number[] }>();
    for (const p of this.params) {
      moments.set(p.name, {
        m: (await this.m.get(p.name)!.data()) as Float32Array,
        v: (await this.v.get(p.name)!.data()) as Float32Array,
        shape: p.variable.shape,
      });
    }
    return { step: this.step, moments };
  }

  restore(step: number, moments: Map<string, { m: Float32Array; v: Float32Array }>): void {
    this.step = step;
    for (const p of this.params) {
      const s = moments.get(p.name);
      if (!s) throw new Error(`optimizer state has no moments for ${p.name}`);
      tf.tidy(() => {
        this.m.get(p.name)!.assign(tf.tensor(s.m, p.variable.shape, 'float32'));
        this.v.get(p.name)!.assign(tf.tensor(s.v, p.variable.shape, 'float32'));
      });
    }
  }

  /** Zero moments and step count: a fresh optimizer over the same parameters. */
  reset(): void {
    this.step = 0;
    tf.tidy(() => {
      for (const t of [...this.m.values(), ...this.v.values()]) t.assign(tf.zerosLike(t));
    });
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}

/**
 * Linear warm-up then cosine decay to 0 over the whole run, per step (the
 * schedule of the reference experiment: warm-up capped at 10% of all steps).
 */
export function learningRate(step: number, totalSteps: number, peak: number, warmupSteps: number): number {
  const warm = Math.min(warmupSteps, Math.floor(totalSteps / 10));
  if (step < warm) return (peak * (step + 1)) / warm;
  const progress = (step - warm) / Math.max(1, totalSteps - warm);
  return 0.5 * peak * (1 + Math.cos(Math.PI * Math.min(1, progress)));
}
