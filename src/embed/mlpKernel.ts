import { KernelHeap } from '../backend/wasm/heap.js';
import type { ClipArchitecture } from '../model/towers.js';
import type { Normalization } from '../model/clip.js';

/**
 * The MLP image tower's forward pass (dense + ReLU layers, then the linear
 * projection; ../model/towers.ts imageTower) on the wasm SIMD GEMM of the
 * neighbour search: about 2x tfjs-wasm's matMul rate for the embedding pass
 * of the filter. Only the forward pass, only the `mlp` tower: anything else
 * stays with tfjs. `ParallelEmbedder` checks its output against the model's
 * own on the first batch of every call and falls back to tfjs on a
 * mismatch, so a change of the tower cannot silently change the embeddings.
 */

/** The parameters the pass reads, by name (as ParamSet names them). */
export interface MlpWeights {
  /** name -> { shape, data } (row-major, tfjs layout: kernel [in, out]). */
  get(name: string): { shape: readonly number[]; data: Float32Array } | undefined;
}

/** Whether `arch` is a tower this pass computes. */
export function mlpKernelSupports(arch: ClipArchitecture): boolean {
  return arch.imageTower === 'mlp';
}

interface Layer {
  inDim: number;
  outDim: number;
  /** outDim rounded up to 8. */
  outPad: number;
  /** W^T (outPad rows of inDim) in octet panels, byte offset. */
  weights: number;
  bias: Float32Array;
  /** The bias in the heap, byte offset. */
  biasAt: number;
  relu: boolean;
}

const roundUp = (v: number, m: number) => Math.ceil(v / m) * m;

/** Rows of a row-major matrix into octet panels (zero padding rows to a multiple of 8). */
function packRows(f32: Float32Array, at: number, src: Float32Array, rows: number, cols: number, paddedRows: number): void {
  const base = at >> 2;
  f32.fill(0, base, base + paddedRows * cols);
  for (let i = 0; i < rows; i++) {
    const p = base + (i >> 3) * cols * 8 + (i & 7);
    const o = i * cols;
    for (let f = 0; f < cols; f++) f32[p + f * 8] = src[o + f];
  }
}

export class MlpKernelEmbedder {
  private readonly heap: KernelHeap;
  private readonly layers: Layer[] = [];
  private readonly maxBatch: number;
  private readonly act: [number, number];
  private readonly out: number;
  private readonly pixelsAt: number;
  private readonly scale: number[];
  private readonly shift: number[];
  readonly inputSize: number;
  readonly embedDim: number;

  constructor(arch: ClipArchitecture, normalization: Normalization, weights: MlpWeights, maxBatch = 1024) {
    if (!mlpKernelSupports(arch)) throw new Error(`MlpKernelEmbedder: the ${arch.imageTower} tower is not an MLP`);
    const [h, w, c] = arch.imageShape;
    this.inputSize = h * w * c;
    this.embedDim = arch.embedDim;
    this.maxBatch = roundUp(maxBatch, 8);
    this.scale = normalization.std.map((s) => 1 / (255 * s));
    this.shift = normalization.mean.map((m, i) => m / normalization.std[i]);
    const names = [...arch.hidden.map((_, i) => `image/dense${i}`), 'image/proj'];
    let inDim = this.inputSize;
    let widest = inDim;
    const specs = names.map((prefix, i) => {
      const kernel = weights.get(`${prefix}/kernel`);
      const bias = weights.get(`${prefix}/bias`);
      if (!kernel || !bias || kernel.shape.length !== 2 || kernel.shape[0] !== inDim) throw new Error(`MlpKernelEmbedder: no ${prefix} kernel of ${inDim} inputs`);
      const outDim = kernel.shape[1];
      const spec = { prefix, inDim, outDim, kernel: kernel.data, bias: bias.data, relu: i < names.length - 1 };
      inDim = outDim;
      widest = Math.max(widest, roundUp(outDim, 8));
      return spec;
    });
    const weightBytes = specs.reduce((s, l) => s + roundUp(l.outDim, 8) * (l.inDim + 1) * 4 + 128, 0);
    const actBytes = this.maxBatch * widest * 4 + 64;
    this.heap = KernelHeap.private(weightBytes + 3 * actBytes + this.maxBatch * this.inputSize + 1024);
    let top = 64;
    const alloc = (bytes: number) => {
      const at = Math.ceil(top / 64) * 64;
      top = at + bytes;
      return at;
    };
    for (const l of specs) {
      const outPad = roundUp(l.outDim, 8);
      // W^T: row j = column j of the [in, out] kernel
      const wt = new Float32Array(outPad * l.inDim);
      for (let i = 0; i < l.inDim; i++) for (let j = 0; j < l.outDim; j++) wt[j * l.inDim + i] = l.kernel[i * l.outDim + j];
      const at = alloc(outPad * l.inDim * 4);
      packRows(this.heap.f32, at, wt, outPad, l.inDim, outPad);
      const biasAt = alloc(outPad * 4);
      this.heap.f32.set(l.bias, biasAt >> 2);
      this.layers.push({ inDim: l.inDim, outDim: l.outDim, outPad, weights: at, bias: Float32Array.from(l.bias), biasAt, relu: l.relu });
    }
    this.act = [alloc(actBytes), alloc(actBytes)];
    this.out = alloc(actBytes);
    this.pixelsAt = alloc(this.maxBatch * this.inputSize);
  }

  /** Embeddings of `count` (<= maxBatch) HWC uint8 images into out[at..]. */
  embed(pixels: Uint8Array, count: number, out: Float32Array, at = 0): void {
    if (count > this.maxBatch) throw new RangeError(`MlpKernelEmbedder: batch of ${count} above ${this.maxBatch}`);
    const f32 = this.heap.f32;
    const rows = roundUp(count, 8);
    const c = this.scale.length;
    const K0 = this.inputSize;
    // normalised pixels (as ClipModel.pixelsToTensor computes them) straight into the first layer's panels
    let a = this.act[0] >> 2;
    f32.fill(0, a + (count >> 3) * K0 * 8, a + rows * K0);
    if (c === 1) {
      new Uint8Array(this.heap.memory.buffer, this.pixelsAt, count * K0).set(pixels.subarray(0, count * K0));
      this.heap.k.pixelpack(this.pixelsAt, count, K0, this.scale[0], this.shift[0], this.act[0]);
    } else {
      for (let i = 0; i < count; i++) {
        const p = a + (i >> 3) * K0 * 8 + (i & 7);
        const o = i * K0;
        for (let f = 0; f < K0; f++) f32[p + f * 8] = pixels[o + f] * this.scale[f % c] - this.shift[f % c];
      }
    }
    let side = 0;
    const last = this.layers.length - 1;
    for (let li = 0; li <= last; li++) {
      const l = this.layers[li];
      this.heap.k.gemm(this.act[side], l.weights, rows >> 2, l.outPad >> 3, l.inDim, this.out, l.outPad * 4);
      const o = this.out >> 2;
      const bias = l.bias;
      const N = l.outDim;
      if (li === last) {
        for (let i = 0; i < count; i++) {
          const src = o + i * l.outPad;
          const dst = at + i * N;
          for (let j = 0; j < N; j++) out[dst + j] = f32[src + j] + bias[j];
        }
        return;
      }
      // bias + ReLU, written as the next layer's octet panels
      side ^= 1;
      a = this.act[side] >> 2;
      f32.fill(0, a + (count >> 3) * N * 8, a + rows * N);
      this.heap.k.biasrelu(this.out, l.outPad * 4, count, N, l.biasAt, l.relu ? 1 : 0, this.act[side]);
    }
  }
}
