import { prefersHostKernels } from '../backend/kernels.js';
import { PAD } from '../data/tokenizer.js';
import type { Normalization } from '../model/clip.js';
import type { ClipArchitecture } from '../model/towers.js';
import { Arena, KernelHeap } from '../backend/wasm/heap.js';
import type { FlatLayout, ParamSlot } from './flatLayout.js';

/**
 * The training step of MLP CLIPs (image tower `mlp`, bag-of-words text
 * tower) on host typed arrays and the WebAssembly SIMD GEMM of the
 * neighbour search (../backend/wasm/kernels.ts), without tfjs.
 *
 * Why: on the CPU backends a tfjs step is ~40 kernels with a copy in and out
 * of each, and the GEMM behind tf.matMul reaches about half of what the
 * octet-panel kernel does on these shapes. Here forward, backward and the
 * contrastive loss read and write one wasm heap.
 *
 * Layouts. The GEMM computes C = A·B^T on two operands in octet panels
 * ("rows" layout of a matrix M [R, C]: [R/8][C][8]); the "cols" layout of M
 * is the rows layout of M^T ([C/8][R][8]). Every product of the step reads
 * one of the two layouts of each operand, and `gemmx` writes its result
 * straight into the cols layout of C, so each activation and gradient is
 * produced in both layouts by one epilogue pass (`epi`: bias, ReLU or the
 * ReLU mask, and the transposed copy) rather than by transposing:
 *
 *   forward   H = X W      gemmx(rows X, cols W) -> cols H; epi -> rows H
 *   dW        X^T G        gemm(cols X, cols G)  -> row-major [in, out]
 *   dX        G W^T        gemmx(rows G, rows W) -> cols dX; epi(mask) -> rows dX
 *   db        strip sums of cols G
 *
 * Every dimension is padded to a multiple of 8 with zeros (weights, bias,
 * features); padding batch rows carry finite values forward but zero
 * gradients, so they contribute nothing.
 *
 * The loss is CLIP's symmetric InfoNCE with per-sample weights, exactly as
 * ../model/loss.ts defines it (weight-0 samples are neither positives nor
 * negatives), the L2 normalisation with its epsilon, and the learnable
 * logit scale clamped at maxLogitScale (tf.minimum: the gradient passes when
 * exp(s) <= max). Softmaxes run in float64 on the host.
 *
 * For data-parallel workers the step is split like theirs: `forward` on the
 * worker's shard publishes unnormalised embeddings; `backward` computes the
 * full batch's loss from every shard's embeddings and back-propagates into
 * the shard's own rows only, so the workers' gradients sum to the full one.
 * `lossStats` + `shardBackward` do the same with each shard computing only
 * its rows' and columns' softmaxes, after an exchange of their statistics
 * (a duplicated full-batch loss was ~10% of a 2-worker step).
 */

const roundUp = (v: number, m: number) => Math.ceil(v / m) * m;
/** l2Normalize's floor on the squared norm. */
const NORM_EPS = 1e-24;

/** `train.kernel`: `auto` steps on these kernels where they apply, `off` always on tfjs ops. */
export type KernelMode = 'auto' | 'off';

/** Whether a stepper should use the kernel step: asked for, a CPU backend (wasm, cpu), a supported architecture. */
export function useKernelStep(mode: KernelMode, arch: ClipArchitecture): boolean {
  return mode === 'auto' && prefersHostKernels() && kernelStepUnsupported(arch) === null;
}

/** Why `arch` cannot use the kernel step, or null when it can. */
export function kernelStepUnsupported(arch: ClipArchitecture): string | null {
  if (arch.imageTower !== 'mlp') return `the ${arch.imageTower} image tower has no kernel step`;
  return null;
}

interface Dense {
  readonly inDim: number;
  readonly outDim: number;
  readonly inPad: number;
  readonly outPad: number;
  readonly relu: boolean;
  readonly kernel: ParamSlot;
  readonly bias: ParamSlot;
  /** Heap byte offsets: W in cols and rows layouts, the padded bias. */
  wCols: number;
  wRows: number;
  biasAt: number;
  /** Activation (after bias/ReLU) and gradient of the output, both layouts, [capacity]. */
  outCols: number;
  outRows: number;
  gCols: number;
  gRows: number;
}

