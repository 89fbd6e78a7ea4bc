import * as tf from '@tensorflow/tfjs';
import { prefersHostKernels } from '../backend/kernels.js';
import { hostSymmetricCrossEntropy } from './contrastive.js';

/**
 * Rows scaled to unit L2 norm (epsilon keeps a zero row finite). rsqrt of a
 * sum of squares: tf.norm goes through pow and abs, several times slower on
 * wasm forward and backward.
 */
export function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.mul(x, tf.rsqrt(tf.maximum(tf.sum(tf.square(x), 1, true), 1e-24))) as tf.Tensor2D;
}

/**
 * Symmetric InfoNCE (CLIP's loss) with per-sample weights.
 *
 * logits[i, j] = scale * cos(image_i, text_j). For each i with weight w_i > 0:
 *   l_i = (CE(row i of logits, i) + CE(column i of logits, i)) / 2,
 * where samples with weight 0 are removed from every row and column (they are
 * neither positives nor negatives), and
 *   loss = sum_i w_i l_i / sum_i w_i.
 * With all weights 1 this is exactly CLIP's loss. Weights in (0, 1) scale a
 * sample's own terms but keep it as a full negative for the others.
 */
export function clipLoss(imageEmb: tf.Tensor2D, textEmb: tf.Tensor2D, logitScale: tf.Scalar, weights?: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const n = imageEmb.shape[0];
    const img = l2Normalize(imageEmb);
    const txt = l2Normalize(textEmb);
    // transpose first: the wasm backend's transposed matMul is ~10x slower.
    const logits = tf.mul(tf.matMul(img, tf.transpose(txt)), logitScale) as tf.Tensor2D;
    if (prefersHostKernels()) return hostSymmetricCrossEntropy(logits, weights);
    return symmetricCrossEntropy(logits, weights);
  });
}

/** The tensor-op version of the symmetric cross-entropy (kept for GPU backends, and as the reference in tests). */
export function symmetricCrossEntropy(logits: tf.Tensor2D, weights?: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const n = logits.shape[0];
    const eye = tf.eye(n);
    if (!weights) {
      const rowLoss = tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), eye), 1));
      const colLoss = tf.neg(tf.sum(tf.mul(tf.logSoftmax(tf.transpose(logits)), eye), 1));
      return tf.mean(tf.add(rowLoss, colLoss)).mul(0.5) as tf.Scalar;
    }
    const present = tf.cast(tf.greater(weights, 0), 'float32');
    // A large negative (not -Infinity) keeps the softmax finite when a row is
    // itself excluded; such rows get zero weight below anyway.
    const exclude = tf.mul(tf.sub(1, present), -1e9);
    const excludeColumns = tf.reshape(exclude, [1, n]);
    const imageToText = tf.add(logits, excludeColumns);
    const logitsT = tf.add(tf.transpose(logits), excludeColumns);
    const rowLoss = tf.neg(tf.sum(tf.mul(tf.logSoftmax(imageToText), eye), 1));
    const colLoss = tf.neg(tf.sum(tf.mul(tf.logSoftmax(logitsT), eye), 1));
    const perSample = tf.mul(tf.add(rowLoss, colLoss), 0.5);
    const total = tf.maximum(tf.sum(weights), 1e-12);
    return tf.div(tf.sum(tf.mul(perSample, weights)), total) as tf.Scalar;
  });
}
