import * as tf from '@tensorflow/tfjs';
import type { RawBatch } from '../data/stream.js';
import type { ClipModel } from '../model/clip.js';
import { prefersHostKernels } from '../backend/kernels.js';
import { FlatAdamW } from './flatAdamw.js';
import { AdamW, type AdamWOptions } from './optimizer.js';

export interface OptimizerMoments {
  m: Float32Array;
  v: Float32Array;
  shape: number[];
}

export interface OptimizerState {
  step: number;
  moments: Map<string, OptimizerMoments>;
}

/**
 * How a training step is executed: in this thread (`LocalStepper`) or
 * data-parallel across worker threads. The trainer only sees this interface;
 * the main thread's model stays the reference for embedding, evaluation and
 * checkpoints (`syncModel` makes it current).
 */
export interface StepRunner {
  readonly optimizerOptions: AdamWOptions;
  /** One optimizer step on the batch; resolves to the batch's loss. */
  step(batch: RawBatch, lr: number): Promise<number>;
  /** Bring the main-thread model's parameters up to date (no-op in process). */
  syncModel(): Promise<void>;
  /** The main-thread model's parameters were changed (rewind, restore): take them over. */
  reloadFromModel(): Promise<void>;
  optimizerState(): Promise<OptimizerState>;
  restoreOptimizer(state: { step: number; moments: Map<string, { m: Float32Array; v: Float32Array }> }): Promise<void>;
  resetOptimizer(): Promise<void>;
  dispose(): Promise<void>;
}

/**
 * Forward, backward and AdamW in this thread, on the model's own variables.
 * On the CPU backends the update runs on host copies (FlatAdamW); elsewhere
 * with tensor ops (AdamW), which keeps a GPU's parameters on the device.
 */
export class LocalStepper implements StepRunner {
  private readonly optimizer: AdamW | FlatAdamW;
  private readonly variables: tf.Variable[];

  constructor(
    private readonly model: ClipModel,
    readonly optimizerOptions: AdamWOptions,
  ) {
    this.optimizer = prefersHostKernels() ? new FlatAdamW(model.params.list, optimizerOptions) : new AdamW(model.params.list, optimizerOptions);
    this.variables = model.params.variables();
  }

  async step(raw: RawBatch, lr: number): Promise<number> {
    const { model } = this;
    const size = raw.indices.length;
    const lossTensor = tf.tidy(() => {
      const batch = {
        images: model.pixelsToTensor(raw.pixels, size),
        tokens: model.tokensToTensor(raw.tokens, size),
        weights: raw.weights ? tf.tensor1d(raw.weights) : undefined,
      };
      const { value, grads } = tf.variableGrads(() => model.loss(batch), this.variables);
      this.optimizer.apply(grads, lr);
      return value;
    });
    const loss = (await lossTensor.data())[0];
    lossTensor.dispose();
    return loss;
  }

  async syncModel(): Promise<void> {}

  async reloadFromModel(): Promise<void> {
    if (this.optimizer instanceof FlatAdamW) this.optimizer.reload();
  }

  async optimizerState(): Promise<OptimizerState> {
    return this.optimizer instanceof FlatAdamW ? this.optimizer.stateByName() : this.optimizer.state();
  }

  async restoreOptimizer(state: { step: number; moments: Map<string, { m: Float32Array; v: Float32Array }> }): Promise<void> {
    this.optimizer.restore(state.step, state.moments);
  }

  async resetOptimizer(): Promise<void> {
    this.optimizer.reset();
  }

  async dispose(): Promise<void> {
    if (this.optimizer instanceof AdamW) this.optimizer.dispose();
  }
}