interface Tower {
  readonly layers: Dense[];
  readonly inDim: number;
  readonly inPad: number;
  /** The gradient of the tower's input is wanted (the text tower's word vectors). */
  readonly inputGrad: boolean;
  inRows: number;
  inCols: number;
  dInCols: number;
}

/** Each row's 1/norm and squared norm (`normalize`). */
interface Norms {
  readonly inv: Float64Array;
  readonly sq: Float64Array;
}

/** Embeddings of one shard, row-major [n, embedDim]. */
export interface ShardEmbeddings {
  readonly images: Float32Array;
  readonly texts: Float32Array;
}

export class KernelStep {
  private readonly heap: KernelHeap;
  private readonly image: Tower;
  private readonly text: Tower;
  private readonly embedding: ParamSlot;
  private readonly logitScale: ParamSlot;
  private readonly D: number;
  private readonly Dp: number;
  private readonly scale: number[];
  private readonly shift: number[];
  private capacity = 0;
  private fullCapacity = 0;
  // heap byte offsets of the batch regions (set by `layout`)
  private pixelsAt = 0;
  private dWAt = 0;
  private dbAt = 0;
  private inRowsI = 0;
  private inColsI = 0;
  private inRowsT = 0;
  private inColsT = 0;
  private sAt = 0;
  private dSr = 0;
  private dSc = 0;
  private dIn = 0;
  private dTn = 0;
  // shard state kept from forward to backward
  private n = 0;
  private np = 0;
  private tokens: Int32Array = new Int32Array(0);
  private inverseCount = new Float32Array(0);
  // host scratch of the loss
  private probs = new Float64Array(0);
  private colProbs = new Float64Array(0);
  /** The whole batch's normalisation, kept from `lossStats` to `shardBackward`. */
  private norms: { images: Norms; texts: Norms } | null = null;

  constructor(
    private readonly arch: ClipArchitecture,
    normalization: Normalization,
    private readonly flat: FlatLayout,
  ) {
    const why = kernelStepUnsupported(arch);
    if (why) throw new Error(`KernelStep: ${why}`);
    const slot = (name: string) => {
      const s = flat.slots.find((x) => x.name === name);
      if (!s) throw new Error(`KernelStep: the model has no parameter ${name}`);
      return s;
    };
    const tower = (prefixes: string[], inDim: number, inputGrad: boolean): Tower => {
      let width = inDim;
      const layers = prefixes.map((prefix, i): Dense => {
        const kernel = slot(`${prefix}/kernel`);
        const bias = slot(`${prefix}/bias`);
        if (kernel.shape.length !== 2 || kernel.shape[0] !== width) throw new Error(`KernelStep: ${prefix}/kernel has shape [${kernel.shape.join(', ')}], expected ${width} inputs`);
        const outDim = kernel.shape[1];
        const layer = { inDim: width, outDim, inPad: roundUp(width, 8), outPad: roundUp(outDim, 8), relu: i < prefixes.length - 1, kernel, bias, wCols: 0, wRows: 0, biasAt: 0, outCols: 0, outRows: 0, gCols: 0, gRows: 0 };
        width = outDim;
        return layer;
      });
      return { layers, inDim, inPad: roundUp(inDim, 8), inputGrad, inRows: 0, inCols: 0, dInCols: 0 };
    };
    const [h, w, c] = arch.imageShape;
    this.image = tower([...arch.hidden.map((_, i) => `image/dense${i}`), 'image/proj'], h * w * c, false);
    this.text = tower([...arch.textHidden.map((_, i) => `text/dense${i}`), 'text/proj'], arch.textWidth, true);
    this.embedding = slot('text/embedding');
    this.logitScale = slot('logit_scale');
    const covered = 2 + 2 * (this.image.layers.length + this.text.layers.length);
    if (covered !== flat.slots.length) throw new Error(`KernelStep: the model has ${flat.slots.length} parameters, the MLP CLIP ${covered}`);
    this.D = arch.embedDim;
    this.Dp = roundUp(this.D, 8);
    this.scale = normalization.std.map((s) => 1 / (255 * s));
    this.shift = normalization.mean.map((m, i) => m / normalization.std[i]);
    this.heap = KernelHeap.private(1 << 20);
  }

