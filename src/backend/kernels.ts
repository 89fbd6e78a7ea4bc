import * as tf from '@tensorflow/tfjs';
import type { BackendName } from './select.js';

/**
 * The one place that knows about backend-specific kernels. Model code uses
 * plain tfjs ops (`matMul`, `gather`, `conv2d`); this module makes them train
 * fast and at all on the CPU backends:
 *
 * - BatchMatMul gradient: tfjs's default gradient uses `matMul(..., transposeA
 *   or transposeB)`, which the wasm backend runs ~10x slower than a plain
 *   `matMul` after an explicit `transpose` (XNNPACK only serves the plain
 *   form). On wasm and cpu the gradient transposes first.
 * - UnsortedSegmentSum (the gradient of `gather`, i.e. of embedding lookups)
 *   has no wasm kernel; it is ScatterNd with summed duplicates, which wasm has.
 * - Conv2DBackpropFilter (the filter gradient of `conv2d`) has no wasm kernel;
 *   it is im2col followed by one plain matMul.
 * - GatherV2 on wasm copies element by element (~45x slower than copying
 *   rows); the common row lookup (axis 0, no batch dims, an embedding table)
 *   is replaced by row copies on the wasm heap.
 */

type TensorInfo = tf.TensorInfo;
type KernelFn = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => TensorInfo | TensorInfo[];

/** The subset of the wasm backend's public surface these kernels use. */
interface WasmBackendLike {
  readSync(dataId: unknown): tf.backend_util.BackendValues;
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
  disposeData(dataId: unknown): boolean;
}

const backendsWithSlowTransposedMatMul = new Set<string>(['wasm', 'cpu']);
let gradientInstalled = false;
/** Benchmarks switch the speed-ups off to measure tfjs's defaults in the same process. */
let fastPaths = true;

/**
 * Turn the explicit-transpose matMul gradient and the row-copy gather on or
 * off (the missing kernels stay, or nothing could train). For `bench/train`:
 * tfjs's default path measured in the same process as ours.
 */
export function useFastPaths(enabled: boolean): void {
  fastPaths = enabled;
}

function kernel(name: string, backendName: string): KernelFn {
  return tf.getKernel(name, backendName).kernelFunc as unknown as KernelFn;
}

function installMatMulGradient(): void {
  if (gradientInstalled) return;
  const original = tf.getGradient(tf.BatchMatMul);
  tf.registerGradient({
    kernelName: tf.BatchMatMul,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved;
      const rankOk = a.rank === 2 && b.rank === 2;
      if (!fastPaths || !rankOk || !backendsWithSlowTransposedMatMul.has(tf.getBackend())) {
        return original.gradFunc(dy, saved, attrs);
      }
      const g = dy as tf.Tensor2D;
      const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
      const T = (x: tf.Tensor) => tf.transpose(x as tf.Tensor2D);
      // y = op(a) op(b); each case is the textbook gradient with every
      // transpose made explicit so the matMul itself is always the plain form.
      if (!transposeA && !transposeB) return { a: () => tf.matMul(g, T(b)), b: () => tf.matMul(T(a), g) };
      if (!transposeA && transposeB) return { a: () => tf.matMul(g, b as tf.Tensor2D), b: () => tf.matMul(T(g), a as tf.Tensor2D) };
      if (transposeA && !transposeB) return { a: () => tf.matMul(b as tf.Tensor2D, T(g)), b: () => tf.matMul(a as tf.Tensor2D, g) };
      return { a: () => tf.matMul(T(b), T(g)), b: () => tf.matMul(T(g), T(a)) };
    },
  });
  gradientInstalled = true;
}

