import type { KernelMode } from '../kernelStep.js';
import type { AdamWOptions } from '../optimizer.js';
import type { ClipArchitecture } from '../../model/towers.js';
import type { Normalization } from '../../model/clip.js';
import type { TokenizerJson } from '../../data/tokenizer.js';
import type { ParamSlot } from '../flatLayout.js';

/**
 * The contract between `WorkerStepper` (main thread) and `worker.ts`: shared
 * memory, messages and the workers' barrier. Bumped whenever either side
 * changes, so a stale compiled worker (dist/) is reported, not misread.
 */
export const PROTOCOL_VERSION = 2;

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
  /** Float32 [P]: the current parameters. */
  readonly params: SharedArrayBuffer;
  /** Float32 [P] each: AdamW first and second moments. */
  readonly m: SharedArrayBuffer;
  readonly v: SharedArrayBuffer;
  /** Float32 [W, P]: one gradient slot per worker. */
  readonly grads: SharedArrayBuffer;
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
  /** Full-batch loss and backward pass. */
  backward: number;
  /** This worker's gradients into its shared slot. */
  gradientsOut: number;
  /** Waiting for the other workers' gradients. */
  waitGradients: number;
  /** Summing gradients and AdamW over this worker's partition (plain JS). */
  update: number;
  /** Waiting for every partition to be updated. */
  waitUpdate: number;
}

export const PHASES: readonly (keyof PhaseTimes)[] = ['copyIn', 'forward', 'waitEmbeddings', 'backward', 'gradientsOut', 'waitGradients', 'update', 'waitUpdate'];

export function zeroPhases(): PhaseTimes {
  return { copyIn: 0, forward: 0, waitEmbeddings: 0, backward: 0, gradientsOut: 0, waitGradients: 0, update: 0, waitUpdate: 0 };
}

export type FromWorker =
  | { readonly type: 'ready'; readonly index: number }
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