  /** (Re)assign every heap region for shards of up to `capacity` samples and full batches of `full`. */
  private layout(capacity: number, full: number): void {
    const C8 = roundUp(capacity, 8);
    const F8 = roundUp(full, 8);
    const Dp = this.Dp;
    const arena = new Arena(64);
    const f = (floats: number) => arena.alloc(floats * 4);
    let dW = 8;
    let db = 8;
    for (const t of [this.image, this.text]) {
      t.inRows = f(C8 * t.inPad);
      t.inCols = f(C8 * t.inPad);
      t.dInCols = t.inputGrad ? f(C8 * t.inPad) : 0;
      for (const l of t.layers) {
        l.wCols = f(l.outPad * l.inPad);
        l.wRows = f(l.outPad * l.inPad);
        l.biasAt = f(l.outPad);
        l.outCols = f(C8 * l.outPad);
        l.outRows = f(C8 * l.outPad);
        l.gCols = f(C8 * l.outPad);
        l.gRows = f(C8 * l.outPad);
        dW = Math.max(dW, l.inPad * l.outPad);
        db = Math.max(db, l.outPad);
      }
    }
    this.dWAt = f(dW);
    this.dbAt = f(db);
    this.pixelsAt = arena.alloc(C8 * this.image.inPad);
    this.inRowsI = f(F8 * Dp);
    this.inColsI = f(F8 * Dp);
    this.inRowsT = f(F8 * Dp);
    this.inColsT = f(F8 * Dp);
    this.sAt = f(F8 * F8);
    this.dSr = f(C8 * F8);
    this.dSc = f(C8 * F8);
    this.dIn = f(C8 * Dp);
    this.dTn = f(C8 * Dp);
    this.heap.ensure(arena.top + 64);
    // Weight padding must read as zero; everything else is written before it is read.
    this.heap.f32.fill(0);
    this.capacity = capacity;
    this.fullCapacity = full;
    this.probs = new Float64Array(full * full);
    this.colProbs = new Float64Array(full * full);
  }

  /** Octet-panel copies of the current parameters. */
  private packWeights(params: Float32Array): void {
    const { heap } = this;
    const f32 = heap.f32;
    for (const t of [this.image, this.text]) {
      for (const l of t.layers) {
        const { inDim, outDim, inPad, outPad } = l;
        if (outDim % 8 === 0) {
          // through the (not yet used) dW scratch: one memcpy, then SIMD strips
          f32.set(params.subarray(l.kernel.offset, l.kernel.offset + l.kernel.size), this.dWAt >> 2);
          heap.k.strips(this.dWAt, inDim, outDim, inPad, l.wCols);
        } else {
          const base = l.wCols >> 2;
          for (let i = 0; i < inDim; i++) {
            const src = l.kernel.offset + i * outDim;
            for (let j = 0; j < outDim; j++) f32[base + ((j >> 3) * inPad + i) * 8 + (j & 7)] = params[src + j];
          }
        }
        heap.k.epi(l.wCols, outPad >> 3, inPad, 0, 0, 0, l.wRows);
        f32.set(params.subarray(l.bias.offset, l.bias.offset + outDim), l.biasAt >> 2);
      }
    }
  }

  private ensure(n: number, full: number): void {
    if (n > this.capacity || full > this.fullCapacity) this.layout(Math.max(n, this.capacity), Math.max(full, this.fullCapacity));
  }

  /**
   * Both towers on a shard of `n` samples (uint8 HWC pixels, [n, maxTokens]
   * token ids) with the parameters `params` (flat layout); returns the
   * unnormalised embeddings, row-major. `full` is the size of the batch the
   * following `backward` will see (>= n).
   */
  forward(params: Float32Array, pixels: Uint8Array, tokens: Int32Array, n: number, full = n): ShardEmbeddings {
    if (n < 1) throw new Error('KernelStep.forward: empty shard');
    this.ensure(n, full);
    this.packWeights(params);
    const np = roundUp(n, 8);
    this.n = n;
    this.np = np;
    this.tokens = tokens;
    this.imageInput(pixels, n, np);
    this.textInput(params, tokens, n, np);
    return { images: this.towerForward(this.image, np, n), texts: this.towerForward(this.text, np, n) };
  }

