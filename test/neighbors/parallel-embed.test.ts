import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.js';
import { Tokenizer } from '../../src/data/tokenizer.js';
import { InMemoryDataset } from '../../src/data/memory.js';
import { ParallelEmbedder, relativeDiff } from '../../src/embed/parallel.js';
import { ClipModel } from '../../src/model/clip.js';
import type { ClipArchitecture } from '../../src/model/towers.js';
import { Rng } from '../../src/util/rng.js';

// The embedding threads run the compiled dist/ (npm run build), each with its own wasm backend.
const embedder = new ParallelEmbedder({ threads: 2, batchSize: 64, kernel: false });
const fast = new ParallelEmbedder({ threads: 2, batchSize: 64 });
beforeAll(async () => {
  await selectBackend('wasm');
});
afterAll(async () => {
  await embedder.close();
  await fast.close();
});

const arch: ClipArchitecture = {
  imageShape: [8, 8, 1],
  imageTower: 'mlp',
  hidden: [32],
  convChannels: [4],
  convDense: 16,
  vocabSize: 6,
  maxTokens: 4,
  textWidth: 8,
  textHidden: [],
  embedDim: 12,
  initTemperature: 0.07,
  maxLogitScale: 100,
};

function dataset(n: number): InMemoryDataset {
  const rng = new Rng(1, 'embed-test');
  const images = new Uint8Array(n * 64).map(() => rng.int(256));
  return new InMemoryDataset('tiny', [8, 8, 1], images, Array.from({ length: n }, () => 'a b'), new Int32Array(n), null, 'tiny');
}

describe('ParallelEmbedder', () => {
  it('with the tfjs forward pass: exactly the model\'s own embeddings, in index order, with its current weights', async () => {
    const tokenizer = new Tokenizer(['<pad>', '<unk>', 'a', 'b', 'c', 'd'], 4);
    const model = ClipModel.create(arch, tokenizer, { mean: [0.5], std: [0.25] }, 3);
    const data = dataset(300);
    const indices = Int32Array.from({ length: 250 }, (_, t) => (t * 7) % 300);
    const expected = await model.embedImages(data, indices);
    expect(Array.from(await embedder.embedImages(model, data, indices))).toEqual(Array.from(expected));
    // weights change between rounds: the threads take the new ones
    const other = ClipModel.create(arch, tokenizer, { mean: [0.5], std: [0.25] }, 4);
    model.params.assign(new Map(other.params.list.map((p) => [p.name, { shape: p.variable.shape, data: p.variable.dataSync() as Float32Array }])));
    expect(Array.from(await embedder.embedImages(model, data))).toEqual(Array.from(await model.embedImages(data)));
    other.dispose();
    model.dispose();
  });

  it('an MLP tower through the wasm GEMM (threads, or this thread) agrees with tfjs to float32 rounding', async () => {
    const tokenizer = new Tokenizer(['<pad>', '<unk>', 'a', 'b', 'c', 'd'], 4);
    const model = ClipModel.create(arch, tokenizer, { mean: [0.5], std: [0.25] }, 5);
    const data = dataset(200);
    const expected = await model.embedImages(data);
    const threaded = await fast.embedImages(model, data);
    expect(fast.lastUsedKernel).toBe(true);
    expect(relativeDiff(threaded, expected)).toBeLessThan(1e-5);
    const single = new ParallelEmbedder({ threads: 1, batchSize: 48 });
    const inThread = await single.embedImages(model, data);
    expect(single.lastUsedKernel).toBe(true);
    expect(Array.from(inThread)).toEqual(Array.from(threaded));
    model.dispose();
  });
});
