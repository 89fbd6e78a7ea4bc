import * as tf from '@tensorflow/tfjs';
import type { ClipDataset } from './types.js';
import { imageBytes } from './types.js';

/** One training batch as raw arrays; the model turns them into tensors. */
export interface RawBatch {
  readonly indices: Int32Array;
  /** HWC uint8 pixels, back to back. */
  readonly pixels: Uint8Array;
  /** [size, maxTokens] token ids. */
  readonly tokens: Int32Array;
  /** Per-sample loss weights, or null when every sample has weight 1. */
  readonly weights: Float32Array | null;
}

/** The dataset as a tfjs-data stream of samples `{index, id, image, caption, label}` (default: every index in order). */
export function sampleStream(dataset: ClipDataset, indices?: ArrayLike<number>) {
  const n = indices ? indices.length : dataset.size;
  const bytes = imageBytes(dataset.imageShape);
  return tf.data.generator(async function* () {
    const one = new Int32Array(1);
    for (let r = 0; r < n; r++) {
      const index = indices ? indices[r] : r;
      one[0] = index;
      const image = new Uint8Array(bytes);
      await dataset.readImages(one, image);
      yield { index, id: dataset.id(index), image, caption: dataset.caption(index), label: dataset.label(index) };
    }
  });
}

export interface BatchStreamOptions {
  /** Sample indices in the order the epoch visits them (dropped samples already left out). */
  readonly order: Int32Array;
  readonly batchSize: number;
  /** Token ids of every training caption, [dataset.size, maxTokens]. */
  readonly tokens: Int32Array;
  readonly maxTokens: number;
  /** Sample-weight table values, or null to skip weighting. */
  readonly weights: Float32Array | null;
  /** Batches assembled ahead of the training step (overlaps slow image reads). */
  readonly prefetch: number;
}

/**
 * An epoch's batches through tfjs-data, with prefetch. A trailing batch of
 * one sample is dropped: a contrastive loss needs at least one negative.
 */
export function batchStream(dataset: ClipDataset, opts: BatchStreamOptions) {
  const bytes = imageBytes(dataset.imageShape);
  const { order, batchSize, tokens, maxTokens, weights } = opts;
  const stream = tf.data.generator(async function* () {
    for (let start = 0; start + 1 < order.length; start += batchSize) {
      const indices = order.slice(start, Math.min(order.length, start + batchSize));
      const pixels = new Uint8Array(indices.length * bytes);
      await dataset.readImages(indices, pixels);
      const batchTokens = new Int32Array(indices.length * maxTokens);
      let batchWeights: Float32Array | null = null;
      for (let r = 0; r < indices.length; r++) {
        batchTokens.set(tokens.subarray(indices[r] * maxTokens, (indices[r] + 1) * maxTokens), r * maxTokens);
      }
      if (weights) {
        batchWeights = new Float32Array(indices.length);
        let uniform = true;
        for (let r = 0; r < indices.length; r++) {
          batchWeights[r] = weights[indices[r]];
          if (batchWeights[r] !== 1) uniform = false;
        }
        if (uniform) batchWeights = null;
      }
      const batch: RawBatch = { indices, pixels, tokens: batchTokens, weights: batchWeights };
      yield batch as unknown as tf.TensorContainer;
    }
  });
  return (opts.prefetch > 0 ? stream.prefetch(opts.prefetch) : stream) as unknown as tf.data.Dataset<RawBatch & tf.TensorContainerObject>;
}

/** One batch of `imageBatches`: the pixels of rows start..start+count-1 of the requested order. */
export interface ImageBatch {
  readonly pixels: Uint8Array;
  readonly count: number;
  readonly start: number;
}

/**
 * The images of `indices` (default: every sample) in order, `batchSize` at a
 * time. With `reuse` one pixel buffer serves every batch (read it before the
 * next one); without, each batch has its own, so it can be transferred to a
 * worker thread.
 */
export async function* imageBatches(dataset: ClipDataset, indices: ArrayLike<number> | undefined, batchSize: number, reuse: boolean): AsyncGenerator<ImageBatch> {
  const n = indices ? indices.length : dataset.size;
  const bytes = imageBytes(dataset.imageShape);
  const batch = Math.max(1, batchSize);
  const shared = reuse ? new Uint8Array(batch * bytes) : null;
  for (let start = 0; start < n; start += batch) {
    const count = Math.min(batch, n - start);
    const chunk = new Int32Array(count);
    for (let r = 0; r < count; r++) chunk[r] = indices ? indices[start + r] : start + r;
    const pixels = shared ? shared.subarray(0, count * bytes) : new Uint8Array(count * bytes);
    await dataset.readImages(chunk, pixels);
    yield { pixels, count, start };
  }
}
