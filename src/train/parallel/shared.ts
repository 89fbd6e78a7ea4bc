import type { KernelMode } from '../kernelStep.js';
import type { AdamWOptions } from '../optimizer.js';
import type { ClipArchitecture } from '../../model/towers.js';
import type { Normalization } from '../../model/clip.js';
import type { TokenizerJson } from '../../data/tokenizer.js';
import type { ParamSlot } from '../flatLayout.js';
import type { WasmMemory } from '../../backend/wasm/kernels.js';

/**
 * The contract between `WorkerStepper` (main thread) and `worker.ts`: shared
 * memory, messages and the workers' barrier. Bumped whenever either side
 * changes, so a stale compiled worker (dist/) is reported, not misread.
 */
export const PROTOCOL_VERSION = 3;

/** Int32 slots of the control block. */
export const CTL_COUNT = 0;
export const CTL_GENERATION = 1;
export const CTL_ABORT = 2;
/** Written by the main thread before each step is posted; read by workers (orders the input writes). */
export const CTL_SEQUENCE = 3;
/** Incremented by every worker when it finishes a step; read by the main thread before it reads shared state. */
export const CTL_FINISHED = 4;
export const CTL_SIZE = 16;

/** Memory that lives as long as the stepper. */
export interface StepperMemory {
  readonly control: SharedArrayBuffer;
  /**
   * A shared wasm memory (laid out by `stateLayout`) holding the parameters,
   * the AdamW moments and one gradient slot per worker, so that the workers
   * update their partitions with the SIMD `adamwsum` kernel in place.
   */
  readonly state: WasmMemory;
}

/** Byte offsets of the vectors in `StepperMemory.state`; every vector starts on a 64-byte line. */
export interface StateLayout {
  readonly params: number;
  readonly m: number;
  readonly v: number;
  readonly grads: number;
  /** Bytes from one worker's gradient slot to the next. */
  readonly gradStride: number;
  readonly bytes: number;
}

export function stateLayout(total: number, workers: number): StateLayout {
  const stride = Math.ceil(Math.max(1, total) / 16) * 64;
  return { params: 0, m: stride, v: 2 * stride, grads: 3 * stride, gradStride: stride, bytes: (3 + workers) * stride };
}

/** Float32 views of the state memory: params, m, v, and each worker's gradient slot. */
export function stateViews(memory: WasmMemory, total: number, workers: number): { params: Float32Array; m: Float32Array; v: Float32Array; grads: Float32Array[] } {
  const at = stateLayout(total, workers);
  const buffer = memory.buffer;
  return {
    params: new Float32Array(buffer, at.params, total),
    m: new Float32Array(buffer, at.m, total),
    v: new Float32Array(buffer, at.v, total),
    grads: Array.from({ length: workers }, (_, w) => new Float32Array(buffer, at.grads + w * at.gradStride, total)),
  };
}

/** Memory sized for a batch; replaced by a larger one when a larger batch arrives. */
export interface BatchMemory {
  readonly capacity: number;
  /** uint8 [capacity, H*W*C] pixels of the whole batch; worker w reads its rows. */
  readonly pixels: SharedArrayBuffer;
  /** int32 [capacity, maxTokens]. */
  readonly tokens: SharedArrayBuffer;
  /** float32 [capacity]: the whole batch's loss weights (read by every worker). */
  readonly weights: SharedArrayBuffer;
  /** float32 [capacity, D] each: the unnormalised embeddings every shard publishes. */
  readonly images: SharedArrayBuffer;
  readonly texts: SharedArrayBuffer;
  /** float64 [4, capacity]: the kernel step's softmax statistics, each shard writing its own rows' and columns'. */
  readonly stats: SharedArrayBuffer;
}

export interface InitMessage {
  readonly type: 'init';
  readonly protocol: number;
  readonly index: number;
  readonly workers: number;
  readonly backend: string;
  readonly arch: ClipArchitecture;
  readonly tokenizer: TokenizerJson;
  readonly normalization: Normalization;
  readonly seed: number;
  readonly slots: readonly ParamSlot[];
  readonly optimizer: AdamWOptions;
  readonly memory: StepperMemory;
  /** Step on the wasm kernels where they apply (the worker decides: its backend, the architecture). */
  readonly kernel: KernelMode;
}

