import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.js';
import type { RawBatch } from '../../src/data/stream.js';
import { Tokenizer } from '../../src/data/tokenizer.js';
import { ClipModel } from '../../src/model/clip.js';
import type { ClipArchitecture } from '../../src/model/towers.js';
import { AdamW, type AdamWOptions } from '../../src/train/optimizer.js';
import { adamwRange, adamwRangeKernel, updatePartition } from '../../src/train/flatAdamw.js';
import { KernelHeap } from '../../src/backend/wasm/heap.js';
import { decayMask, evenSplit, flatLayout, layoutMismatch } from '../../src/train/flatLayout.js';
import { WorkerStepper, workerScriptUrl } from '../../src/train/parallel/workerStepper.js';
import { runTraining } from '../../src/train/run.js';
import { LocalStepper, type StepRunner } from '../../src/train/stepper.js';
import { Rng } from '../../src/util/rng.js';
import { tempDir, tinyConfig } from '../helpers/tiny.js';

// The worker threads run the compiled dist/ (npm test builds it first).

const OPTIONS: AdamWOptions = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
const LR = 2e-3;
const VOCAB = ['<pad>', '<unk>', ...Array.from({ length: 14 }, (_, i) => `w${i}`)];
const TOKENIZER = new Tokenizer(VOCAB, 5);
const NORMALIZATION = { mean: [0.4], std: [0.3] };
const SEED = 11;

function arch(tower: 'mlp' | 'conv'): ClipArchitecture {
  return {
    imageShape: [6, 6, 1],
    imageTower: tower,
    hidden: [12],
    convChannels: [3, 4],
    convDense: 10,
    vocabSize: VOCAB.length,
    maxTokens: 5,
    textWidth: 8,
    textHidden: [],
    embedDim: 6,
    initTemperature: 0.07,
    maxLogitScale: 100,
  };
}

function model(tower: 'mlp' | 'conv'): ClipModel {
  return ClipModel.create(arch(tower), TOKENIZER, NORMALIZATION, SEED);
}

/** A random batch of `size` samples; `weights` null for an unweighted one. */
function batch(size: number, seed: number, weights: number[] | null = null): RawBatch {
  const rng = new Rng(seed);
  const pixels = new Uint8Array(size * 36);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.floor(rng.float() * 256);
  const tokens = new Int32Array(size * 5);
  for (let r = 0; r < size; r++) {
    const words = 1 + Math.floor(rng.float() * 5);
    for (let j = 0; j < words; j++) tokens[r * 5 + j] = 2 + Math.floor(rng.float() * (VOCAB.length - 2));
  }
  if (weights && weights.length !== size) throw new Error('weights do not match the batch');
  return { indices: Int32Array.from({ length: size }, (_, i) => i), pixels, tokens, weights: weights ? Float32Array.from(weights) : null };
}

/** Largest |a - b| of each parameter, relative to that parameter's largest |a| (at least 1e-3). */
function worstRelative(a: Map<string, Float32Array>, b: Map<string, Float32Array>): { name: string; diff: number } {
  let worst = { name: '', diff: 0 };
  for (const [name, x] of a) {
    const y = b.get(name)!;
    expect(y.length).toBe(x.length);
    let scale = 1e-3;
    let diff = 0;
    for (let i = 0; i < x.length; i++) {
      scale = Math.max(scale, Math.abs(x[i]));
      diff = Math.max(diff, Math.abs(x[i] - y[i]));
    }
    if (diff / scale > worst.diff) worst = { name, diff: diff / scale };
  }
  return worst;
}

async function firstMoments(stepper: StepRunner): Promise<Map<string, Float32Array>> {
  const state = await stepper.optimizerState();
  return new Map([...state.moments].map(([k, s]) => [k, s.m]));
}

/** Main-thread params of a worker stepper's model (after syncModel). */
async function synced(stepper: StepRunner, m: ClipModel): Promise<Map<string, Float32Array>> {
  await stepper.syncModel();
  return m.params.values();
}

