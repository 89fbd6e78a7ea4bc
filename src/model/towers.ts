import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../util/rng.js';
import { bagOfWordsMean } from './bagOfWords.js';
import { normal, type ParamSet } from './params.js';

/** Everything needed to rebuild a model: saved in model.json's `modelTopology`. */
export interface ClipArchitecture {
  readonly imageShape: readonly [number, number, number];
  readonly imageTower: 'mlp' | 'conv';
  readonly hidden: readonly number[];
  readonly convChannels: readonly number[];
  readonly convDense: number;
  readonly vocabSize: number;
  readonly maxTokens: number;
  readonly textWidth: number;
  readonly textHidden: readonly number[];
  readonly embedDim: number;
  readonly initTemperature: number;
  readonly maxLogitScale: number;
}

function dense(params: ParamSet, prefix: string, x: tf.Tensor2D): tf.Tensor2D {
  return tf.add(tf.matMul(x, params.get(`${prefix}/kernel`) as tf.Tensor2D), params.get(`${prefix}/bias`)) as tf.Tensor2D;
}

/** Output side of a stride-2 'same' conv. */
const halve = (n: number) => Math.ceil(n / 2);

export function createImageTower(params: ParamSet, arch: ClipArchitecture, rng: Rng): void {
  const [h, w, c] = arch.imageShape;
  if (arch.imageTower === 'mlp') {
    let width = h * w * c;
    arch.hidden.forEach((units, i) => {
      params.addDense(`image/dense${i}`, width, units, rng);
      width = units;
    });
    params.addDense('image/proj', width, arch.embedDim, rng);
    return;
  }
  let channels = c;
  let side = [h, w];
  arch.convChannels.forEach((out, i) => {
    params.addConv(`image/conv${i}`, 3, channels, out, rng);
    channels = out;
    side = side.map(halve);
  });
  params.addDense('image/dense', side[0] * side[1] * channels, arch.convDense, rng);
  params.addDense('image/proj', arch.convDense, arch.embedDim, rng);
}

/** Normalised pixels [B, H, W, C] to projected image embeddings [B, embedDim]. */
export function imageTower(params: ParamSet, arch: ClipArchitecture, images: tf.Tensor4D): tf.Tensor2D {
  const batch = images.shape[0];
  if (arch.imageTower === 'mlp') {
    let x = tf.reshape(images, [batch, -1]) as tf.Tensor2D;
    arch.hidden.forEach((_, i) => {
      x = tf.relu(dense(params, `image/dense${i}`, x));
    });
    return dense(params, 'image/proj', x);
  }
  let x: tf.Tensor4D = images;
  arch.convChannels.forEach((_, i) => {
    const conv = tf.conv2d(x, params.get(`image/conv${i}/kernel`) as tf.Tensor4D, 2, 'same');
    x = tf.relu(tf.add(conv, params.get(`image/conv${i}/bias`))) as tf.Tensor4D;
  });
  const flat = tf.reshape(x, [batch, -1]) as tf.Tensor2D;
  return dense(params, 'image/proj', tf.relu(dense(params, 'image/dense', flat)));
}

export function createTextTower(params: ParamSet, arch: ClipArchitecture, rng: Rng): void {
  // N(0, 1) word vectors like torch's EmbeddingBag; the pad row is never read
  // (masked out of the mean) so its value does not matter.
  params.add('text/embedding', [arch.vocabSize, arch.textWidth], normal(arch.vocabSize * arch.textWidth, 1, rng), false);
  let width = arch.textWidth;
  arch.textHidden.forEach((units, i) => {
    params.addDense(`text/dense${i}`, width, units, rng);
    width = units;
  });
  params.addDense('text/proj', width, arch.embedDim, rng);
}

/**
 * Token ids [B, L] (0 = padding) to projected text embeddings: the mean of the
 * caption's word vectors (a bag of words, like torch's EmbeddingBag 'mean'),
 * then optional hidden layers and a linear projection. The lookup is a row
 * gather, never a one-hot matmul over the vocabulary (see bagOfWords.ts).
 */
export function textTower(params: ParamSet, arch: ClipArchitecture, tokens: tf.Tensor2D): tf.Tensor2D {
  let x = bagOfWordsMean(params.get('text/embedding') as tf.Tensor2D, tokens);
  arch.textHidden.forEach((_, i) => {
    x = tf.relu(dense(params, `text/dense${i}`, x));
  });
  return dense(params, 'text/proj', x);
}