export interface StepMessage {
  readonly type: 'step';
  readonly id: number;
  readonly lr: number;
  /** 1-based AdamW step count of this update. */
  readonly t: number;
  readonly size: number;
  readonly weighted: boolean;
  /** New batch memory (first step, or a larger batch). */
  readonly batch?: BatchMemory;
}

export type ToWorker = InitMessage | StepMessage;

/** Milliseconds a worker spent in each phase of its steps. */
export interface PhaseTimes {
  /** Shared parameters into the worker's tfjs variables. */
  copyIn: number;
  /** Both towers on the shard, embeddings published. */
  forward: number;
  /** Waiting for the other shards' embeddings. */
  waitEmbeddings: number;
  /** Kernel step: softmax statistics of this shard's rows and columns. */
  lossStats: number;
  /** Kernel step: waiting for the other shards' statistics. */
  waitStats: number;
  /** The loss (this shard's share of it with the kernel step) and the backward pass. */
  backward: number;
  /** This worker's gradients into its shared slot. */
  gradientsOut: number;
  /** Waiting for the other workers' gradients. */
  waitGradients: number;
  /** Summing gradients and AdamW over this worker's partition (wasm SIMD). */
  update: number;
}

export const PHASES: readonly (keyof PhaseTimes)[] = ['copyIn', 'forward', 'waitEmbeddings', 'lossStats', 'waitStats', 'backward', 'gradientsOut', 'waitGradients', 'update'];

export function zeroPhases(): PhaseTimes {
  return { copyIn: 0, forward: 0, waitEmbeddings: 0, lossStats: 0, waitStats: 0, backward: 0, gradientsOut: 0, waitGradients: 0, update: 0 };
}

export type FromWorker =
  | { readonly type: 'ready'; readonly index: number }
  /** `loss`: this worker's share; the batch loss is the sum of the shares in worker order. */
  | { readonly type: 'done'; readonly id: number; readonly index: number; readonly loss: number; readonly phases: PhaseTimes }
  | {
      readonly type: 'error';
      readonly id: number | null;
      readonly index: number;
      readonly message: string;
      /** This worker only stopped because another one failed. */
      readonly aborted: boolean;
    };

/** Thrown in a worker that stops because another thread raised the abort flag. */
export class AbortedError extends Error {
  constructor() {
    super('aborted: another worker failed');
  }
}

/**
 * Waits until `parties` threads have called it (generation-counting barrier
 * on Atomics). Only for worker threads: the main thread must never block.
 * Throws AbortedError as soon as the abort flag is raised, so a failing
 * worker cannot leave the others waiting forever.
 */
export function barrier(control: Int32Array, parties: number): void {
  if (Atomics.load(control, CTL_ABORT) !== 0) throw new AbortedError();
  const generation = Atomics.load(control, CTL_GENERATION);
  if (Atomics.add(control, CTL_COUNT, 1) === parties - 1) {
    Atomics.store(control, CTL_COUNT, 0);
    Atomics.add(control, CTL_GENERATION, 1);
    Atomics.notify(control, CTL_GENERATION);
    return;
  }
  while (Atomics.load(control, CTL_GENERATION) === generation) {
    if (Atomics.load(control, CTL_ABORT) !== 0) throw new AbortedError();
    // A bounded wait re-checks the abort flag even if a wake-up were lost.
    Atomics.wait(control, CTL_GENERATION, generation, 250);
  }
}

/** Raise the abort flag and wake every waiter (safe from any thread: never blocks). */
export function raiseAbort(control: Int32Array): void {
  Atomics.store(control, CTL_ABORT, 1);
  Atomics.notify(control, CTL_GENERATION);
}

/** After every worker has left the failed step: clear the flag and the arrival count. */
export function clearAbort(control: Int32Array): void {
  Atomics.store(control, CTL_COUNT, 0);
  Atomics.store(control, CTL_ABORT, 0);
}
