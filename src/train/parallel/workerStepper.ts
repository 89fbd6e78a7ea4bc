import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { RawBatch } from '../../data/stream.js';
import { imageBytes } from '../../data/types.js';
import type { ClipModel } from '../../model/clip.js';
import type { KernelMode } from '../kernelStep.js';
import type { AdamWOptions } from '../optimizer.js';
import type { OptimizerState, StepRunner } from '../stepper.js';
import { flatLayout, type FlatLayout } from '../flatLayout.js';
import { WA, type WasmMemory } from '../../backend/wasm/kernels.js';
import {
  clearAbort,
  CTL_FINISHED,
  CTL_SEQUENCE,
  CTL_SIZE,
  PHASES,
  PROTOCOL_VERSION,
  raiseAbort,
  stateLayout,
  stateViews,
  zeroPhases,
  type BatchMemory,
  type FromWorker,
  type InitMessage,
  type PhaseTimes,
  type StepMessage,
  type StepperMemory,
} from './shared.js';

export interface WorkerStepperOptions {
  /** Worker threads (each with its own tfjs backend); 1 works but only adds overhead. */
  readonly workers: number;
  /** Backend every worker selects (`selectBackend`), normally the main thread's. */
  readonly backend: string;
  /** Seed the workers build their (then overwritten) model copy with. */
  readonly seed: number;
  /** `train.kernel`: whether workers step on the wasm kernels (kernelStep.ts) where they apply; default auto. */
  readonly kernel?: KernelMode;
  /** Start-up or a step taking longer than this fails the stepper (a hung worker); default 10 minutes. */
  readonly timeoutMs?: number;
}

/** Where the time of the steps so far went, per worker, plus the main thread's share. */
export interface StepperProfile {
  readonly steps: number;
  /** Wall time of `step()` calls, milliseconds in all. */
  readonly stepMs: number;
  /** Main thread copying batches into shared memory, milliseconds in all. */
  readonly inputMs: number;
  readonly workers: readonly PhaseTimes[];
}

interface PendingStep {
  readonly id: number;
  readonly t: number;
  readonly waiting: Set<number>;
  /** Each worker's share of the loss, summed in worker order once all have reported. */
  readonly losses: Float64Array;
  failure: { index: number; message: string } | null;
  aborted: { index: number; message: string } | null;
  readonly resolve: (loss: number) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;

/**
 * The compiled worker script. From dist/ it sits next to this module; when
 * this module runs from the TypeScript sources (vitest), the worker still has
 * to be plain JS, so the compiled copy under dist/ is used.
 */
export function workerScriptUrl(): URL {
  const here = import.meta.url;
  if (here.endsWith('.js')) return new URL('./worker.js', here);
  const compiled = new URL('../../../dist/src/train/parallel/worker.js', here);
  if (!existsSync(fileURLToPath(compiled))) {
    throw new Error(`WorkerStepper runs its threads from the compiled ${fileURLToPath(compiled)}, which does not exist: run \`npm run build\` first`);
  }
  return compiled;
}

function sharedWasmMemory(bytes: number): WasmMemory {
  const pages = Math.max(1, Math.ceil(bytes / 65536));
  return new WA.Memory({ initial: pages, maximum: pages, shared: true });
}

function sharedFloats(n: number): SharedArrayBuffer {
  return new SharedArrayBuffer(Math.max(1, n) * 4);
}

/**
 * Data-parallel training steps on worker threads, exactly equivalent to
 * `LocalStepper` up to float summation order. Each worker runs the towers on a
 * contiguous shard of the batch, publishes its embeddings, and computes the
 * full batch's weighted InfoNCE with the other shards' embeddings as
 * constants, so the sum of the workers' gradients is the full-batch gradient.
 * With the kernel step the softmaxes are shared out too: each worker computes
 * the statistics of its own rows and columns, and after an exchange its share
 * of the loss and of the logit scale's gradient (the shares are summed in
 * worker order, so only that summation order differs from LocalStepper).
 * Each worker then sums all gradients over its own part of the flat parameter
 * vector (fixed order: deterministic) and applies AdamW there on the wasm
 * SIMD kernel. Parameters, moments and gradients live in one shared wasm
 * memory; the main thread never blocks: it posts a message per step and
 * awaits the workers' replies (a round trip costs ~50 µs here, measured).
 */
export class WorkerStepper implements StepRunner {
  private readonly workers: Worker[] = [];
  private readonly layout: FlatLayout;
  private readonly memory: StepperMemory;
  private readonly control: Int32Array;
  private readonly params: Float32Array;
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  private readonly timeoutMs: number;
  private readonly bytesPerImage: number;
  private batchMemory: BatchMemory | null = null;
  /** Samples in the last step (its image embeddings are the first rows of the shared batch). */
  private lastStepSize = 0;
  private batchViews: { pixels: Uint8Array; tokens: Int32Array; weights: Float32Array } | null = null;
  private t = 0;
  private nextId = 0;
  private readonly ready: Promise<void>;
  private pending: PendingStep | null = null;
  /** Set when a worker died, hung or never started: the stepper cannot go on. */
  private fatal: Error | null = null;
  private disposed = false;
  private running = 0;
  private readonly profileData = { steps: 0, stepMs: 0, inputMs: 0, workers: [] as PhaseTimes[] };