  private imageInput(pixels: Uint8Array, n: number, np: number): void {
    const { heap, image } = this;
    const f32 = heap.f32;
    const K = image.inDim;
    const Kp = image.inPad;
    const rows = image.inRows >> 2;
    const c = this.scale.length;
    f32.fill(0, rows + (n >> 3) * Kp * 8, rows + np * Kp);
    if (c === 1 && K === Kp) {
      // normalised as ClipModel.pixelsToTensor computes it (float64, rounded once)
      new Uint8Array(heap.memory.buffer, this.pixelsAt, n * K).set(pixels.subarray(0, n * K));
      heap.k.pixelpack(this.pixelsAt, n, K, this.scale[0], this.shift[0], image.inRows);
    } else {
      for (let b = 0; b < n; b++) {
        const p = rows + (b >> 3) * Kp * 8 + (b & 7);
        const o = b * K;
        for (let i = 0; i < K; i++) f32[p + i * 8] = pixels[o + i] * this.scale[i % c] - this.shift[i % c];
      }
    }
    heap.k.epi(image.inRows, np >> 3, Kp, 0, 0, 0, image.inCols);
  }

  /** Mean word vector of each caption (bagOfWords.ts), in both layouts. */
  private textInput(params: Float32Array, tokens: Int32Array, n: number, np: number): void {
    const { heap, text } = this;
    const f32 = heap.f32;
    const L = this.arch.maxTokens;
    const W = text.inDim;
    const Wp = text.inPad;
    const rows = text.inRows >> 2;
    const cols = text.inCols >> 2;
    const table = this.embedding.offset;
    f32.fill(0, rows, rows + np * Wp);
    f32.fill(0, cols, cols + np * Wp);
    const vocab = this.arch.vocabSize;
    for (let i = 0; i < n * L; i++) {
      // the message of the tfjs path's gather, so callers see one error either way
      if (!(tokens[i] >= 0 && tokens[i] < vocab)) throw new Error(`text tower: the index value ${tokens[i]} is not in [0, ${vocab - 1}] (a token id outside the vocabulary)`);
    }
    if (this.inverseCount.length < n) this.inverseCount = new Float32Array(n);
    const acc = new Float32Array(W);
    for (let b = 0; b < n; b++) {
      acc.fill(0);
      let count = 0;
      for (let l = 0; l < L; l++) {
        const id = tokens[b * L + l];
        if (id === PAD) continue;
        count++;
        const o = table + id * W;
        for (let k = 0; k < W; k++) acc[k] += params[o + k];
      }
      const inv = Math.fround(1 / Math.max(count, 1));
      this.inverseCount[b] = inv;
      const r = rows + (b >> 3) * Wp * 8 + (b & 7);
      const cb = cols + b * 8;
      for (let k = 0; k < W; k++) {
        const v = acc[k] * inv;
        f32[r + k * 8] = v;
        f32[cb + (k >> 3) * np * 8 + (k & 7)] = v;
      }
    }
  }

  private towerForward(t: Tower, np: number, n: number): Float32Array {
    const { heap } = this;
    let inRows = t.inRows;
    for (const l of t.layers) {
      heap.k.gemmx(inRows, l.wCols, np >> 2, l.outPad >> 3, l.inPad, l.outCols, 32, np * 32);
      heap.k.epi(l.outCols, l.outPad >> 3, np, l.biasAt, 0, l.relu ? 1 : 0, l.relu ? l.outRows : 0);
      inRows = l.outRows;
    }
    const last = t.layers[t.layers.length - 1];
    const f32 = heap.f32;
    const D = this.D;
    const out = new Float32Array(n * D);
    const base = last.outCols >> 2;
    for (let d = 0; d < D; d++) {
      const p = base + (d >> 3) * np * 8 + (d & 7);
      for (let b = 0; b < n; b++) out[b * D + d] = f32[p + b * 8];
    }
    return out;
  }

