import type { Config } from '../config/schema.js';

/** One epoch's line in `summary.json`. */
export interface EpochRecord {
  epoch: number;
  loss: number;
  /** Softmax temperature 1 / logit scale at the end of the epoch. */
  temperature: number;
  samplesPerSecond: number;
  /** Samples the epoch's loader served (weight > 0). */
  activeSamples: number;
  seconds: number;
  cleanAccuracy: number | null;
  attackSuccessRate: number | null;
}

export interface PoisonSummary {
  attack: string;
  target: string;
  rate: number;
  count: number;
}

export type RunStatus = 'running' | 'finished' | 'failed' | 'killed';

/**
 * The output contract of a run (`<out>/summary.json`). Later features add
 * sections; names here are kept stable for users' scripts.
 */
export interface RunSummary {
  config: Config;
  backend: string;
  status: RunStatus;
  dataset: { name: string; trainSize: number; testSize: number; skipped?: unknown };
  epochs: EpochRecord[];
  eval: { cleanAccuracy: number | null; attackSuccessRate: number | null; accuracyByClass?: Record<string, number>; attackSuccessByTrigger?: Record<string, number> };
  poison: PoisonSummary | null;
  /** Filled by the backdoor filter hook (see `filter/`). */
  filter: Record<string, unknown> | null;
  timings: { totalSeconds: number; trainSeconds: number; evalSeconds: number; hookSeconds: number };
  /** Epochs after which a hook rewound the model to its initialisation. */
  rewinds?: number[];
  /** Set when a run was resumed from a checkpoint: the epochs it continued after. */
  resumedFrom?: number[];
  [section: string]: unknown;
}