  constructor(
    private readonly model: ClipModel,
    readonly optimizerOptions: AdamWOptions,
    private readonly options: WorkerStepperOptions,
  ) {
    const count = options.workers;
    if (!Number.isInteger(count) || count < 1) throw new Error(`WorkerStepper needs a positive whole number of workers, got ${count}`);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.bytesPerImage = imageBytes(model.arch.imageShape);
    const list = model.params.list;
    this.layout = flatLayout(list.map((p) => ({ name: p.name, shape: p.variable.shape, decay: p.decay })));
    const total = this.layout.total;
    this.memory = {
      control: new SharedArrayBuffer(CTL_SIZE * 4),
      state: sharedWasmMemory(stateLayout(total, count).bytes),
    };
    this.control = new Int32Array(this.memory.control);
    const views = stateViews(this.memory.state, total, count);
    this.params = views.params;
    this.m = views.m;
    this.v = views.v;
    this.copyModelToShared();
    this.profileData.workers = Array.from({ length: count }, zeroPhases);

    const url = workerScriptUrl();
    let readyCount = 0;
    let settleReady: { resolve: () => void; reject: (e: Error) => void } | null = null;
    this.ready = new Promise<void>((resolve, reject) => {
      settleReady = { resolve, reject };
    });
    // Rejections are handed to whoever awaits `ready` (the next step); none must go unhandled meanwhile.
    this.ready.catch(() => {});
    const startTimer = setTimeout(() => this.fail(new Error(`worker threads did not start within ${this.timeoutMs} ms`)), this.timeoutMs);
    startTimer.unref();
    this.onReady = (e) => {
      if (!settleReady) return;
      if (e) settleReady.reject(e);
      else if (++readyCount < count) return;
      else settleReady.resolve();
      settleReady = null;
      clearTimeout(startTimer);
      if (!this.pending) this.setRef(false);
    };
    try {
      for (let index = 0; index < count; index++) this.workers.push(this.spawn(url, index));
    } catch (e) {
      this.disposed = true;
      for (const w of this.workers) void w.terminate();
      throw e;
    }
  }

  private readonly onReady: (error: Error | null) => void;

  private spawn(url: URL, index: number): Worker {
    const worker = new Worker(url);
    this.running++;
    worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    worker.on('error', (e: Error) => this.fail(new Error(`worker ${index} crashed: ${e.message}`)));
    worker.on('exit', (code) => {
      this.running--;
      if (!this.disposed) this.fail(new Error(`worker ${index} exited unexpectedly (exit code ${code})`));
    });
    const { model, options } = this;
    const init: InitMessage = {
      type: 'init',
      protocol: PROTOCOL_VERSION,
      index,
      workers: options.workers,
      backend: options.backend,
      arch: model.arch,
      tokenizer: model.tokenizer.toJSON(),
      normalization: model.normalization,
      seed: options.seed,
      slots: this.layout.slots,
      optimizer: this.optimizerOptions,
      memory: this.memory,
      kernel: options.kernel ?? 'auto',
    };
    worker.postMessage(init);
    return worker;
  }

  /** Worker threads still running (0 after `dispose`). */
  get runningWorkers(): number {
    return this.running;
  }

  /** Time spent so far, for benchmarks. */
  profile(): StepperProfile {
    const p = this.profileData;
    return { steps: p.steps, stepMs: p.stepMs, inputMs: p.inputMs, workers: p.workers.map((w) => ({ ...w })) };
  }

