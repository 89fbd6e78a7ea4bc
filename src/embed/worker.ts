/**
 * Worker thread of `ParallelEmbedder` (./parallel.ts): a copy of the model
 * on its own tfjs backend (wasm is single-threaded per thread in Node), fed
 * the main model's current weights, embedding the pixel batches it is sent.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type BackendRequest } from '../backend/select.js';
import { Tokenizer } from '../data/tokenizer.js';
import { ClipModel } from '../model/clip.js';
import { MlpKernelEmbedder } from './mlpKernel.js';
import type { EmbedReply, EmbedTask } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('embed/worker.js must run as a worker thread');

let model: ClipModel | null = null;
/** The wasm-GEMM forward pass of an MLP tower, when the main thread asked for it (it checked it against tfjs). */
let kernel: MlpKernelEmbedder | null = null;

async function handle(task: EmbedTask): Promise<{ result: unknown; transfer: ArrayBuffer[] }> {
  switch (task.type) {
    case 'init': {
      await selectBackend(task.backend as BackendRequest);
      model?.dispose();
      model = ClipModel.create(task.arch, Tokenizer.fromJSON(task.tokenizer), task.normalization, 0);
      return { result: tf.getBackend(), transfer: [] };
    }
    case 'weights': {
      if (!model) throw new Error('embed worker: weights before init');
      const values = new Map(task.params.map((p) => [p.name, { shape: p.shape, data: p.data }]));
      model.params.assign(values);
      kernel = task.kernel ? new MlpKernelEmbedder(model.arch, model.normalization, values) : null;
      return { result: null, transfer: [] };
    }
    case 'embed': {
      if (!model) throw new Error('embed worker: embed before init');
      if (kernel) {
        const out = new Float32Array(task.count * kernel.embedDim);
        kernel.embed(task.pixels, task.count, out);
        return { result: out, transfer: [out.buffer as ArrayBuffer] };
      }
      const m = model;
      const emb = tf.tidy(() => m.encodeImages(m.pixelsToTensor(task.pixels, task.count)));
      const data = (await emb.data()) as Float32Array;
      emb.dispose();
      return { result: data, transfer: [data.buffer as ArrayBuffer] };
    }
  }
}

port.on('message', (task: EmbedTask & { id: number }) => {
  handle(task).then(
    ({ result, transfer }) => port.postMessage({ id: task.id, ok: true, result } satisfies EmbedReply, transfer),
    (e: Error) => port.postMessage({ id: task.id, ok: false, message: e?.message ?? String(e), stack: e?.stack } satisfies EmbedReply),
  );
});