  /**
   * The loss of the whole batch (`size` samples; `images`/`texts` are every
   * shard's unnormalised embeddings, row-major, this shard's at rows
   * [lo, lo + n)) and the gradient of every parameter through this shard's
   * rows, written into `grad` (flat layout; every element is written).
   * `scaleGrad`: whether this call reports the logit scale's gradient (one
   * worker does; it is the same full-batch value in each).
   */
  backward(params: Float32Array, images: Float32Array, texts: Float32Array, size: number, lo: number, weights: Float32Array | null, grad: Float32Array, scaleGrad = true): number {
    const { n, np, heap, D, Dp } = this;
    if (size > this.fullCapacity || lo < 0 || lo + n > size) throw new Error(`KernelStep.backward: shard [${lo}, ${lo + n}) of a batch of ${size}`);
    const hi = lo + n;
    const F8 = roundUp(size, 8);
    const f32 = heap.f32;
    // logit scale as ClipModel.logitScale: min(exp(s), max) in float32
    const expS = Math.fround(Math.exp(params[this.logitScale.offset]));
    const scale = Math.min(expS, Math.fround(this.arch.maxLogitScale));
    const w = (i: number) => (weights ? weights[i] : 1);
    let total = 0;
    for (let i = 0; i < size; i++) total += w(i);
    total = Math.max(total, 1e-12);

    const normI = this.normalize(images, size, F8, this.inRowsI, this.inColsI);
    const normT = this.normalize(texts, size, F8, this.inRowsT, this.inColsT);
    heap.k.gemm(this.inRowsI, this.inRowsT, F8 >> 2, F8 >> 3, Dp, this.sAt, F8 * 4);

    // symmetric cross-entropy over the present samples (contrastive.ts)
    const S = this.sAt >> 2;
    const P = this.probs;
    const Q = this.colProbs;
    const rowLse = new Float64Array(size);
    const colLse = new Float64Array(size);
    const colMax = new Float64Array(size).fill(-Infinity);
    const colSum = new Float64Array(size);
    const rowSum = new Float64Array(size);
    for (let i = 0; i < size; i++) {
      if (!(w(i) > 0)) continue;
      const o = S + i * F8;
      let max = -Infinity;
      for (let j = 0; j < size; j++) {
        if (!(w(j) > 0)) continue;
        const v = f32[o + j] * scale;
        if (v > max) max = v;
        if (v > colMax[j]) colMax[j] = v;
      }
      let sum = 0;
      for (let j = 0; j < size; j++) {
        if (!(w(j) > 0)) continue;
        const e = Math.exp(f32[o + j] * scale - max);
        P[i * size + j] = e;
        sum += e;
      }
      rowSum[i] = sum;
      rowLse[i] = max + Math.log(sum);
    }
    for (let i = 0; i < size; i++) {
      if (!(w(i) > 0)) continue;
      const o = S + i * F8;
      for (let j = 0; j < size; j++) {
        if (!(w(j) > 0)) continue;
        const e = Math.exp(f32[o + j] * scale - colMax[j]);
        Q[i * size + j] = e;
        colSum[j] += e;
      }
    }
    let loss = 0;
    for (let j = 0; j < size; j++) if (w(j) > 0) colLse[j] = colMax[j] + Math.log(colSum[j]);
    for (let i = 0; i < size; i++) {
      if (!(w(i) > 0)) continue;
      const diag = f32[S + i * F8 + i] * scale;
      loss += (w(i) * (rowLse[i] - diag + colLse[i] - diag)) / 2;
    }
    loss /= total;

    // d loss / d logits, times the scale, into this shard's rows (dSr) and columns (dSc)
    const dSr = this.dSr >> 2;
    const dSc = this.dSc >> 2;
    f32.fill(0, dSr, dSr + np * F8);
    f32.fill(0, dSc, dSc + np * F8);
    let dScale = 0;
    for (let i = 0; i < size; i++) {
      const wi = w(i);
      if (!(wi > 0)) continue;
      const own = i >= lo && i < hi;
      const from = own || scaleGrad ? 0 : lo;
      const to = own || scaleGrad ? size : hi;
      const rowInv = wi / rowSum[i];
      const o = S + i * F8;
      const ri = i - lo;
      const rowAt = dSr + (ri >> 3) * F8 * 8 + (ri & 7);
      for (let j = from; j < to; j++) {
        const wj = w(j);
        if (!(wj > 0)) continue;
        let d = (P[i * size + j] * rowInv + (wj * Q[i * size + j]) / colSum[j]) / 2;
        if (i === j) d -= wi;
        d /= total;
        dScale += d * f32[o + j];
        const ds = d * scale;
        if (own) f32[rowAt + j * 8] = ds;
        if (j >= lo && j < hi) {
          const rj = j - lo;
          f32[dSc + (rj >> 3) * F8 * 8 + i * 8 + (rj & 7)] = ds;
        }
      }
    }
    this.backpropShard(images, texts, normI, normT, lo, F8, grad);
    grad[this.logitScale.offset] = scaleGrad && expS <= Math.fround(this.arch.maxLogitScale) ? dScale * expS : 0;
    return loss;
  }

