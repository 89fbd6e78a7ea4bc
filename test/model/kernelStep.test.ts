import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.js';
import type { RawBatch } from '../../src/data/stream.js';
import { Tokenizer } from '../../src/data/tokenizer.js';
import { ClipModel } from '../../src/model/clip.js';
import type { ClipArchitecture } from '../../src/model/towers.js';
import { FlatAdamW } from '../../src/train/flatAdamw.js';
import { flatLayout, type FlatLayout } from '../../src/train/flatLayout.js';
import { KernelStep, kernelStepUnsupported } from '../../src/train/kernelStep.js';
import { LocalStepper } from '../../src/train/stepper.js';
import { Rng } from '../../src/util/rng.js';

// The kernel step against the tfjs model it replaces: loss and the gradient
// of every parameter, on small random models whose sizes are and are not
// multiples of the kernels' panel width.

const VOCAB = ['<pad>', '<unk>', ...Array.from({ length: 14 }, (_, i) => `w${i}`)];
const TOKENIZER = new Tokenizer(VOCAB, 5);

function arch(over: Partial<ClipArchitecture> = {}): ClipArchitecture {
  return {
    imageShape: [6, 6, 1],
    imageTower: 'mlp',
    hidden: [12],
    convChannels: [3, 4],
    convDense: 10,
    vocabSize: VOCAB.length,
    maxTokens: 5,
    textWidth: 9,
    textHidden: [],
    embedDim: 6,
    initTemperature: 0.07,
    maxLogitScale: 100,
    ...over,
  };
}

function normalization(a: ClipArchitecture) {
  const c = a.imageShape[2];
  return { mean: Array.from({ length: c }, (_, i) => 0.3 + 0.1 * i), std: Array.from({ length: c }, (_, i) => 0.25 + 0.05 * i) };
}

function batch(a: ClipArchitecture, size: number, seed: number, weights: number[] | null = null): RawBatch {
  const rng = new Rng(seed);
  const bytes = a.imageShape.reduce((p, q) => p * q, 1);
  const pixels = new Uint8Array(size * bytes);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.floor(rng.float() * 256);
  const L = a.maxTokens;
  const tokens = new Int32Array(size * L);
  for (let r = 0; r < size; r++) {
    const words = Math.floor(rng.float() * (L + 1)); // some captions empty
    for (let j = 0; j < words; j++) tokens[r * L + j] = 1 + Math.floor(rng.float() * (a.vocabSize - 1));
  }
  return { indices: Int32Array.from({ length: size }, (_, i) => i), pixels, tokens, weights: weights ? Float32Array.from(weights) : null };
}

function layoutOf(model: ClipModel): FlatLayout {
  return flatLayout(model.params.list.map((p) => ({ name: p.name, shape: p.variable.shape, decay: p.decay })));
}

function flatParams(model: ClipModel, layout: FlatLayout): Float32Array {
  const out = new Float32Array(layout.total);
  model.params.list.forEach((p, i) => out.set(p.variable.dataSync() as Float32Array, layout.slots[i].offset));
  return out;
}

/** The tfjs model's loss and flat gradient. */
function reference(model: ClipModel, layout: FlatLayout, raw: RawBatch): { loss: number; grad: Float32Array } {
  const size = raw.indices.length;
  const grad = new Float32Array(layout.total);
  const loss = tf.tidy(() => {
    const b = {
      images: model.pixelsToTensor(raw.pixels, size),
      tokens: model.tokensToTensor(raw.tokens, size),
      weights: raw.weights ? tf.tensor1d(raw.weights) : undefined,
    };
    const { value, grads } = tf.variableGrads(() => model.loss(b), model.params.variables());
    model.params.list.forEach((p, i) => {
      const g = grads[p.variable.name];
      if (g) grad.set(g.dataSync() as Float32Array, layout.slots[i].offset);
    });
    return value.dataSync()[0];
  });
  return { loss, grad };
}

function kernelGrad(model: ClipModel, layout: FlatLayout, raw: RawBatch): { loss: number; grad: Float32Array } {
  const size = raw.indices.length;
  const step = new KernelStep(model.arch, model.normalization, layout);
  const params = flatParams(model, layout);
  const emb = step.forward(params, raw.pixels, raw.tokens, size);
  const grad = new Float32Array(layout.total).fill(NaN);
  const loss = step.backward(params, emb.images, emb.texts, size, 0, raw.weights, grad);
  return { loss, grad };
}

/** Per parameter: largest |a - b| over the largest |a| of that parameter (at least 1e-6). */
function relativeErrors(layout: FlatLayout, a: Float32Array, b: Float32Array): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of layout.slots) {
    let scale = 1e-6;
    let diff = 0;
    for (let i = s.offset; i < s.offset + s.size; i++) {
      scale = Math.max(scale, Math.abs(a[i]));
      diff = Math.max(diff, Math.abs(a[i] - b[i]));
    }
    out.set(s.name, diff / scale);
  }
  return out;
}

