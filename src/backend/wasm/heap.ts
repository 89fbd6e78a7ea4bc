import { fmaAvailable, instantiateKernels, WA, type KernelExports, type WasmMemory } from './kernels.js';

/**
 * A WebAssembly memory with this project's SIMD kernels (./kernels.ts)
 * instantiated on it: private and growable for one thread, or shared
 * between worker threads. The neighbour search, the filter's embedding pass
 * and the training step all run their kernels on heaps like this.
 */

const PAGE = 65536;
const MAX_PAGES = 65536;

/** One wasm memory with the kernels instantiated on it, and typed views of it. */
export class KernelHeap {
  readonly k: KernelExports;
  private views!: { f32: Float32Array; i32: Int32Array; f64: Float64Array };
  private viewBuffer: ArrayBuffer | SharedArrayBuffer | null = null;

  private constructor(
    readonly memory: WasmMemory,
    readonly shared: boolean,
    readonly fma: boolean,
  ) {
    this.k = instantiateKernels(memory, shared, fma);
  }

  /** A private heap of at least `bytes`, growable. */
  static private(bytes: number, fma = fmaAvailable()): KernelHeap {
    const pages = Math.max(1, Math.ceil(bytes / PAGE));
    if (pages > MAX_PAGES) throw new RangeError(`the kernels need ${(bytes / 2 ** 30).toFixed(1)} GiB of wasm memory, more than the 4 GiB a wasm32 heap can hold`);
    return new KernelHeap(new WA.Memory({ initial: pages, maximum: MAX_PAGES }), false, fma);
  }

  /** A shared heap of exactly `bytes` (rounded up to pages), for worker threads. */
  static createShared(bytes: number, fma = fmaAvailable()): KernelHeap {
    const pages = Math.max(1, Math.ceil(bytes / PAGE));
    if (pages > MAX_PAGES) throw new RangeError(`the kernels need ${(bytes / 2 ** 30).toFixed(1)} GiB of shared wasm memory, more than the 4 GiB a wasm32 heap can hold`);
    return new KernelHeap(new WA.Memory({ initial: pages, maximum: pages, shared: true }), true, fma);
  }

  /** Attach to a shared memory created by another thread. */
  static attach(memory: WasmMemory, fma: boolean): KernelHeap {
    return new KernelHeap(memory, true, fma);
  }

  get bytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** Grow a private heap to at least `bytes`. */
  ensure(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes <= have) return;
    if (this.shared) throw new RangeError(`shared kernel heap too small: ${bytes} bytes needed, ${have} allocated`);
    const pages = Math.ceil((bytes - have) / PAGE);
    if (Math.ceil(bytes / PAGE) > MAX_PAGES) throw new RangeError(`the kernels need ${(bytes / 2 ** 30).toFixed(1)} GiB of wasm memory, more than the 4 GiB a wasm32 heap can hold`);
    (this.memory as unknown as { grow(pages: number): number }).grow(pages);
  }

  get f32(): Float32Array {
    return this.view().f32;
  }
  get i32(): Int32Array {
    return this.view().i32;
  }
  get f64(): Float64Array {
    return this.view().f64;
  }

  private view() {
    const buffer = this.memory.buffer;
    if (buffer !== this.viewBuffer) {
      this.views = { f32: new Float32Array(buffer), i32: new Int32Array(buffer), f64: new Float64Array(buffer) };
      this.viewBuffer = buffer;
    }
    return this.views;
  }
}

/** Bump allocation of 64-byte aligned regions. */
export class Arena {
  constructor(public top: number) {}
  alloc(bytes: number): number {
    const at = Math.ceil(this.top / 64) * 64;
    this.top = at + bytes;
    return at;
  }
}