  /** From dS (dSr, dSc) down to every parameter's gradient through this shard's rows. */
  private backpropShard(images: Float32Array, texts: Float32Array, normI: Norms, normT: Norms, lo: number, F8: number, grad: Float32Array): void {
    const { np, heap, Dp } = this;
    // this shard's rows of d/dIn = dS·Tn and d/dTn = dS^T·In, row-major [np, Dp]
    heap.k.gemm(this.dSr, this.inColsT, np >> 2, Dp >> 3, F8, this.dIn, Dp * 4);
    heap.k.gemm(this.dSc, this.inColsI, np >> 2, Dp >> 3, F8, this.dTn, Dp * 4);
    this.normalizeBackward(images, normI, lo, this.dIn, this.image);
    this.normalizeBackward(texts, normT, lo, this.dTn, this.text);
    this.towerBackward(this.image, grad);
    this.towerBackward(this.text, grad);
    this.embeddingGradient(grad);
  }

  /**
   * First half of the sharded loss (`backward` split so that W workers share
   * the softmaxes instead of each computing all of them): normalises the
   * whole batch, forms the logits, and writes the softmax statistics of this
   * shard's rows and columns into `stats` ([4, size] float64: row max, row
   * sum, column max, column sum; only indices [lo, lo + n) are written). Once
   * every shard's statistics are in `stats`, `shardBackward` finishes.
   * The exponentials are the same float64 values `backward` computes, in the
   * same order, so the softmax gradients are identical bits.
   */
  lossStats(params: Float32Array, images: Float32Array, texts: Float32Array, size: number, lo: number, weights: Float32Array | null, stats: Float64Array): void {
    const { n, heap, Dp } = this;
    if (size > this.fullCapacity || lo < 0 || lo + n > size) throw new Error(`KernelStep.lossStats: shard [${lo}, ${lo + n}) of a batch of ${size}`);
    if (stats.length < 4 * size) throw new Error(`KernelStep.lossStats: ${stats.length} statistics for a batch of ${size}`);
    const hi = lo + n;
    const F8 = roundUp(size, 8);
    const f32 = heap.f32;
    const scale = this.logitScaleOf(params).scale;
    const w = (i: number) => (weights ? weights[i] : 1);
    this.norms = { images: this.normalize(images, size, F8, this.inRowsI, this.inColsI), texts: this.normalize(texts, size, F8, this.inRowsT, this.inColsT) };
    heap.k.gemm(this.inRowsI, this.inRowsT, F8 >> 2, F8 >> 3, Dp, this.sAt, F8 * 4);
    const S = this.sAt >> 2;
    const P = this.probs;
    const Q = this.colProbs;
    for (let i = lo; i < hi; i++) {
      if (!(w(i) > 0)) continue;
      const o = S + i * F8;
      let max = -Infinity;
      for (let j = 0; j < size; j++) {
        if (!(w(j) > 0)) continue;
        const v = f32[o + j] * scale;
        if (v > max) max = v;
      }
      let sum = 0;
      for (let j = 0; j < size; j++) {
        if (!(w(j) > 0)) continue;
        const e = Math.exp(f32[o + j] * scale - max);
        P[i * size + j] = e;
        sum += e;
      }
      stats[i] = max;
      stats[size + i] = sum;
    }
    const colMax = stats.subarray(2 * size, 3 * size);
    const colSum = stats.subarray(3 * size, 4 * size);
    colMax.fill(-Infinity, lo, hi);
    colSum.fill(0, lo, hi);
    for (let i = 0; i < size; i++) {
      if (!(w(i) > 0)) continue;
      const o = S + i * F8;
      for (let j = lo; j < hi; j++) {
        if (!(w(j) > 0)) continue;
        const v = f32[o + j] * scale;
        if (v > colMax[j]) colMax[j] = v;
      }
    }
    for (let i = 0; i < size; i++) {
      if (!(w(i) > 0)) continue;
      const o = S + i * F8;
      for (let j = lo; j < hi; j++) {
        if (!(w(j) > 0)) continue;
        const e = Math.exp(f32[o + j] * scale - colMax[j]);
        Q[i * size + j] = e;
        colSum[j] += e;
      }
    }
  }

