import * as tf from '@tensorflow/tfjs';

/**
 * The symmetric cross-entropy of CLIP on a [n, n] logits matrix, computed on
 * the host (typed arrays) with a hand-written gradient: one read of the
 * logits, one [n, n] gradient written back. On the CPU backends this
 * replaces ~20 small kernels (two log-softmaxes, transposes, masks, eye
 * products) that cost a tenth of a training step; on a GPU the tensor
 * version in loss.ts is kept (a host read would stall the device).
 *
 * Same definition as clipLoss: rows and columns of weight-0 samples are left
 * out, loss = sum_i w_i (CE_row(i) + CE_col(i)) / 2 / sum_i w_i.
 */
export function hostSymmetricCrossEntropy(logits: tf.Tensor2D, weights?: tf.Tensor1D): tf.Scalar {
  const n = logits.shape[0];
  const w = weights ? (weights.dataSync() as Float32Array) : new Float32Array(n).fill(1);
  const forward = (l: tf.Tensor) => {
    const L = l.dataSync() as Float32Array;
    let total = 0;
    for (let i = 0; i < n; i++) total += w[i];
    total = Math.max(total, 1e-12);
    // Per-row and per-column log-sum-exp over the present samples.
    const rowLse = new Float64Array(n);
    const colLse = new Float64Array(n);
    const colMax = new Float64Array(n).fill(-Infinity);
    for (let i = 0; i < n; i++) {
      if (!(w[i] > 0)) continue;
      for (let j = 0; j < n; j++) if (w[j] > 0 && L[i * n + j] > colMax[j]) colMax[j] = L[i * n + j];
    }
    const colSum = new Float64Array(n);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      if (!(w[i] > 0)) continue;
      let max = -Infinity;
      for (let j = 0; j < n; j++) if (w[j] > 0 && L[i * n + j] > max) max = L[i * n + j];
      let sum = 0;
      for (let j = 0; j < n; j++) {
        if (!(w[j] > 0)) continue;
        const v = L[i * n + j];
        sum += Math.exp(v - max);
        colSum[j] += Math.exp(v - colMax[j]);
      }
      rowLse[i] = max + Math.log(sum);
    }
    for (let j = 0; j < n; j++) if (w[j] > 0) colLse[j] = colMax[j] + Math.log(colSum[j]);
    for (let i = 0; i < n; i++) {
      if (!(w[i] > 0)) continue;
      loss += (w[i] * (rowLse[i] - L[i * n + i] + colLse[i] - L[i * n + i])) / 2;
    }
    const value = tf.scalar(loss / total);
    const gradFunc = (dy: tf.Tensor) => {
      const g = dy.dataSync()[0];
      const grad = new Float32Array(n * n);
      for (let i = 0; i < n; i++) {
        if (!(w[i] > 0)) continue;
        for (let j = 0; j < n; j++) {
          if (!(w[j] > 0)) continue;
          const v = L[i * n + j];
          // Row i's softmax (weight w_i) and column j's softmax (weight w_j) both see logit (i, j).
          let d = (w[i] * Math.exp(v - rowLse[i]) + w[j] * Math.exp(v - colLse[j])) / 2;
          if (i === j) d -= w[i];
          grad[i * n + j] = (g * d) / total;
        }
      }
      return tf.tensor2d(grad, [n, n]);
    };
    return { value, gradFunc };
  };
  return tf.customGrad(forward as never)(logits) as tf.Scalar;
}
