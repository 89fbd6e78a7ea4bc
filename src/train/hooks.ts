import type { Config } from '../config/schema.js';
import type { ClipDataset } from '../data/types.js';
import { HookError } from '../util/errors.js';
import type { RunRecorder } from './recorder.js';
import type { EpochRecord, RunStatus, RunSummary } from './summary.js';
import type { SampleWeightTable } from './weights.js';

/** What a hook may ask of the model: embeddings without gradients, in sample-index order. */
export interface EmbeddingModel {
  readonly embedDim: number;
  /** Projected, unnormalised image embeddings, row i = `indices[i]` (default: every sample), N x embedDim. */
  embedImages(dataset: ClipDataset, indices?: ArrayLike<number>): Promise<Float32Array>;
  /** Projected, unnormalised text embeddings of the given captions, N x embedDim. */
  embedTexts(captions: readonly string[]): Promise<Float32Array>;
}

/** Ground truth of a poisoned run, when the run poisoned its data (or was given a list). */
export interface PoisonTruth {
  readonly attack: string;
  readonly target: string;
  /** Sorted indices of poisoned training samples. */
  readonly indices: Int32Array;
  /** `mask[i] === 1` when sample i is poisoned. */
  readonly mask: Uint8Array;
}

export interface HookContext {
  readonly config: Config;
  readonly outDir: string;
  /** 1-based epoch being trained or just finished; 0 before the first. */
  readonly epoch: number;
  readonly totalEpochs: number;
  readonly backend: string;
  readonly model: EmbeddingModel;
  readonly trainSet: ClipDataset;
  readonly testSet: ClipDataset;
  /** The sample-weight table the next epoch's loader reads. */
  readonly weights: SampleWeightTable;
  readonly recorder: RunRecorder;
  readonly summary: RunSummary;
  readonly poison: PoisonTruth | null;
  /** Print a line unless the run is quiet (goes to stderr, above the progress bar). */
  log(message: string): void;
  /** Ask the trainer to stop after the current epoch. */
  requestStop(reason: string): void;
  /**
   * Ask the trainer to rewind after this epoch's hooks: the model goes back
   * to its initialisation (same seed), the optimizer and learning-rate
   * schedule restart, and a full schedule of epochs follows on the current
   * sample weights. `totalEpochs` grows accordingly.
   */
  requestRewind(reason: string): void;
  /** Epochs after which the model was rewound so far. */
  readonly rewinds: readonly number[];
}

export interface BatchInfo {
  /** 0-based batch number within the epoch. */
  readonly batch: number;
  readonly step: number;
  readonly size: number;
  readonly loss: number;
  /** Sample indices in the batch. */
  readonly indices: Int32Array;
  /**
   * The unnormalised image embeddings this step's forward pass computed
   * (the parameters before its update), row t = `indices[t]`, size x
   * embedDim — what a hook can have for free instead of embedding the
   * training set again. A view valid only during the call (copy what you
   * keep); null when the step does not keep them (steps on tfjs ops).
   */
  readonly imageEmbeddings: Float32Array | null;
}

export interface TrainEnd {
  readonly status: RunStatus;
  readonly error?: unknown;
}

/**
 * A training plugin. Every method is optional and may be async; the trainer
 * awaits each in registration order. Pass a class instance or a plain object.
 */
export interface TrainHook {
  readonly name?: string;
  onTrainBegin?(ctx: HookContext): void | Promise<void>;
  onEpochBegin?(ctx: HookContext): void | Promise<void>;
  onBatchEnd?(ctx: HookContext, batch: BatchInfo): void | Promise<void>;
  onEpochEnd?(ctx: HookContext, record: EpochRecord): void | Promise<void>;
  onTrainEnd?(ctx: HookContext, end: TrainEnd): void | Promise<void>;
  /** JSON-serialisable state saved in checkpoints (keyed by the hook's name)... */
  saveState?(): unknown;
  /** ...and handed back before onTrainBegin when a run resumes. */
  restoreState?(state: unknown): void;
}

type HookMethod = 'onTrainBegin' | 'onEpochBegin' | 'onBatchEnd' | 'onEpochEnd' | 'onTrainEnd';

export function hookName(hook: TrainHook, position: number): string {
  return hook.name ?? (hook.constructor && hook.constructor !== Object ? hook.constructor.name : `hook#${position}`);
}

/** Runs hooks in order and attributes any error to the hook and method that threw. */
export class HookList {
  constructor(readonly hooks: readonly TrainHook[]) {}

  get hasBatchHooks(): boolean {
    return this.hooks.some((h) => typeof h.onBatchEnd === 'function');
  }

  async run<M extends HookMethod>(method: M, ...args: Parameters<NonNullable<TrainHook[M]>>): Promise<void> {
    for (let i = 0; i < this.hooks.length; i++) {
      const hook = this.hooks[i];
      const fn = hook[method] as ((...a: unknown[]) => unknown) | undefined;
      if (typeof fn !== 'function') continue;
      try {
        await fn.apply(hook, args);
      } catch (e) {
        throw new HookError(hookName(hook, i), method, e);
      }
    }
  }
}