  /**
   * Second half of the sharded loss, after `lossStats` ran in every shard:
   * this shard's share of the loss (its rows' terms; the shares sum to the
   * batch loss) and the gradient of every parameter through its rows, into
   * `grad`. The logit scale's gradient is this shard's rows' share too, so
   * summing the workers' gradients sums it exactly once.
   */
  shardBackward(params: Float32Array, images: Float32Array, texts: Float32Array, size: number, lo: number, weights: Float32Array | null, stats: Float64Array, grad: Float32Array): number {
    const { n, np, heap } = this;
    const norms = this.norms;
    if (!norms) throw new Error('KernelStep.shardBackward before lossStats');
    this.norms = null;
    const hi = lo + n;
    const F8 = roundUp(size, 8);
    const f32 = heap.f32;
    const { expS, scale } = this.logitScaleOf(params);
    const w = (i: number) => (weights ? weights[i] : 1);
    let total = 0;
    for (let i = 0; i < size; i++) total += w(i);
    total = Math.max(total, 1e-12);
    const rowMax = stats.subarray(0, size);
    const rowSum = stats.subarray(size, 2 * size);
    const colMax = stats.subarray(2 * size, 3 * size);
    const colSum = stats.subarray(3 * size, 4 * size);
    const S = this.sAt >> 2;
    const P = this.probs;
    const Q = this.colProbs;

    let loss = 0;
    for (let i = lo; i < hi; i++) {
      if (!(w(i) > 0)) continue;
      const diag = f32[S + i * F8 + i] * scale;
      const rowLse = rowMax[i] + Math.log(rowSum[i]);
      const colLse = colMax[i] + Math.log(colSum[i]);
      loss += (w(i) * (rowLse - diag + colLse - diag)) / 2;
    }
    loss /= total;

    const dSr = this.dSr >> 2;
    const dSc = this.dSc >> 2;
    f32.fill(0, dSr, dSr + np * F8);
    f32.fill(0, dSc, dSc + np * F8);
    let dScale = 0;
    for (let i = 0; i < size; i++) {
      const wi = w(i);
      if (!(wi > 0)) continue;
      const own = i >= lo && i < hi;
      const from = own ? 0 : lo;
      const to = own ? size : hi;
      const rowInv = wi / rowSum[i];
      const o = S + i * F8;
      const ri = i - lo;
      const rowAt = dSr + (ri >> 3) * F8 * 8 + (ri & 7);
      for (let j = from; j < to; j++) {
        const wj = w(j);
        if (!(wj > 0)) continue;
        const ownCol = j >= lo && j < hi;
        // P of other shards' rows and Q of other shards' columns were not kept here: the same exponentials again
        const p = own ? P[i * size + j] : Math.exp(f32[o + j] * scale - rowMax[i]);
        const q = ownCol ? Q[i * size + j] : Math.exp(f32[o + j] * scale - colMax[j]);
        let d = (p * rowInv + (wj * q) / colSum[j]) / 2;
        if (i === j) d -= wi;
        d /= total;
        const ds = d * scale;
        if (own) {
          dScale += d * f32[o + j];
          f32[rowAt + j * 8] = ds;
        }
        if (ownCol) {
          const rj = j - lo;
          f32[dSc + (rj >> 3) * F8 * 8 + i * 8 + (rj & 7)] = ds;
        }
      }
    }
    this.backpropShard(images, texts, norms.images, norms.texts, lo, F8, grad);
    grad[this.logitScale.offset] = expS <= Math.fround(this.arch.maxLogitScale) ? dScale * expS : 0;
    return loss;
  }

  /** The logit scale as ClipModel.logitScale: min(exp(s), max) in float32. */
  private logitScaleOf(params: Float32Array): { expS: number; scale: number } {
    const expS = Math.fround(Math.exp(params[this.logitScale.offset]));
    return { expS, scale: Math.min(expS, Math.fround(this.arch.maxLogitScale)) };
  }

  /** Unit rows of `x` [size, D] into both layouts (zero padding); returns each row's 1/norm and squared norm. */
  private normalize(x: Float32Array, size: number, F8: number, rowsAt: number, colsAt: number): Norms {
    const { D, Dp } = this;
    const f32 = this.heap.f32;
    const rows = rowsAt >> 2;
    const cols = colsAt >> 2;
    f32.fill(0, rows, rows + F8 * Dp);
    f32.fill(0, cols, cols + F8 * Dp);
    const inv = new Float64Array(size);
    const sq = new Float64Array(size);
    for (let i = 0; i < size; i++) {
      const o = i * D;
      let q = 0;
      for (let d = 0; d < D; d++) q += x[o + d] * x[o + d];
      const r = 1 / Math.sqrt(Math.max(q, NORM_EPS));
      inv[i] = r;
      sq[i] = q;
      const ro = rows + (i >> 3) * Dp * 8 + (i & 7);
      const co = cols + i * 8;
      for (let d = 0; d < D; d++) {
        const v = x[o + d] * r;
        f32[ro + d * 8] = v;
        f32[co + (d >> 3) * F8 * 8 + (d & 7)] = v;
      }
    }
    return { inv, sq };
  }