function expectSameGradients(a: ClipArchitecture, raw: RawBatch, seed = 3): void {
  const model = ClipModel.create(a, TOKENIZER, normalization(a), seed);
  try {
    const layout = layoutOf(model);
    const ref = reference(model, layout, raw);
    const got = kernelGrad(model, layout, raw);
    expect(Number.isFinite(got.loss)).toBe(true);
    expect(Math.abs(got.loss - ref.loss) / Math.abs(ref.loss)).toBeLessThan(1e-5);
    for (const v of got.grad) expect(Number.isFinite(v)).toBe(true);
    const errors = relativeErrors(layout, ref.grad, got.grad);
    for (const [name, e] of errors) expect(e, `${name}: relative error ${e}`).toBeLessThan(1e-4);
  } finally {
    model.dispose();
  }
}

beforeAll(async () => {
  await selectBackend('wasm');
});

/**
 * A `size`-sample batch (every fourth sample at weight 0), its full-batch
 * kernel gradient, and the same batch embedded by one KernelStep per shard
 * [cuts[k], cuts[k + 1]) into whole-batch embedding arrays.
 */
function shardedForward(a: ReturnType<typeof arch>, model: ClipModel, size: number, cuts: number[]) {
  const layout = layoutOf(model);
  const raw = batch(a, size, 6, Array.from({ length: size }, (_, i) => (i % 4 === 1 ? 0 : 1)));
  const full = kernelGrad(model, layout, raw);
  const params = flatParams(model, layout);
  const D = a.embedDim;
  const L = a.maxTokens;
  const bytes = 36;
  const steps = cuts.slice(1).map(() => new KernelStep(a, model.normalization, layout));
  const images = new Float32Array(size * D);
  const texts = new Float32Array(size * D);
  steps.forEach((s, k) => {
    const [lo, hi] = [cuts[k], cuts[k + 1]];
    const e = s.forward(params, raw.pixels.subarray(lo * bytes, hi * bytes), raw.tokens.subarray(lo * L, hi * L), hi - lo, size);
    images.set(e.images, lo * D);
    texts.set(e.texts, lo * D);
  });
  return { layout, raw, full, params, steps, images, texts };
}