function installWasmKernels(): void {
  const registered = new Set(tf.getKernelsForBackend('wasm').map((k) => k.kernelName));

  if (!registered.has(tf.UnsortedSegmentSum)) {
    const scatterNd = kernel(tf.ScatterNd, 'wasm');
    const reshape = kernel(tf.Reshape, 'wasm');
    tf.registerKernel({
      kernelName: tf.UnsortedSegmentSum,
      backendName: 'wasm',
      kernelFunc: (({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: WasmBackendLike; attrs: tf.NamedAttrMap }) => {
        const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
        const numSegments = (attrs as unknown as { numSegments: number }).numSegments;
        const n = segmentIds.shape.reduce((p, q) => p * q, 1);
        const ids = reshape({ inputs: { x: segmentIds }, backend, attrs: { shape: [n, 1] } }) as TensorInfo;
        const rows = reshape({ inputs: { x }, backend, attrs: { shape: [n, ...x.shape.slice(segmentIds.shape.length)] } }) as TensorInfo;
        const out = scatterNd({
          inputs: { indices: ids, updates: rows },
          backend,
          attrs: { shape: [numSegments, ...x.shape.slice(segmentIds.shape.length)] },
        }) as TensorInfo;
        backend.disposeData(ids.dataId);
        backend.disposeData(rows.dataId);
        return out;
      }) as unknown as tf.KernelFunc,
    });
  }

  if (!registered.has(tf.Conv2DBackpropFilter)) {
    const batchMatMul = kernel(tf.BatchMatMul, 'wasm');
    const reshape = kernel(tf.Reshape, 'wasm');
    tf.registerKernel({
      kernelName: tf.Conv2DBackpropFilter,
      backendName: 'wasm',
      kernelFunc: (({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: WasmBackendLike; attrs: tf.NamedAttrMap }) => {
        const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
        const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
        if (dataFormat !== 'NHWC') throw new Error(`Conv2DBackpropFilter on wasm supports NHWC only, got ${dataFormat}`);
        const info = tf.backend_util.computeConv2DInfo(
          x.shape as [number, number, number, number],
          filterShape as [number, number, number, number],
          strides,
          1,
          pad,
          dimRoundingMode,
          false,
          'channelsLast',
        );
        const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = info;
        const padTop = info.padInfo.top;
        const padLeft = info.padInfo.left;
        const rows = batchSize * outHeight * outWidth;
        const patch = filterHeight * filterWidth * inChannels;
        const xv = backend.readSync(x.dataId) as Float32Array;
        // colsT[p, r]: input value under filter tap p for output position r,
        // laid out transposed so that dW = colsT x dy is a plain matMul.
        const colsT = backend.makeOutput([1, patch, rows], 'float32');
        const cols = backend.typedArrayFromHeap(colsT);
        cols.fill(0);
        for (let b = 0; b < batchSize; b++) {
          for (let oy = 0; oy < outHeight; oy++) {
            for (let ox = 0; ox < outWidth; ox++) {
              const r = (b * outHeight + oy) * outWidth + ox;
              for (let ky = 0; ky < filterHeight; ky++) {
                const iy = oy * strideHeight + ky - padTop;
                if (iy < 0 || iy >= inHeight) continue;
                for (let kx = 0; kx < filterWidth; kx++) {
                  const ix = ox * strideWidth + kx - padLeft;
                  if (ix < 0 || ix >= inWidth) continue;
                  const src = ((b * inHeight + iy) * inWidth + ix) * inChannels;
                  const p0 = (ky * filterWidth + kx) * inChannels;
                  for (let c = 0; c < inChannels; c++) cols[(p0 + c) * rows + r] = xv[src + c];
                }
              }
            }
          }
        }
        const dy3 = reshape({ inputs: { x: dy }, backend, attrs: { shape: [1, rows, outChannels] } }) as TensorInfo;
        const prod = batchMatMul({ inputs: { a: colsT, b: dy3 }, backend, attrs: { transposeA: false, transposeB: false } }) as TensorInfo;
        const out = reshape({ inputs: { x: prod }, backend, attrs: { shape: filterShape } }) as TensorInfo;
        backend.disposeData(colsT.dataId);
        backend.disposeData(dy3.dataId);
        backend.disposeData(prod.dataId);
        return out;
      }) as unknown as tf.KernelFunc,
    });
  }
}

function installWasmRowGather(): void {
  const original = tf.getKernel(tf.GatherV2, 'wasm');
  if (!original || (original as { rowGather?: boolean }).rowGather) return;
  const fallback = original.kernelFunc as unknown as KernelFn;
  tf.unregisterKernel(tf.GatherV2, 'wasm');
  const config = {
    kernelName: tf.GatherV2,
    backendName: 'wasm',
    rowGather: true,
    kernelFunc: (({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: WasmBackendLike; attrs: tf.NamedAttrMap }) => {
      const { x, indices } = inputs as { x: TensorInfo; indices: TensorInfo };
      const { axis, batchDims } = attrs as unknown as tf.GatherV2Attrs;
      const rowAxis = (axis ?? 0) === 0 || (axis ?? 0) === -x.shape.length;
      if (!fastPaths || !rowAxis || (batchDims ?? 0) !== 0 || x.shape.length < 1 || (x.dtype !== 'float32' && x.dtype !== 'int32')) {
        return fallback({ inputs, backend, attrs });
      }
      const rows = x.shape[0];
      const width = x.shape.slice(1).reduce((p, q) => p * q, 1);
      const ids = backend.readSync(indices.dataId) as Int32Array;
      for (let i = 0; i < ids.length; i++) {
        if (!(ids[i] >= 0 && ids[i] < rows)) throw new Error(`GatherV2: the index value ${ids[i]} is not in [0, ${rows - 1}]`);
      }
      const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
      // Views after makeOutput: allocation may grow (and detach) the heap.
      const src = backend.typedArrayFromHeap(x);
      const dst = backend.typedArrayFromHeap(out);
      for (let i = 0; i < ids.length; i++) dst.set(src.subarray(ids[i] * width, (ids[i] + 1) * width), i * width);
      return out;
    }) as unknown as tf.KernelFunc,
  };
  tf.registerKernel(config as tf.KernelConfig);
}

/**
 * Whether small fused computations (the contrastive loss on [B, B] logits)
 * should run on the host: true on the CPU backends, where reading a tensor is
 * a copy and kernel launches dominate; false on native/GPU backends, where a
 * read would stall the device.
 */
export function prefersHostKernels(): boolean {
  return fastPaths && backendsWithSlowTransposedMatMul.has(tf.getBackend());
}

/** Idempotent; called by `selectBackend` once the backend is known. */
export function installKernels(backend: BackendName): void {
  installMatMulGradient();
  if (backend === 'wasm') {
    installWasmKernels();
    installWasmRowGather();
  }
}
