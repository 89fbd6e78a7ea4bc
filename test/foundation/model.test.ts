import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.js';
import { Tokenizer } from '../../src/data/tokenizer.js';
import { ClipModel } from '../../src/model/clip.js';
import { clipLoss } from '../../src/model/loss.js';
import { AdamW, learningRate } from '../../src/train/optimizer.js';
import { ParamSet } from '../../src/model/params.js';

beforeAll(async () => {
  await selectBackend('wasm');
});

const softplus = (x: number) => Math.log(1 + Math.exp(x));

describe('clip loss', () => {
  it('matches a hand-computed value', () => {
    // img = e1, e2; txt = e1, (e1+e2)/sqrt2; scale 2. logits = 2*[[1, r], [0, r]], r = 1/sqrt2.
    // CE of row i = log(1 + sum_{j != i} exp(l_ij - l_ii)) = softplus(l_ij - l_ii) for 2 samples.
    const r = Math.SQRT1_2;
    const rows = [softplus(2 * r - 2), softplus(0 - 2 * r)];
    const cols = [softplus(0 - 2), softplus(2 * r - 2 * r)];
    const expected = 0.5 * ((rows[0] + rows[1]) / 2 + (cols[0] + cols[1]) / 2);
    const loss = clipLoss(tf.tensor2d([[1, 0], [0, 1]]), tf.tensor2d([[1, 0], [1, 1]]), tf.scalar(2));
    expect(loss.dataSync()[0]).toBeCloseTo(expected, 5);
    expect(expected).toBeCloseTo(0.370062, 5);
  });

  it('weight 0 removes a sample from the loss and from the negatives', () => {
    const img = tf.tensor2d([[1, 0.2], [0.1, 1], [0.7, 0.7]]);
    const txt = tf.tensor2d([[0.9, 0.1], [0.3, 1], [0.6, 0.8]]);
    const two = clipLoss(img.slice([0, 0], [2, 2]), txt.slice([0, 0], [2, 2]), tf.scalar(3)).dataSync()[0];
    const masked = clipLoss(img, txt, tf.scalar(3), tf.tensor1d([1, 1, 0])).dataSync()[0];
    const unmasked = clipLoss(img, txt, tf.scalar(3)).dataSync()[0];
    expect(masked).toBeCloseTo(two, 5);
    expect(Math.abs(unmasked - two)).toBeGreaterThan(1e-3);
    // ...and its embeddings get no gradient through the loss.
    const g = tf.grad((x: tf.Tensor) => clipLoss(x as tf.Tensor2D, txt, tf.scalar(3), tf.tensor1d([1, 1, 0])))(img);
    expect(Array.from(g.slice([2, 0], [1, 2]).dataSync())).toEqual([0, 0]);
  });

  it('fractional weights scale a sample’s own terms', () => {
    const img = tf.tensor2d([[1, 0.2], [0.1, 1]]);
    const txt = tf.tensor2d([[0.9, 0.1], [0.3, 1]]);
    const perSample = (i: number) => {
      const w = [0, 0];
      w[i] = 1;
      // A single-sample weight vector gives that sample's own loss (others stay as negatives).
      return clipLoss(img, txt, tf.scalar(3), tf.tensor1d(w.map((x, j) => (j === i ? 1 : 1e-9)))).dataSync()[0];
    };
    const l0 = perSample(0);
    const l1 = perSample(1);
    const weighted = clipLoss(img, txt, tf.scalar(3), tf.tensor1d([1, 0.5])).dataSync()[0];
    expect(weighted).toBeCloseTo((l0 + 0.5 * l1) / 1.5, 4);
  });
});

function jsMatMul(a: number[][], b: number[][]): number[][] {
  return a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
}
const T = (m: number[][]) => m[0].map((_, j) => m.map((row) => row[j]));

