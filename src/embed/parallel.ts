import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { currentBackend } from '../backend/select.js';
import { imageBatches } from '../data/stream.js';
import type { ClipDataset } from '../data/types.js';
import { imageBytes } from '../data/types.js';
import type { ClipModel } from '../model/clip.js';
import { resolveThreads, runBounded, ThreadPool } from '../neighbors/parallel/pool.js';
import { MlpKernelEmbedder, mlpKernelSupports } from './mlpKernel.js';
import type { EmbedTask } from './protocol.js';

/**
 * Image embeddings on worker threads: each thread holds a copy of the
 * model on its own tfjs backend (wasm runs one thread per thread in Node),
 * takes the main model's current weights at every call (about 3 MB for the
 * Fashion-MNIST MLP), and embeds the pixel batches the main thread reads
 * and sends it, at most two batches in flight per thread. With the tfjs
 * forward pass the embeddings are exactly `ClipModel.embedImages`'s (the
 * same ops on the same backend, batch by batch).
 *
 * An MLP image tower is computed instead by the wasm SIMD GEMM
 * (./mlpKernel.ts, about 2x faster than tfjs-wasm here), in this thread when
 * `threads` is 1; each call first compares it with the model's own
 * embeddings of up to 64 images and falls back to tfjs if they differ by
 * more than float32 rounding (relative 1e-4), so the fast path can never
 * silently change what the filter sees. `kernel: false` turns it off. With
 * the native TensorFlow backend (itself multi-threaded, maybe a GPU) it is
 * `model.embedImages`.
 */

export interface ParallelEmbedOptions {
  /** Worker threads (default os.availableParallelism()). */
  threads?: number;
  /** Images per batch (default: the model's embedBatchSize). */
  batchSize?: number;
  /** Use the wasm GEMM forward pass for MLP towers (default true). */
  kernel?: boolean;
}

/** Largest |a - b| relative to the largest |b| (and 1). */
export function relativeDiff(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

/** Agreement required of the GEMM forward pass with tfjs's (float32 rounding of different summation orders). */
const KERNEL_TOLERANCE = 1e-4;

function embedWorkerUrl(): URL {
  const here = import.meta.url;
  if (here.endsWith('.js')) return new URL('./worker.js', here);
  const compiled = new URL('../../dist/src/embed/worker.js', here);
  if (!existsSync(fileURLToPath(compiled))) throw new Error(`parallel embedding runs its threads from the compiled ${fileURLToPath(compiled)}, which does not exist: run \`npm run build\` first`);
  return compiled;
}

export class ParallelEmbedder {
  private pool: ThreadPool<EmbedTask> | null = null;
  private initialised: { model: ClipModel; backend: string } | null = null;
  /** Whether the last call used the GEMM forward pass (for logs and benchmarks). */
  lastUsedKernel = false;

  constructor(private readonly options: ParallelEmbedOptions = {}) {}

  get threads(): number {
    return resolveThreads(this.options.threads);
  }

  /** Projected, unnormalised image embeddings of `indices` (default all), row i = indices[i]. */
  async embedImages(model: ClipModel, dataset: ClipDataset, indices?: ArrayLike<number>): Promise<Float32Array> {
    const backend = currentBackend()?.name ?? 'wasm';
    const threads = this.threads;
    this.lastUsedKernel = false;
    if (backend === 'tensorflow') return model.embedImages(dataset, indices);
    const n = indices ? indices.length : dataset.size;
    const d = model.embedDim;
    const batch = Math.max(1, this.options.batchSize ?? model.embedBatchSize);
    const params = model.params.list.map((p) => ({ name: p.name, shape: [...p.variable.shape], data: p.variable.dataSync() as Float32Array }));
    const kernel = this.options.kernel !== false && mlpKernelSupports(model.arch) ? await this.checkedKernel(model, params, dataset, indices, batch) : null;
    this.lastUsedKernel = kernel !== null;
    if (threads === 1) {
      if (!kernel) return model.embedImages(dataset, indices);
      const out = new Float32Array(n * d);
      for await (const { pixels, count, start } of imageBatches(dataset, indices, batch, true)) kernel.embed(pixels, count, out, start * d);
      return out;
    }
    const pool = await this.ready(model, backend, threads);
    await Promise.all(Array.from({ length: threads }, (_, w) => pool.runOn(w, { type: 'weights', params, kernel: kernel !== null })));
    const out = new Float32Array(n * d);
    async function* batchTasks(): AsyncGenerator<() => Promise<void>> {
      for await (const { pixels, count, start } of imageBatches(dataset, indices, batch, false)) {
        yield async () => out.set(await pool.run<Float32Array>({ type: 'embed', pixels, count }, [pixels.buffer as ArrayBuffer]), start * d);
      }
    }
    await runBounded(2 * threads, batchTasks());
    return out;
  }

  /** The GEMM forward pass with the model's current weights, if it agrees with the model on the first images. */
  private async checkedKernel(
    model: ClipModel,
    params: { name: string; shape: number[]; data: Float32Array }[],
    dataset: ClipDataset,
    indices: ArrayLike<number> | undefined,
    batch: number,
  ): Promise<MlpKernelEmbedder | null> {
    const n = indices ? indices.length : dataset.size;
    if (n === 0) return null;
    const kernel = new MlpKernelEmbedder(model.arch, model.normalization, new Map(params.map((p) => [p.name, p])), Math.max(batch, 64));
    const probe = Int32Array.from({ length: Math.min(64, n) }, (_, t) => (indices ? indices[t] : t));
    const pixels = new Uint8Array(probe.length * imageBytes(dataset.imageShape));
    await dataset.readImages(probe, pixels);
    const fast = new Float32Array(probe.length * model.embedDim);
    kernel.embed(pixels, probe.length, fast);
    return relativeDiff(fast, await model.embedImages(dataset, probe)) <= KERNEL_TOLERANCE ? kernel : null;
  }

  private async ready(model: ClipModel, backend: string, threads: number): Promise<ThreadPool<EmbedTask>> {
    if (this.pool && this.pool.usable && this.pool.size === threads && this.initialised?.model === model && this.initialised.backend === backend) return this.pool;
    await this.close();
    const pool = new ThreadPool<EmbedTask>(threads, embedWorkerUrl(), 'embedding worker');
    this.pool = pool;
    const init: EmbedTask = { type: 'init', backend, arch: model.arch, tokenizer: model.tokenizer.toJSON(), normalization: model.normalization };
    await Promise.all(Array.from({ length: threads }, (_, w) => pool.runOn(w, init)));
    this.initialised = { model, backend };
    return pool;
  }

  /** End the threads (idle ones do not keep the process alive anyway). */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    this.initialised = null;
    if (pool) await pool.close();
  }
}