describe('KernelStep', () => {
  it('supports MLP image towers only', () => {
    expect(kernelStepUnsupported(arch())).toBeNull();
    expect(kernelStepUnsupported(arch({ imageTower: 'conv' }))).toMatch(/conv/);
  });

  it('matches the tfjs loss and gradients (sizes off the panel width, unweighted)', () => {
    const a = arch();
    expectSameGradients(a, batch(a, 13, 1));
  });

  it('matches with weights including zeros and fractions', () => {
    const a = arch();
    const w = Array.from({ length: 19 }, (_, i) => (i % 5 === 0 ? 0 : i % 3 === 0 ? 0.4 : 1));
    expectSameGradients(a, batch(a, 19, 2, w));
  });

  it('matches with several hidden layers on both towers and colour images', () => {
    const a = arch({ imageShape: [4, 4, 3], hidden: [16, 10, 8], textHidden: [11, 8], textWidth: 16, embedDim: 8 });
    expectSameGradients(a, batch(a, 24, 3, Array.from({ length: 24 }, (_, i) => (i === 4 ? 0 : 1))));
  });

  it('matches with panel-aligned sizes and no hidden layer', () => {
    const a = arch({ imageShape: [4, 4, 1], hidden: [], textWidth: 16, embedDim: 16 });
    expectSameGradients(a, batch(a, 16, 4));
  });

  it('stops the logit scale gradient at the clamp, like tf.minimum', () => {
    const a = arch({ maxLogitScale: 10 });
    const model = ClipModel.create(a, TOKENIZER, normalization(a), 5);
    try {
      const layout = layoutOf(model);
      const raw = batch(a, 10, 5);
      const ref = reference(model, layout, raw);
      const got = kernelGrad(model, layout, raw);
      const at = layout.slots.find((s) => s.name === 'logit_scale')!.offset;
      expect(ref.grad[at]).toBe(0);
      expect(got.grad[at]).toBe(0);
      expect(Math.abs(got.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
    } finally {
      model.dispose();
    }
  });

  it('shards sum to the full-batch gradient', () => {
    const a = arch();
    const model = ClipModel.create(a, TOKENIZER, normalization(a), 6);
    try {
      const size = 21;
      const { layout, raw, full, params, steps, images, texts } = shardedForward(a, model, size, [0, 9, size]);
      const cuts = [0, 9, size];
      const sum = new Float32Array(layout.total);
      let loss = NaN;
      steps.forEach((s, k) => {
        const g = new Float32Array(layout.total);
        const l = s.backward(params, images, texts, size, cuts[k], raw.weights, g, k === 0);
        if (k === 0) loss = l;
        for (let i = 0; i < g.length; i++) sum[i] += g[i];
      });
      expect(loss).toBeCloseTo(full.loss, 6);
      for (const [name, e] of relativeErrors(layout, full.grad, sum)) expect(e, name).toBeLessThan(1e-5);
    } finally {
      model.dispose();
    }
  });
});

describe('the kernel step with shared-out softmaxes', () => {
  it('gives shards whose loss shares and gradients sum to the full batch', () => {
    const a = arch();
    const model = ClipModel.create(a, TOKENIZER, normalization(a), 6);
    try {
      const size = 21;
      const { layout, raw, full, params, steps, images, texts } = shardedForward(a, model, size, [0, 9, 15, size]);
      const cuts = [0, 9, 15, size];
      const stats = new Float64Array(4 * size);
      steps.forEach((s, k) => s.lossStats(params, images, texts, size, cuts[k], raw.weights, stats));
      const sum = new Float32Array(layout.total);
      let loss = 0;
      steps.forEach((s, k) => {
        const g = new Float32Array(layout.total);
        loss += s.shardBackward(params, images, texts, size, cuts[k], raw.weights, stats, g);
        for (let i = 0; i < g.length; i++) sum[i] += g[i];
      });
      expect(loss).toBeCloseTo(full.loss, 6);
      for (const [name, e] of relativeErrors(layout, full.grad, sum)) expect(e, name).toBeLessThan(1e-5);
    } finally {
      model.dispose();
    }
  });
});

describe('the kernel step in LocalStepper', () => {
  const OPTIONS = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };

  it('is chosen on wasm for MLP towers and not when off or for conv towers', async () => {
    const models = [arch(), arch(), arch({ imageTower: 'conv' })].map((a) => ClipModel.create(a, TOKENIZER, normalization(a), 1));
    expect(new LocalStepper(models[0], OPTIONS).usesKernel).toBe(true);
    expect(new LocalStepper(models[1], OPTIONS, { kernel: 'off' }).usesKernel).toBe(false);
    expect(new LocalStepper(models[2], OPTIONS, { kernel: 'auto' }).usesKernel).toBe(false);
    for (const m of models) m.dispose();
  });

  it('follows the tfjs training trajectory, and the variables hold the new values after every step', async () => {
    const a = arch({ hidden: [16, 12], textHidden: [10] });
    const [viaTfjs, viaKernel] = [0, 1].map(() => ClipModel.create(a, TOKENIZER, normalization(a), 9));
    const ref = new LocalStepper(viaTfjs, OPTIONS, { kernel: 'off' });
    const ker = new LocalStepper(viaKernel, OPTIONS, { kernel: 'auto' });
    expect(ker.usesKernel).toBe(true);
    const layout = layoutOf(viaTfjs);
    for (let s = 0; s < 6; s++) {
      const w = s % 2 === 0 ? null : Array.from({ length: 16 }, (_, i) => (i % 5 === 2 ? 0 : i % 3 === 0 ? 0.5 : 1));
      const raw = batch(a, 16, 100 + s, w);
      const want = await ref.step(raw, 3e-3);
      const got = await ker.step(raw, 3e-3);
      expect(Math.abs(got - want) / want, `loss at step ${s}`).toBeLessThan(1e-4);
    }
    // no syncModel: the kernel stepper keeps the variables current like FlatAdamW
    const errors = relativeErrors(layout, flatParams(viaTfjs, layout), flatParams(viaKernel, layout));
    for (const [name, e] of errors) expect(e, name).toBeLessThan(1e-4);
    const state = await ker.optimizerState();
    expect(state.step).toBe(6);
    for (const m of [viaTfjs, viaKernel]) m.dispose();
  });

  it('FlatAdamW in wasm storage updates to the same bits as the JS loop', () => {
    const a = arch({ hidden: [13], textWidth: 7 });
    const model = ClipModel.create(a, TOKENIZER, normalization(a), 4);
    const js = new FlatAdamW(model.params.list, OPTIONS, 'js');
    const wasm = new FlatAdamW(model.params.list, OPTIONS, 'wasm');
    const rng = new Rng(12);
    for (let s = 0; s < 4; s++) {
      const g = new Float32Array(js.layout.total);
      for (let i = 0; i < g.length; i++) g[i] = rng.normal() * (i % 7 === 0 ? 1e-6 : 0.3);
      js.applyFlat(g, 1e-3 * (s + 1));
      wasm.applyFlat(g, 1e-3 * (s + 1));
      expect(Buffer.from(wasm.values.buffer, wasm.values.byteOffset, wasm.values.byteLength).equals(Buffer.from(js.values.buffer, js.values.byteOffset, js.values.byteLength))).toBe(true);
    }
    const [x, y] = [js.stateByName(), wasm.stateByName()];
    for (const [name, mv] of x.moments) {
      expect(Array.from(y.moments.get(name)!.m)).toEqual(Array.from(mv.m));
      expect(Array.from(y.moments.get(name)!.v)).toEqual(Array.from(mv.v));
    }
    model.dispose();
  });
});