describe('wasm training kernels', () => {
  const a = [[1, 2, 3], [4, 5, 6]];
  const b = [[1, -1], [2, 0.5], [-3, 1]];
  const w = [[0.5, -1], [2, 1]];
  it.each([
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ])('matMul gradient with transposeA=%s transposeB=%s matches the analytic gradient', (ta, tb) => {
    const A = ta ? T(a) : a;
    const B = tb ? T(b) : b;
    const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D, ta, tb), tf.tensor2d(w))))([tf.tensor2d(A), tf.tensor2d(B)]);
    // y = a b: dL/da = W b^T, dL/db = a^T W, then transposed back when the input was.
    const da = jsMatMul(w, T(b));
    const db = jsMatMul(T(a), w);
    expect(ga.arraySync()).toEqual((ta ? T(da) : da).map((r) => r.map((v) => expect.closeTo(v, 5))));
    expect(gb.arraySync()).toEqual((tb ? T(db) : db).map((r) => r.map((v) => expect.closeTo(v, 5))));
  });

  it('gather (embedding lookup) trains: its gradient sums repeated rows', () => {
    const table = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.gather(t as tf.Tensor2D, tf.tensor2d([[0, 2], [2, 2]], [2, 2], 'int32'))))(table);
    expect(g.arraySync()).toEqual([[1, 1], [0, 0], [3, 3]]);
  });

  it('conv2d filter gradient on wasm equals the cpu backend', async () => {
    const x = tf.tidy(() => tf.randomNormal([2, 7, 7, 3], 0, 1, 'float32', 1));
    const f = tf.tidy(() => tf.randomNormal([3, 3, 3, 4], 0, 1, 'float32', 2));
    const xs = x.arraySync();
    const fs = f.arraySync();
    const gradOn = async (backend: string) => {
      await tf.setBackend(backend);
      const xt = tf.tensor4d(xs);
      const ft = tf.tensor4d(fs);
      const g = tf.grad((k: tf.Tensor) => tf.sum(tf.square(tf.conv2d(xt, k as tf.Tensor4D, 2, 'same'))))(ft);
      return g.arraySync() as number[][][][];
    };
    const cpu = await gradOn('cpu');
    const wasm = await gradOn('wasm');
    const a = wasm.flat(3);
    const b = cpu.flat(3);
    expect(a.length).toBe(3 * 3 * 3 * 4);
    const worst = Math.max(...a.map((v, i) => Math.abs(v - b[i]) / (1 + Math.abs(b[i]))));
    expect(worst).toBeLessThan(1e-4);
  });
});

