import * as tf from '@tensorflow/tfjs';
import { PAD } from '../data/tokenizer.js';

/**
 * Mean of each caption's word vectors (torch's EmbeddingBag 'mean' with a
 * padding index), with a hand-written gradient.
 *
 * Written with autodiff (gather, mask multiply, sum) the text tower cost a
 * quarter of a training step on wasm: the gradients of the broadcast mask
 * multiply and of the sum over tokens are [B, L, W] broadcasts, and gather's
 * own gradient transposes [B·L, W]. Here the forward pass is one row gather
 * and one segment sum, and the gradient scatters each caption's upstream
 * gradient / its length straight onto its words' rows. Padding positions are
 * routed to an extra segment that is sliced off, so they neither contribute
 * nor receive anything. Same values and gradients as the autodiff version
 * (tested); all tfjs ops, so it runs on every backend.
 */
export function bagOfWordsMean(table: tf.Tensor2D, tokens: tf.Tensor2D): tf.Tensor2D {
  const [batch, length] = tokens.shape;
  const vocab = table.shape[0];
  const ids = tokens.dataSync() as Int32Array;
  const positions = batch * length;
  const captionOf = new Int32Array(positions); // caption of each position; pads -> `batch`
  const wordOf = new Int32Array(positions); // word row of each position; pads -> `vocab`
  const rowOf = new Int32Array(positions); // caption of each position, pads included
  const inverseCount = new Float32Array(batch);
  for (let b = 0; b < batch; b++) {
    let count = 0;
    for (let l = 0; l < length; l++) {
      const p = b * length + l;
      const pad = ids[p] === PAD;
      rowOf[p] = b;
      captionOf[p] = pad ? batch : b;
      wordOf[p] = pad ? vocab : ids[p];
      if (!pad) count++;
    }
    inverseCount[b] = 1 / Math.max(count, 1);
  }
  const forward = (t: tf.Tensor) => {
    const width = t.shape[1]!;
    const scale = tf.tensor2d(inverseCount, [batch, 1]);
    const vectors = tf.gather(t, tf.tensor1d(ids, 'int32'));
    const sums = tf.slice(tf.unsortedSegmentSum(vectors, tf.tensor1d(captionOf, 'int32'), batch + 1), [0, 0], [batch, width]);
    const value = tf.mul(sums, scale) as tf.Tensor2D;
    // Tensors made in the forward pass are gone by now: rebuild the small ones.
    const gradFunc = (dy: tf.Tensor) => {
      const perPosition = tf.gather(tf.mul(dy, tf.tensor2d(inverseCount, [batch, 1])), tf.tensor1d(rowOf, 'int32'));
      return tf.slice(tf.unsortedSegmentSum(perPosition, tf.tensor1d(wordOf, 'int32'), vocab + 1), [0, 0], [vocab, width]);
    };
    return { value, gradFunc };
  };
  return tf.customGrad(forward as never)(table) as tf.Tensor2D;
}