const open: WorkerStepper[] = [];
function workerStepper(m: ClipModel, workers: number, backend = 'wasm'): WorkerStepper {
  const s = new WorkerStepper(m, OPTIONS, { workers, backend, seed: SEED });
  open.push(s);
  return s;
}

beforeAll(async () => {
  await selectBackend('wasm');
});

afterAll(async () => {
  await Promise.all(open.map((s) => s.dispose()));
});

describe('flat layout and splits', () => {
  it('cuts a batch into contiguous shards as evenly as possible', () => {
    expect([...evenSplit(7, 3)]).toEqual([0, 3, 5, 7]);
    expect([...evenSplit(8, 2)]).toEqual([0, 4, 8]);
    expect([...evenSplit(2, 3)]).toEqual([0, 1, 2, 2]);
  });

  it('gives every element of the flat vector to exactly one worker, cut on 64-byte lines', () => {
    for (const [total, workers] of [[1000, 2], [1000, 3], [17, 2], [5, 4], [1, 1]]) {
      const owner = new Int32Array(total).fill(-1);
      for (let w = 0; w < workers; w++) {
        const [lo, hi] = updatePartition(total, workers, w);
        if (w < workers - 1 && hi < total) expect(hi % 16).toBe(0);
        for (let i = lo; i < hi; i++) {
          expect(owner[i]).toBe(-1);
          owner[i] = w;
        }
      }
      expect(owner.every((o) => o >= 0)).toBe(true);
    }
  });

  it('lays parameters out back to back with their decay flags', () => {
    const layout = flatLayout([
      { name: 'a', shape: [2, 3], decay: true },
      { name: 'b', shape: [3], decay: false },
      { name: 's', shape: [], decay: false },
    ]);
    expect(layout.slots.map((s) => [s.offset, s.size])).toEqual([[0, 6], [6, 3], [9, 1]]);
    expect(layout.total).toBe(10);
    expect([...decayMask(layout)]).toEqual([1, 1, 1, 1, 1, 1, 0, 0, 0, 0]);
    expect(layoutMismatch(layout, layout)).toBeNull();
    expect(layoutMismatch(layout, flatLayout([{ name: 'a', shape: [3, 2], decay: true }, { name: 'b', shape: [3], decay: false }, { name: 's', shape: [], decay: false }]))).toMatch(/parameter 0/);
  });
});