describe('model', () => {
  it('embeds in index order and saves nothing between calls', async () => {
    const tokenizer = Tokenizer.build(['a red circle', 'a blue square'], { maxTokens: 4 });
    const model = ClipModel.create(
      { imageShape: [4, 4, 3], imageTower: 'mlp', hidden: [8], convChannels: [4], convDense: 8, vocabSize: tokenizer.size, maxTokens: 4, textWidth: 8, textHidden: [], embedDim: 6, initTemperature: 0.07, maxLogitScale: 100 },
      tokenizer,
      { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
      0,
    );
    const images = Uint8Array.from({ length: 5 * 48 }, (_, i) => (i * 13) % 256);
    const ds = {
      name: 'x', size: 5, imageShape: [4, 4, 3] as const, classNames: null,
      id: (i: number) => String(i), caption: () => 'a red circle', label: () => -1,
      readImages(indices: ArrayLike<number>, out: Uint8Array) {
        for (let r = 0; r < indices.length; r++) out.set(images.subarray(indices[r] * 48, indices[r] * 48 + 48), r * 48);
      },
    };
    const before = tf.memory().numTensors;
    model.embedBatchSize = 2;
    const all = await model.embedImages(ds);
    const some = await model.embedImages(ds, [4, 1]);
    expect(all.length).toBe(30);
    expect(Array.from(some.subarray(0, 6))).toEqual(Array.from(all.subarray(24, 30)));
    expect(Array.from(some.subarray(6, 12))).toEqual(Array.from(all.subarray(6, 12)));
    const texts = await model.embedTexts(['a red circle', 'a blue square', 'a red circle']);
    expect(Array.from(texts.subarray(0, 6))).toEqual(Array.from(texts.subarray(12, 18)));
    expect(tf.memory().numTensors).toBe(before);
    expect(model.temperature()).toBeCloseTo(0.07, 5);
    model.dispose();
  });

  it('AdamW matches a hand-computed first step with decoupled decay', async () => {
    const params = new ParamSet();
    params.add('w', [2], Float32Array.of(1, -2), true);
    params.add('b', [1], Float32Array.of(0.5), false);
    const opt = new AdamW(params.list, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 });
    const grads: tf.NamedTensorMap = { [params.get('w').name]: tf.tensor1d([0.3, -0.1]), [params.get('b').name]: tf.tensor1d([2]) };
    opt.apply(grads, 0.01);
    // Step 1: m_hat = g, v_hat = g^2, so the Adam step is lr * g / (|g| + eps) = lr * sign(g);
    // decay multiplies w by (1 - lr * wd) first.
    expect(Array.from(params.get('w').dataSync())).toEqual([expect.closeTo(1 * 0.999 - 0.01, 6), expect.closeTo(-2 * 0.999 + 0.01, 6)]);
    expect(params.get('b').dataSync()[0]).toBeCloseTo(0.5 - 0.01, 6);
    opt.dispose();
    params.dispose();
  });

  it('schedules a linear warm-up then a cosine decay to zero', () => {
    expect(learningRate(0, 1000, 1, 100)).toBeCloseTo(0.01);
    expect(learningRate(99, 1000, 1, 100)).toBeCloseTo(1);
    expect(learningRate(100, 1000, 1, 100)).toBeCloseTo(1);
    expect(learningRate(550, 1000, 1, 100)).toBeCloseTo(0.5);
    expect(learningRate(1000, 1000, 1, 100)).toBeCloseTo(0);
    // warm-up is capped at 10% of all steps
    expect(learningRate(0, 50, 1, 100)).toBeCloseTo(0.2);
  });
});

describe('wasm row gather', () => {
  it('equals the cpu backend for row lookups, other axes and int tables', async () => {
    const table = tf.tensor2d([[1, 2, 3], [4, 5, 6], [7, 8, 9]]);
    const ids = tf.tensor2d([[2, 0], [1, 1]], [2, 2], 'int32');
    expect(tf.gather(table, ids).arraySync()).toEqual([[[7, 8, 9], [1, 2, 3]], [[4, 5, 6], [4, 5, 6]]]);
    expect(tf.gather(table, tf.tensor1d([2, 0], 'int32'), 1).arraySync()).toEqual([[3, 1], [6, 4], [9, 7]]);
    expect(tf.gather(tf.tensor1d([5, 6, 7], 'int32'), tf.tensor1d([2, 2, 0], 'int32')).arraySync()).toEqual([7, 7, 5]);
    expect(() => tf.gather(table, tf.tensor1d([3], 'int32'))).toThrow(/not in \[0, 2\]/);
  });
});

