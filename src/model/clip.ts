import * as tf from '@tensorflow/tfjs';
import { imageBatches } from '../data/stream.js';
import type { ClipDataset } from '../data/types.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { EmbeddingModel } from '../train/hooks.js';
import { Rng } from '../util/rng.js';
import { clipLoss } from './loss.js';
import { ParamSet } from './params.js';
import { createImageTower, createTextTower, imageTower, textTower, type ClipArchitecture } from './towers.js';

export interface Normalization {
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/** A batch ready for the towers. */
export interface BatchTensors {
  readonly images: tf.Tensor4D;
  readonly tokens: tf.Tensor2D;
  /** Per-sample loss weights, or undefined when all are 1. */
  readonly weights?: tf.Tensor1D;
}

const DEFAULT_EMBED_BATCH = 1024;

/**
 * A CLIP: image tower, bag-of-words text tower, both projected to a shared
 * space, and a learnable temperature. Owns its parameters, tokenizer and pixel
 * normalisation so that a saved model embeds data exactly as in training.
 */
export class ClipModel implements EmbeddingModel {
  readonly params = new ParamSet();
  embedBatchSize = DEFAULT_EMBED_BATCH;

  private constructor(
    readonly arch: ClipArchitecture,
    readonly tokenizer: Tokenizer,
    readonly normalization: Normalization,
  ) {}

  static create(arch: ClipArchitecture, tokenizer: Tokenizer, normalization: Normalization, seed: number): ClipModel {
    const model = new ClipModel(arch, tokenizer, normalization);
    const rng = Rng.derive(seed, 'model/init');
    createImageTower(model.params, arch, rng);
    createTextTower(model.params, arch, rng);
    model.params.add('logit_scale', [], Float32Array.of(Math.log(1 / arch.initTemperature)), false);
    return model;
  }

  get embedDim(): number {
    return this.arch.embedDim;
  }

  /** exp(learned log scale), clamped at maxLogitScale as CLIP does. */
  logitScale(): tf.Scalar {
    return tf.minimum(tf.exp(this.params.get('logit_scale')), this.arch.maxLogitScale) as tf.Scalar;
  }

  temperature(): number {
    return tf.tidy(() => 1 / this.logitScale().arraySync());
  }

  encodeImages(images: tf.Tensor4D): tf.Tensor2D {
    return imageTower(this.params, this.arch, images);
  }

  encodeTexts(tokens: tf.Tensor2D): tf.Tensor2D {
    return textTower(this.params, this.arch, tokens);
  }

  loss(batch: BatchTensors): tf.Scalar {
    return clipLoss(this.encodeImages(batch.images), this.encodeTexts(batch.tokens), this.logitScale(), batch.weights);
  }

  /** uint8 HWC pixels of `count` images into a normalised float tensor. */
  pixelsToTensor(pixels: Uint8Array, count: number): tf.Tensor4D {
    const [h, w, c] = this.arch.imageShape;
    const { mean, std } = this.normalization;
    const out = new Float32Array(count * h * w * c);
    const scale = std.map((s) => 1 / (255 * s));
    const shift = mean.map((m, i) => m / std[i]);
    for (let i = 0; i < out.length; i++) {
      const ch = i % c;
      out[i] = pixels[i] * scale[ch] - shift[ch];
    }
    return tf.tensor4d(out, [count, h, w, c]);
  }

  tokensToTensor(tokens: Int32Array, count: number): tf.Tensor2D {
    return tf.tensor2d(tokens, [count, this.arch.maxTokens], 'int32');
  }

  /** Projected, unnormalised image embeddings in the order of `indices` (default: all). */
  async embedImages(dataset: ClipDataset, indices?: ArrayLike<number>): Promise<Float32Array> {
    const n = indices ? indices.length : dataset.size;
    const d = this.embedDim;
    const out = new Float32Array(n * d);
    for await (const { pixels, count, start } of imageBatches(dataset, indices, this.embedBatchSize, true)) {
      const emb = tf.tidy(() => this.encodeImages(this.pixelsToTensor(pixels, count)));
      out.set((await emb.data()) as Float32Array, start * d);
      emb.dispose();
    }
    return out;
  }

  /** Projected, unnormalised text embeddings of `captions`. */
  async embedTexts(captions: readonly string[]): Promise<Float32Array> {
    const d = this.embedDim;
    const out = new Float32Array(captions.length * d);
    const batch = Math.max(1, this.embedBatchSize);
    for (let start = 0; start < captions.length; start += batch) {
      const slice = captions.slice(start, start + batch);
      const tokens = this.tokenizer.encode(slice);
      const emb = tf.tidy(() => this.encodeTexts(this.tokensToTensor(tokens, slice.length)));
      out.set((await emb.data()) as Float32Array, start * d);
      emb.dispose();
    }
    return out;
  }

  dispose(): void {
    this.params.dispose();
  }
}