  /** Gradient through x * rsqrt(max(|x|^2, eps)) of this shard's rows, as the projection's output gradient (both layouts). */
  private normalizeBackward(x: Float32Array, norm: Norms, lo: number, dyAt: number, t: Tower): void {
    const { n, np, D, Dp } = this;
    const f32 = this.heap.f32;
    const proj = t.layers[t.layers.length - 1];
    const gRows = proj.gRows >> 2;
    const gCols = proj.gCols >> 2;
    f32.fill(0, gRows, gRows + np * Dp);
    f32.fill(0, gCols, gCols + np * Dp);
    const dy = dyAt >> 2;
    for (let i = 0; i < n; i++) {
      const o = (lo + i) * D;
      const r = norm.inv[lo + i];
      const yo = dy + i * Dp;
      let dot = 0;
      for (let d = 0; d < D; d++) dot += x[o + d] * f32[yo + d];
      const c = norm.sq[lo + i] >= NORM_EPS ? dot * r * r * r : 0;
      const ro = gRows + (i >> 3) * Dp * 8 + (i & 7);
      const co = gCols + i * 8;
      for (let d = 0; d < D; d++) {
        const g = r * f32[yo + d] - x[o + d] * c;
        f32[ro + d * 8] = g;
        f32[co + (d >> 3) * np * 8 + (d & 7)] = g;
      }
    }
  }

  private towerBackward(t: Tower, grad: Float32Array): void {
    const { heap, np } = this;
    for (let li = t.layers.length - 1; li >= 0; li--) {
      const l = t.layers[li];
      heap.k.stripsum(l.gCols, l.outPad >> 3, np, this.dbAt);
      let f32 = heap.f32;
      grad.set(f32.subarray(this.dbAt >> 2, (this.dbAt >> 2) + l.outDim), l.bias.offset);
      const inCols = li === 0 ? t.inCols : t.layers[li - 1].outCols;
      heap.k.gemm(inCols, l.gCols, l.inPad >> 2, l.outPad >> 3, np, this.dWAt, l.outPad * 4);
      f32 = heap.f32;
      const dW = this.dWAt >> 2;
      if (l.outPad === l.outDim) grad.set(f32.subarray(dW, dW + l.inDim * l.outDim), l.kernel.offset);
      else for (let i = 0; i < l.inDim; i++) grad.set(f32.subarray(dW + i * l.outPad, dW + i * l.outPad + l.outDim), l.kernel.offset + i * l.outDim);
      if (li > 0) {
        const prev = t.layers[li - 1];
        heap.k.gemmx(l.gRows, l.wRows, np >> 2, l.inPad >> 3, l.outPad, prev.gCols, 32, np * 32);
        heap.k.epi(prev.gCols, prev.outPad >> 3, np, 0, prev.outCols, 0, prev.gRows);
      } else if (t.inputGrad) {
        heap.k.gemmx(l.gRows, l.wRows, np >> 2, l.inPad >> 3, l.outPad, t.dInCols, 32, np * 32);
      }
    }
  }

  /** bagOfWords.ts's gradient: each caption's input gradient / its length, added onto its words' rows. */
  private embeddingGradient(grad: Float32Array): void {
    const { n, np, text } = this;
    const f32 = this.heap.f32;
    const L = this.arch.maxTokens;
    const W = text.inDim;
    const table = this.embedding.offset;
    grad.fill(0, table, table + this.embedding.size);
    const cols = text.dInCols >> 2;
    const row = new Float32Array(W);
    for (let b = 0; b < n; b++) {
      const inv = this.inverseCount[b];
      const cb = cols + b * 8;
      for (let k = 0; k < W; k++) row[k] = f32[cb + (k >> 3) * np * 8 + (k & 7)] * inv;
      for (let l = 0; l < L; l++) {
        const id = this.tokens[b * L + l];
        if (id === PAD) continue;
        const o = table + id * W;
        for (let k = 0; k < W; k++) grad[o + k] += row[k];
      }
    }
  }
}
