import * as tf from '@tensorflow/tfjs';

/** The part of the wasm backend's public surface used here. */
interface HeapBackend {
  typedArrayFromHeap(info: { shape: number[]; dtype: tf.DataType; dataId: object }): Float32Array;
}

/**
 * Whether the active backend copies a typed array into its own memory when a
 * tensor is made from it. The wasm backend does (into its heap); the cpu
 * backend keeps the array itself as the tensor's storage, so a view of shared
 * memory would change under the tensor.
 */
function copiesOnWrite(): boolean {
  return tf.getBackend() === 'wasm';
}

/**
 * A float32 tensor holding `values` now, whatever later happens to `values`
 * (a view of shared memory). No intermediate copy where the backend copies.
 */
export function tensorFrom(values: Float32Array, shape: readonly number[]): tf.Tensor {
  return tf.tensor(copiesOnWrite() ? values : values.slice(), shape as number[], 'float32');
}

/**
 * Writes a float32 tensor's values into `target` at `offset`. On wasm this
 * copies straight from the backend's heap (no intermediate array); elsewhere
 * through `dataSync`. The reverse direction (writing new parameter values
 * into a variable's heap memory) is deliberately not offered: a backend may
 * keep data derived from a tensor (e.g. packed weights of a matMul operator),
 * which an in-place change would leave stale. Variables get new tensors.
 */
export function copyTensorInto(tensor: tf.Tensor, target: Float32Array, offset: number): void {
  if (tensor.dtype === 'float32' && tf.getBackend() === 'wasm') {
    target.set((tf.backend() as unknown as HeapBackend).typedArrayFromHeap(tensor as unknown as { shape: number[]; dtype: tf.DataType; dataId: object }), offset);
    return;
  }
  target.set(tensor.dataSync() as Float32Array, offset);
}
