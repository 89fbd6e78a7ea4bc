import * as tf from '@tensorflow/tfjs';
import type { RawBatch } from '../data/stream.js';
import type { ClipModel } from '../model/clip.js';
import { prefersHostKernels } from '../backend/kernels.js';
import { FlatAdamW } from './flatAdamw.js';
import { flatLayout } from './flatLayout.js';
import { KernelStep, useKernelStep, type KernelMode } from './kernelStep.js';
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
  /**
   * The unnormalised image embeddings the last step's forward pass computed
   * (before its update), row t = the batch's sample t: a view, valid until
   * the next step. Null when the step does not keep them (tfjs ops).
   */
  stepImageEmbeddings(): Float32Array | null;
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
 * With `kernel: 'auto'` (the default) on the CPU backends, MLP models step
 * on the wasm GEMM kernels of kernelStep.ts instead of tfjs ops; the
 * variables still receive the new values after every step.
 */
export class LocalStepper implements StepRunner {
  private readonly optimizer: AdamW | FlatAdamW;
  private readonly variables: tf.Variable[];
  private readonly kernel: KernelStep | null;
  private lastImages: Float32Array | null = null;

  constructor(
    private readonly model: ClipModel,
    readonly optimizerOptions: AdamWOptions,
    options: { kernel?: KernelMode } = {},
  ) {
    const kernel = useKernelStep(options.kernel ?? 'auto', model.arch);
    this.optimizer = prefersHostKernels() ? new FlatAdamW(model.params.list, optimizerOptions, kernel ? 'wasm' : 'js') : new AdamW(model.params.list, optimizerOptions);
    this.variables = model.params.variables();
    const layout = flatLayout(model.params.list.map((p) => ({ name: p.name, shape: p.variable.shape, decay: p.decay })));
    this.kernel = kernel ? new KernelStep(model.arch, model.normalization, layout) : null;
  }

  /** Whether steps run on the wasm kernels (kernelStep.ts) rather than tfjs ops. */
  get usesKernel(): boolean {
    return this.kernel !== null;
  }

  async step(raw: RawBatch, lr: number): Promise<number> {
    const { model, kernel, optimizer } = this;
    const size = raw.indices.length;
    if (kernel && optimizer instanceof FlatAdamW) {
      const params = optimizer.values;
      const emb = kernel.forward(params, raw.pixels, raw.tokens, size);
      this.lastImages = emb.images;
      const loss = kernel.backward(params, emb.images, emb.texts, size, 0, raw.weights, optimizer.gradient);
      optimizer.applyFlat(optimizer.gradient, lr);
      return loss;
    }
    const lossTensor = tf.tidy(() => {
      const batch = {
        images: model.pixelsToTensor(raw.pixels, size),
        tokens: model.tokensToTensor(raw.tokens, size),
        weights: raw.weights ? tf.tensor1d(raw.weights) : undefined,
      };
      const { value, grads } = tf.variableGrads(() => model.loss(batch), this.variables);
      optimizer.apply(grads, lr);
      return value;
    });
    const loss = (await lossTensor.data())[0];
    lossTensor.dispose();
    return loss;
  }

  stepImageEmbeddings(): Float32Array | null {
    return this.lastImages;
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