describe('flat AdamW', () => {
  it('matches the hand-computed first step', () => {
    // Step 1: m = 0.1 g, v = 0.001 g^2, so m_hat = g and v_hat = g^2: p' = p (1 - lr wd) - lr g / (|g| + eps).
    const g = 0.3 + -0.1; // the two workers' gradients sum to 0.2
    const state = { params: Float32Array.of(1.5, 1.5), m: new Float32Array(2), v: new Float32Array(2), decay: Uint8Array.of(1, 0) };
    adamwRange(state, [Float32Array.of(0.3, 0.3), Float32Array.of(-0.1, -0.1)], 0, 2, OPTIONS, 0.01, 1);
    expect(state.params[0]).toBeCloseTo(1.5 * (1 - 0.01 * 0.1) - (0.01 * g) / (g + 1e-8), 6);
    expect(state.params[1]).toBeCloseTo(1.5 - (0.01 * g) / (g + 1e-8), 6);
    expect(state.m[0]).toBeCloseTo(0.1 * g, 7);
    expect(state.v[0]).toBeCloseTo(0.001 * g * g, 9);
  });

  it('gives the same bits on the wasm kernel as in JS, over any range and with 1-3 gradient slots', () => {
    const layout = flatLayout([
      { name: 'a', shape: [7, 5], decay: true },
      { name: 'b', shape: [3], decay: false },
      { name: 'c', shape: [9, 4], decay: true },
    ]);
    const n = layout.total;
    const rng = new Rng(5);
    for (const slots of [1, 2, 3]) {
      const heap = KernelHeap.private((3 + slots) * n * 4 + 64);
      const view = (k: number) => new Float32Array(heap.memory.buffer, k * n * 4, n);
      const onHeap = { params: view(0), m: view(1), v: view(2), decay: decayMask(layout) };
      const grads = Array.from({ length: slots }, (_, w) => view(3 + w));
      for (const x of [onHeap.params, onHeap.m, ...grads]) for (let i = 0; i < n; i++) x[i] = rng.float() - 0.5;
      for (let i = 0; i < n; i++) onHeap.v[i] = rng.float() * 1e-3;
      const inJs = { params: onHeap.params.slice(), m: onHeap.m.slice(), v: onHeap.v.slice(), decay: onHeap.decay };
      const jsGrads = grads.map((g) => g.slice());
      const at = { heap, params: 0, m: n * 4, v: 2 * n * 4, grads: 3 * n * 4, gradStride: n * 4, gradCount: slots };
      for (const [lo, hi] of [[0, n], [3, 41], [37, n]]) {
        for (let step = 1; step <= 2; step++) {
          adamwRangeKernel(at, onHeap, grads, layout, lo, hi, OPTIONS, LR, step);
          adamwRange(inJs, jsGrads, lo, hi, OPTIONS, LR, step);
        }
      }
      expect(Array.from(onHeap.params)).toEqual(Array.from(inJs.params));
      expect(Array.from(onHeap.m)).toEqual(Array.from(inJs.m));
      expect(Array.from(onHeap.v)).toEqual(Array.from(inJs.v));
    }
  });

  it('matches the tfjs AdamW over several steps, summing the gradient slots', () => {
    const m = model('mlp');
    const params = m.params.list;
    const layout = flatLayout(params.map((p) => ({ name: p.name, shape: p.variable.shape, decay: p.decay })));
    const flat = { params: new Float32Array(layout.total), m: new Float32Array(layout.total), v: new Float32Array(layout.total), decay: decayMask(layout) };
    params.forEach((p, i) => flat.params.set(p.variable.dataSync() as Float32Array, layout.slots[i].offset));
    const reference = new AdamW(params, OPTIONS);
    const rng = new Rng(5);
    for (let step = 1; step <= 3; step++) {
      const parts = [0, 1, 2].map(() => Float32Array.from({ length: layout.total }, () => rng.normal() * 0.1));
      const grads: tf.NamedTensorMap = {};
      params.forEach((p, i) => {
        const s = layout.slots[i];
        const sum = new Float32Array(s.size);
        for (let j = 0; j < s.size; j++) sum[j] = parts[0][s.offset + j] + parts[1][s.offset + j] + parts[2][s.offset + j];
        grads[p.variable.name] = tf.tensor(sum, p.variable.shape);
      });
      reference.apply(grads, LR * step);
      tf.dispose(Object.values(grads));
      // Split the update range as the workers would.
      for (let w = 0; w < 2; w++) {
        const [lo, hi] = updatePartition(layout.total, 2, w);
        adamwRange(flat, parts, lo, hi, OPTIONS, LR * step, step);
      }
    }
    params.forEach((p, i) => {
      const s = layout.slots[i];
      const want = p.variable.dataSync();
      for (let j = 0; j < s.size; j++) expect(Math.abs(flat.params[s.offset + j] - want[j])).toBeLessThan(1e-6);
    });
    reference.dispose();
    m.dispose();
  });
});

