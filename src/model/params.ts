import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../util/rng.js';

/**
 * Named trainable parameters. Initial values come from our seeded Rng (not
 * tfjs's initialisers) so that a seed gives the same model on every backend.
 */
export interface Param {
  readonly name: string;
  readonly variable: tf.Variable;
  /** Decoupled weight decay applies (matrices and conv filters; not biases, embeddings, temperature). */
  readonly decay: boolean;
}

let nextVariableId = 0;

export class ParamSet {
  private readonly byName = new Map<string, Param>();

  get list(): readonly Param[] {
    return [...this.byName.values()];
  }

  get(name: string): tf.Variable {
    const p = this.byName.get(name);
    if (!p) throw new Error(`no parameter named ${name}`);
    return p.variable;
  }

  add(name: string, shape: number[], values: Float32Array, decay: boolean): tf.Variable {
    if (this.byName.has(name)) throw new Error(`duplicate parameter ${name}`);
    // tfjs variable names are global: a counter keeps several models (a
    // retrain, tests) from colliding.
    const variable = tf.variable(tf.tensor(values, shape, 'float32'), true, `${name.replace(/\//g, '_')}_${nextVariableId++}`);
    this.byName.set(name, { name, variable, decay });
    return variable;
  }

  /** PyTorch's default Linear init: U(-1/sqrt(fanIn), 1/sqrt(fanIn)) for weight and bias. */
  addDense(prefix: string, fanIn: number, fanOut: number, rng: Rng): void {
    const bound = 1 / Math.sqrt(fanIn);
    this.add(`${prefix}/kernel`, [fanIn, fanOut], uniform(fanIn * fanOut, bound, rng), true);
    this.add(`${prefix}/bias`, [fanOut], uniform(fanOut, bound, rng), false);
  }

  /** 3x3 (or any) conv filter in tfjs's [h, w, in, out] layout, PyTorch's default init. */
  addConv(prefix: string, size: number, inChannels: number, outChannels: number, rng: Rng): void {
    const fanIn = size * size * inChannels;
    const bound = 1 / Math.sqrt(fanIn);
    this.add(`${prefix}/kernel`, [size, size, inChannels, outChannels], uniform(fanIn * outChannels, bound, rng), true);
    this.add(`${prefix}/bias`, [outChannels], uniform(outChannels, bound, rng), false);
  }

  variables(): tf.Variable[] {
    return this.list.map((p) => p.variable);
  }

  /** Snapshot of every value (copies), e.g. for checkpoints and equality tests. */
  async values(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const p of this.list) out.set(p.name, (await p.variable.data()) as Float32Array);
    return out;
  }

  assign(values: Map<string, { shape: readonly number[]; data: Float32Array }>): void {
    for (const p of this.list) {
      const v = values.get(p.name);
      if (!v) throw new Error(`checkpoint has no value for parameter ${p.name}`);
      if (v.shape.join('x') !== p.variable.shape.join('x')) {
        throw new Error(`checkpoint parameter ${p.name} has shape ${v.shape.join('x')}, model expects ${p.variable.shape.join('x')}`);
      }
      tf.tidy(() => p.variable.assign(tf.tensor(v.data, p.variable.shape, 'float32')));
    }
  }

  count(): number {
    return this.list.reduce((s, p) => s + p.variable.size, 0);
  }

  dispose(): void {
    for (const p of this.list) p.variable.dispose();
    this.byName.clear();
  }
}

export function uniform(n: number, bound: number, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * rng.float() - 1) * bound;
  return out;
}

export function normal(n: number, std: number, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = std * rng.normal();
  return out;
}