  resetProfile(): void {
    this.profileData.steps = this.profileData.stepMs = this.profileData.inputMs = 0;
    this.profileData.workers = this.workers.map(zeroPhases);
  }

  private setRef(on: boolean): void {
    // Referenced only while the main thread waits on them: an idle, forgotten stepper does not keep the process alive.
    for (const w of this.workers) {
      if (on) w.ref();
      else w.unref();
    }
  }

  /** A worker died, hung or failed to start: fail whatever waits and release every barrier. */
  private fail(error: Error): void {
    if (this.disposed) return;
    if (!this.fatal) this.fatal = error;
    raiseAbort(this.control);
    this.onReady(error);
    const pending = this.pending;
    if (pending) {
      this.pending = null;
      clearTimeout(pending.timer);
      this.setRef(false);
      pending.reject(error);
    }
  }

  private onMessage(msg: FromWorker): void {
    if (msg.type === 'ready') return this.onReady(null);
    if (msg.type === 'error' && msg.id === null) return this.onReady(new Error(`worker ${msg.index} failed to start: ${msg.message}`));
    const pending = this.pending;
    if (!pending || msg.id !== pending.id) return;
    if (msg.type === 'done') {
      pending.losses[msg.index] = msg.loss;
      const totals = this.profileData.workers[msg.index];
      for (const k of PHASES) totals[k] += msg.phases[k];
    } else if (msg.aborted) pending.aborted ??= { index: msg.index, message: msg.message };
    else pending.failure ??= { index: msg.index, message: msg.message };
    pending.waiting.delete(msg.index);
    if (pending.waiting.size > 0) return;
    // Every worker has left the step: the shared state is quiescent again.
    this.pending = null;
    clearTimeout(pending.timer);
    this.setRef(false);
    const failure = pending.failure ?? pending.aborted;
    if (failure) {
      clearAbort(this.control);
      pending.reject(new Error(`training step failed in worker ${failure.index}: ${failure.message}`));
      return;
    }
    this.t = pending.t;
    let loss = 0;
    for (const share of pending.losses) loss += share;
    pending.resolve(loss);
  }

  private usable(): void {
    if (this.disposed) throw new Error('WorkerStepper was disposed');
    if (this.fatal) throw this.fatal;
    if (this.pending) throw new Error('WorkerStepper: a step is still running (await each step before the next call)');
  }

  /** Shared batch memory for `size` samples; returns the new memory when it had to grow. */
  private ensureCapacity(size: number): BatchMemory | undefined {
    if (this.batchMemory && this.batchMemory.capacity >= size) return undefined;
    const { arch } = this.model;
    const capacity = Math.max(size, this.batchMemory ? this.batchMemory.capacity * 2 : 0);
    const memory: BatchMemory = {
      capacity,
      pixels: new SharedArrayBuffer(Math.max(1, capacity * this.bytesPerImage)),
      tokens: new SharedArrayBuffer(Math.max(1, capacity * arch.maxTokens) * 4),
      weights: sharedFloats(capacity),
      images: sharedFloats(capacity * arch.embedDim),
      texts: sharedFloats(capacity * arch.embedDim),
      stats: new SharedArrayBuffer(Math.max(1, 4 * capacity) * 8),
    };
    this.batchMemory = memory;
    this.batchViews = { pixels: new Uint8Array(memory.pixels), tokens: new Int32Array(memory.tokens), weights: new Float32Array(memory.weights) };
    return memory;
  }