describe('WorkerStepper', () => {
  it('finds the compiled worker script', () => {
    expect(existsSync(fileURLToPath(workerScriptUrl()))).toBe(true);
  });

  /**
   * Steps both steppers on the same batches, comparing losses, parameters and
   * first moments after every step. m = (1 - beta1) g after the first step, so
   * the moments compare the gradients themselves: Adam's update is invariant
   * to scaling a gradient, so a logit-scale gradient counted once per worker
   * would go unnoticed in the parameters but not in m.
   */
  async function compare(tower: 'mlp' | 'conv', workers: number, batches: RawBatch[]): Promise<void> {
    const local = model(tower);
    const shared = model(tower);
    const reference = new LocalStepper(local, OPTIONS);
    const parallel = workerStepper(shared, workers);
    for (const [i, b] of batches.entries()) {
      const want = await reference.step(b, LR);
      const got = await parallel.step(b, LR);
      expect(Math.abs(got - want) / Math.abs(want), `loss of step ${i + 1}`).toBeLessThan(1e-5);
      const params = worstRelative(await local.params.values(), await synced(parallel, shared));
      expect(params.diff, `parameters after step ${i + 1} (${params.name})`).toBeLessThan(1e-5);
      const wantM = await firstMoments(reference);
      const gotM = await firstMoments(parallel);
      const moments = worstRelative(wantM, gotM);
      expect(moments.diff, `first moments after step ${i + 1} (${moments.name})`).toBeLessThan(1e-4);
      const scale = wantM.get('logit_scale')![0];
      expect(Math.abs(scale)).toBeGreaterThan(1e-6);
      expect(gotM.get('logit_scale')![0] / scale, 'logit-scale gradient counted once').toBeCloseTo(1, 4);
    }
    expect((await parallel.optimizerState()).step).toBe(batches.length);
    await parallel.dispose();
    expect(parallel.runningWorkers).toBe(0);
    await reference.dispose();
    local.dispose();
    shared.dispose();
  }

  it('equals LocalStepper for 1-4 steps, mlp tower, 2 workers, with and without weights', async () => {
    // The last batch leaves worker 1 a shard of weight-0 samples only.
    await compare('mlp', 2, [batch(8, 1), batch(8, 2, [1, 0, 0.5, 1, 2, 1, 0, 1]), batch(6, 3), batch(4, 10, [1, 0.5, 0, 0])]);
  });

  it('equals LocalStepper for the conv tower with a zero-weight sample', async () => {
    await compare('conv', 2, [batch(8, 4, [1, 1, 0, 1, 1, 0.25, 1, 1]), batch(5, 5), batch(8, 6)]);
  });

  it('equals LocalStepper with 3 workers, an odd batch and a batch smaller than the worker count', async () => {
    await compare('mlp', 3, [batch(7, 7), batch(2, 8), batch(7, 9, [0, 1, 1, 1, 0.5, 1, 1])]);
  });

  it('round-trips optimizer state, resets it and reloads parameters changed on the main thread', async () => {
    const a = model('mlp');
    const b = model('mlp');
    const first = workerStepper(a, 2);
    await first.step(batch(8, 21), LR);
    // The main thread's event loop keeps running while a step is in flight.
    let finished = false;
    const inFlight = first.step(batch(64, 22), LR).then(() => (finished = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(finished).toBe(false);
    await inFlight;
    const state = await first.optimizerState();
    const localState = await new LocalStepper(model('mlp'), OPTIONS).optimizerState();
    expect([...state.moments.keys()]).toEqual([...localState.moments.keys()]);
    for (const [name, s] of state.moments) expect(s.shape).toEqual(localState.moments.get(name)!.shape);
    expect(state.step).toBe(2);

    // A second stepper on a copy of the parameters with the restored moments takes the very same next step.
    await first.syncModel();
    b.params.assign(new Map([...(await a.params.values())].map(([k, v]) => [k, { shape: a.params.get(k).shape, data: v }])));
    const second = workerStepper(b, 2);
    await second.restoreOptimizer(state);
    const next = batch(8, 23);
    const lossA = await first.step(next, LR);
    const lossB = await second.step(next, LR);
    expect(lossB).toBe(lossA);
    const pa = await synced(first, a);
    const pb = await synced(second, b);
    for (const [k, v] of pa) expect(pb.get(k), k).toEqual(v);

    // Rewind as the trainer does: fresh parameters on the main thread, reload, reset, step.
    const fresh = ClipModel.create(arch('mlp'), TOKENIZER, NORMALIZATION, SEED + 1);
    const freshValues = await fresh.params.values();
    a.params.assign(new Map([...freshValues].map(([k, v]) => [k, { shape: fresh.params.get(k).shape, data: v }])));
    await first.reloadFromModel();
    await first.resetOptimizer();
    const reset = await first.optimizerState();
    expect(reset.step).toBe(0);
    for (const s of reset.moments.values()) expect(s.m.every((x) => x === 0) && s.v.every((x) => x === 0)).toBe(true);
    const reference = new LocalStepper(fresh, OPTIONS);
    const after = batch(8, 24);
    const want = await reference.step(after, LR);
    const got = await first.step(after, LR);
    expect(Math.abs(got - want) / want).toBeLessThan(1e-5);
    expect(worstRelative(await fresh.params.values(), await synced(first, a)).diff).toBeLessThan(1e-5);
    for (const s of [first, second]) await s.dispose();
    await reference.dispose();
    for (const m of [a, b, fresh]) m.dispose();
  });

  it('rejects a step with the worker’s error, stays usable, and disposes', async () => {
    const local = model('mlp');
    const shared = model('mlp');
    const reference = new LocalStepper(local, OPTIONS);
    const parallel = workerStepper(shared, 2);
    const bad = batch(8, 31);
    bad.tokens[7 * 5] = VOCAB.length + 3; // a token id outside the vocabulary, in worker 1's shard
    await expect(reference.step(bad, LR)).rejects.toThrow(/index value/);
    await expect(parallel.step(bad, LR)).rejects.toThrow(/worker 1: .*the index value 19 is not in \[0, 15\]/);
    // Like LocalStepper, the failed step changed nothing: the next one matches.
    const good = batch(8, 32);
    const want = await reference.step(good, LR);
    expect(Math.abs((await parallel.step(good, LR)) - want) / want).toBeLessThan(1e-5);
    expect(worstRelative(await local.params.values(), await synced(parallel, shared)).diff).toBeLessThan(1e-5);
    await parallel.dispose();
    expect(parallel.runningWorkers).toBe(0);
    await expect(parallel.step(good, LR)).rejects.toThrow(/disposed/);
    await reference.dispose();
    local.dispose();
    shared.dispose();
  });

  it('fails the step, not hangs, when a worker dies mid-step', async () => {
    const m = model('mlp');
    const parallel = workerStepper(m, 2);
    await parallel.step(batch(8, 41), LR);
    const running = parallel.step(batch(8, 42), LR);
    // Worker 0 waits for worker 1's embeddings at a barrier; worker 1 disappears.
    void (parallel as unknown as { workers: { terminate(): Promise<number> }[] }).workers[1].terminate();
    await expect(running).rejects.toThrow(/worker 1 exited unexpectedly/);
    await expect(parallel.step(batch(8, 43), LR)).rejects.toThrow(/worker 1 exited unexpectedly/);
    await parallel.syncModel(); // never throws: the trainer calls it in a `finally`
    await parallel.dispose();
    expect(parallel.runningWorkers).toBe(0);
    m.dispose();
  });

  it('reports a backend that fails to load in the workers', async () => {
    const m = model('mlp');
    const parallel = workerStepper(m, 2, 'tensorflow');
    await expect(parallel.step(batch(4, 51), LR)).rejects.toThrow(/worker \d failed to start: backend "tensorflow" is not available/);
    await parallel.dispose();
    expect(parallel.runningWorkers).toBe(0);
    m.dispose();
  });
});

describe('runTraining with train.workers', () => {
  it('reaches the same loss with 2 workers as in process', async () => {
    const run = async (workers: number) => {
      const config = tinyConfig({ out: tempDir(), train: { epochs: 2, workers } });
      const { summary, status } = await runTraining(config);
      expect(status).toBe('finished');
      return summary.epochs;
    };
    const one = await run(1);
    const two = await run(2);
    expect(two.length).toBe(one.length);
    for (let e = 0; e < one.length; e++) {
      expect(Math.abs(two[e].loss - one[e].loss) / one[e].loss).toBeLessThan(1e-4);
      expect(two[e].temperature).toBeCloseTo(one[e].temperature, 4);
      // Evaluation runs on the main thread's model, which syncModel keeps current.
      expect(two[e].cleanAccuracy).toBeCloseTo(one[e].cleanAccuracy!, 2);
    }
  });
});