describe('bag-of-words text features', () => {
  it('equal the masked mean and its autodiff gradient, and leave the pad row untouched', async () => {
    const { bagOfWordsMean } = await import('../../src/model/bagOfWords.js');
    const table = tf.tensor2d([[9, 9], [1, 2], [3, 4], [5, 6]]); // row 0 = <pad>
    const tokens = tf.tensor2d([[1, 2, 0], [3, 3, 1], [0, 0, 0]], [3, 3], 'int32');
    const reference = (t: tf.Tensor) => {
      const v = tf.gather(t as tf.Tensor2D, tokens);
      const mask = tf.cast(tf.notEqual(tokens, 0), 'float32');
      return tf.div(tf.sum(tf.mul(v, tf.expandDims(mask, 2)), 1), tf.maximum(tf.sum(mask, 1, true), 1));
    };
    // caption 1 = rows 3, 3, 1: ([5,6] + [5,6] + [1,2]) / 3; caption 2 is all padding
    const round = (m: unknown) => (m as number[][]).flat().map((v) => +v.toFixed(5));
    expect(round(bagOfWordsMean(table, tokens).arraySync())).toEqual(round([[2, 3], [11 / 3, 14 / 3], [0, 0]]));
    expect(round(bagOfWordsMean(table, tokens).arraySync())).toEqual(round(reference(table).arraySync()));
    const w = tf.tensor2d([[1, -2], [0.5, 3], [7, 7]]);
    const ours = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(bagOfWordsMean(t as tf.Tensor2D, tokens), w)))(table).arraySync() as number[][];
    const auto = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(reference(t), w)))(table).arraySync() as number[][];
    expect(ours.flat().map((v) => +v.toFixed(5))).toEqual(auto.flat().map((v) => +v.toFixed(5)));
    expect(ours[0]).toEqual([0, 0]);
  });
});

describe('host contrastive loss', () => {
  it('equals the tensor version in value and gradient, with and without weights', async () => {
    const { hostSymmetricCrossEntropy } = await import('../../src/model/contrastive.js');
    const { symmetricCrossEntropy } = await import('../../src/model/loss.js');
    const logits = tf.tidy(() => tf.mul(tf.randomNormal([7, 7], 0, 1, 'float32', 3), 4)) as tf.Tensor2D;
    for (const w of [undefined, tf.tensor1d([1, 0, 0.5, 1, 0, 1, 0.25])]) {
      const a = hostSymmetricCrossEntropy(logits, w).dataSync()[0];
      const b = symmetricCrossEntropy(logits, w).dataSync()[0];
      expect(a).toBeCloseTo(b, 4);
      const ga = tf.grad((x: tf.Tensor) => hostSymmetricCrossEntropy(x as tf.Tensor2D, w))(logits).dataSync();
      const gb = tf.grad((x: tf.Tensor) => symmetricCrossEntropy(x as tf.Tensor2D, w))(logits).dataSync();
      expect(Math.max(...Array.from(ga, (v, i) => Math.abs(v - gb[i])))).toBeLessThan(1e-5);
    }
  });
});

describe('FlatAdamW', () => {
  it('matches the tensor-op AdamW over several steps, and its state round-trips', async () => {
    const { FlatAdamW } = await import('../../src/train/flatAdamw.js');
    const make = () => {
      const p = new ParamSet();
      p.add('w', [2, 3], Float32Array.of(1, -2, 3, 0.5, -0.25, 2), true);
      p.add('b', [3], Float32Array.of(0.5, 0, -1), false);
      return p;
    };
    const a = make();
    const b = make();
    const options = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
    const ref = new AdamW(a.list, options);
    const flat = new FlatAdamW(b.list, options);
    for (let s = 0; s < 4; s++) {
      const g = (p: ParamSet) => ({
        [p.get('w').name]: tf.tensor2d([[0.3 * s, -0.1, 0.2], [1, -1, 0.05 * s]]),
        [p.get('b').name]: tf.tensor1d([2, -0.5 * s, 0.1]),
      });
      ref.apply(g(a), 0.01);
      flat.apply(g(b), 0.01);
    }
    for (const name of ['w', 'b']) {
      const x = a.get(name).dataSync();
      const y = b.get(name).dataSync();
      for (let i = 0; i < x.length; i++) expect(y[i]).toBeCloseTo(x[i], 6);
    }
    const refState = await ref.state();
    const flatState = flat.stateByName();
    expect(flatState.step).toBe(4);
    for (const [name, mv] of refState.moments) {
      Array.from(mv.m).forEach((v, i) => expect(flatState.moments.get(name)!.m[i]).toBeCloseTo(v, 6));
    }
    ref.dispose();
    a.dispose();
    b.dispose();
  });
});