  async step(raw: RawBatch, lr: number): Promise<number> {
    await this.ready;
    this.usable();
    const t0 = performance.now();
    const size = raw.indices.length;
    const { maxTokens } = this.model.arch;
    if (size < 1) throw new Error('WorkerStepper.step: empty batch');
    if (raw.pixels.length !== size * this.bytesPerImage) throw new Error(`WorkerStepper.step: ${raw.pixels.length} pixel bytes for ${size} images of ${this.bytesPerImage} bytes`);
    if (raw.tokens.length !== size * maxTokens) throw new Error(`WorkerStepper.step: ${raw.tokens.length} token ids for ${size} captions of ${maxTokens}`);
    if (raw.weights && raw.weights.length !== size) throw new Error(`WorkerStepper.step: ${raw.weights.length} weights for ${size} samples`);
    const grown = this.ensureCapacity(size);
    const views = this.batchViews!;
    views.pixels.set(raw.pixels);
    views.tokens.set(raw.tokens);
    if (raw.weights) views.weights.set(raw.weights);
    const id = ++this.nextId;
    // Publishes the writes above to the workers, which load this slot first.
    Atomics.store(this.control, CTL_SEQUENCE, id);
    this.profileData.inputMs += performance.now() - t0;
    const message: StepMessage = { type: 'step', id, lr, t: this.t + 1, size, weighted: raw.weights !== null, batch: grown };
    const loss = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`training step ${id} did not finish within ${this.timeoutMs} ms (a worker hung)`)), this.timeoutMs);
      timer.unref();
      this.pending = { id, t: this.t + 1, waiting: new Set(this.workers.map((_, i) => i)), losses: new Float64Array(this.workers.length), failure: null, aborted: null, resolve, reject, timer };
      this.setRef(true);
      for (const w of this.workers) w.postMessage(message);
    });
    this.profileData.steps++;
    this.profileData.stepMs += performance.now() - t0;
    this.lastStepSize = size;
    return loss;
  }

  stepImageEmbeddings(): Float32Array | null {
    // every worker wrote its shard's rows of the shared batch before reporting done
    if (!this.batchMemory || this.lastStepSize === 0) return null;
    return new Float32Array(this.batchMemory.images, 0, this.lastStepSize * this.model.arch.embedDim);
  }

  private copyModelToShared(): void {
    this.model.params.list.forEach((p, i) => {
      const slot = this.layout.slots[i];
      this.params.set(p.variable.dataSync() as Float32Array, slot.offset);
    });
  }

  /**
   * Copies the shared parameters into the main thread's model. Never throws:
   * the trainer calls it in a `finally`. After a worker died mid-step the
   * shared parameters may be half updated, so the model keeps its last synced
   * values.
   */
  async syncModel(): Promise<void> {
    if (this.disposed || this.pending || this.fatal) return;
    Atomics.load(this.control, CTL_FINISHED);
    const values = new Map<string, { shape: readonly number[]; data: Float32Array }>();
    // Copies (slice), not views: the cpu backend keeps a tensor's array as its storage.
    for (const s of this.layout.slots) values.set(s.name, { shape: s.shape, data: this.params.slice(s.offset, s.offset + s.size) });
    this.model.params.assign(values);
  }

  async reloadFromModel(): Promise<void> {
    this.usable();
    this.copyModelToShared();
  }

  async optimizerState(): Promise<OptimizerState> {
    this.usable();
    Atomics.load(this.control, CTL_FINISHED);
    const moments = new Map<string, { m: Float32Array; v: Float32Array; shape: number[] }>();
    for (const s of this.layout.slots) {
      moments.set(s.name, { m: this.m.slice(s.offset, s.offset + s.size), v: this.v.slice(s.offset, s.offset + s.size), shape: [...s.shape] });
    }
    return { step: this.t, moments };
  }

  async restoreOptimizer(state: { step: number; moments: Map<string, { m: Float32Array; v: Float32Array }> }): Promise<void> {
    this.usable();
    for (const s of this.layout.slots) {
      const saved = state.moments.get(s.name);
      if (!saved) throw new Error(`optimizer state has no moments for ${s.name}`);
      if (saved.m.length !== s.size || saved.v.length !== s.size) {
        throw new Error(`optimizer moments of ${s.name} have ${saved.m.length}/${saved.v.length} values, the parameter has ${s.size}`);
      }
    }
    for (const s of this.layout.slots) {
      const saved = state.moments.get(s.name)!;
      this.m.set(saved.m, s.offset);
      this.v.set(saved.v, s.offset);
    }
    this.t = state.step;
  }

  async resetOptimizer(): Promise<void> {
    this.usable();
    this.m.fill(0);
    this.v.fill(0);
    this.t = 0;
  }

  /** Terminates every worker thread (also after a failure), so the process can exit. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const pending = this.pending;
    if (pending) {
      this.pending = null;
      clearTimeout(pending.timer);
      pending.reject(new Error('WorkerStepper was disposed during a step'));
    }
    raiseAbort(this.control);
    this.onReady(new Error('WorkerStepper was disposed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
