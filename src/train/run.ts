import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { selectBackend, type BackendInfo } from '../backend/select.js';
import { loadSplits } from '../data/index.js';
import { Tokenizer } from '../data/tokenizer.js';
import type { DatasetSplits } from '../data/types.js';
import type { AttackEvalSet } from '../eval/zeroShot.js';
import { ClipModel } from '../model/clip.js';
import type { ClipArchitecture } from '../model/towers.js';
import { writeJsonAtomic } from '../util/fs.js';
import { stripUrlCredentials } from '../util/redact.js';
import { silentReporter, type Reporter } from '../util/progress.js';
import { loadCheckpoint } from './checkpoint.js';
import type { PoisonTruth, TrainHook } from './hooks.js';
import type { PoisonSummary, RunSummary } from './summary.js';
import { Trainer, type TrainResult } from './trainer.js';
import { WorkerStepper } from './parallel/workerStepper.js';

/** What poisoning a run produces; `attacks/` provides it (see `preparePoison`). */
export interface PreparedPoison {
  readonly train: DatasetSplits['train'];
  readonly truth: PoisonTruth;
  readonly summary: PoisonSummary;
  readonly attackEval: AttackEvalSet | null;
}

/** Turns clean splits into poisoned ones; installed by the attacks module so the trainer does not depend on it. */
export type PoisonPreparer = (config: Config, splits: DatasetSplits, outDir: string) => Promise<PreparedPoison | null>;

export interface RunOptions {
  /** Extra hooks, run after the built-in ones in this order. */
  readonly hooks?: readonly TrainHook[];
  /** Hooks built from the config (filter, tracking), created once the data is known. */
  readonly hookFactories?: readonly ((setup: RunSetup) => TrainHook | null)[];
  readonly reporter?: Reporter;
  readonly signal?: AbortSignal;
  /** Continue the run in `config.out` from its last checkpoint. */
  readonly resume?: boolean;
  readonly poison?: PoisonPreparer;
  /** Start from these sample weights instead of all 1 (a filtered retrain). */
  readonly initialWeights?: Float32Array;
}

export interface RunSetup {
  readonly config: Config;
  readonly outDir: string;
  readonly backend: BackendInfo;
  readonly splits: DatasetSplits;
  readonly poison: PreparedPoison | null;
}

export function architectureFor(config: Config, splits: DatasetSplits, tokenizer: Tokenizer): ClipArchitecture {
  const m = config.model;
  return {
    imageShape: [...splits.train.imageShape],
    imageTower: m.imageTower,
    hidden: [...m.hidden],
    convChannels: [...m.convChannels],
    convDense: m.convDense,
    vocabSize: tokenizer.size,
    maxTokens: m.maxTokens,
    textWidth: m.textWidth,
    textHidden: [...m.textHidden],
    embedDim: m.embedDim,
    initTemperature: m.initTemperature,
    maxLogitScale: m.maxLogitScale,
  };
}

/** Vocabulary from the training captions, plus every prompt word and class name evaluation will use. */
export function buildTokenizer(config: Config, splits: DatasetSplits, train = splits.train): Tokenizer {
  const captions = function* () {
    for (let i = 0; i < train.size; i++) yield train.caption(i);
  };
  const classNames = splits.test.classNames ?? [];
  return Tokenizer.build(captions(), {
    maxTokens: config.model.maxTokens,
    minCount: config.model.minWordCount,
    always: [...splits.promptTemplates.flatMap((t) => classNames.map((c) => t.replaceAll('{}', c))), ...classNames],
  });
}

export function defaultOutDir(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return join('runs', `run-${stamp}`);
}

/**
 * The config as written to disk (config.json, summary.json): a `user:pass@`
 * in the tracking URI is removed. Credentials belong in the environment
 * (MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN), never in run records.
 */
export function configForDisk(config: Config): Config {
  const uri = config.tracking.uri;
  if (!uri) return config;
  const clean = stripUrlCredentials(uri);
  return clean === uri ? config : ({ ...config, tracking: { ...config.tracking, uri: clean } } as Config);
}

export function initialSummary(config: Config, backend: BackendInfo, splits: DatasetSplits, train: DatasetSplits['train'], poison: PoisonSummary | null): RunSummary {
  return {
    config: configForDisk(config),
    backend: backend.name,
    backendProvider: backend.provider,
    status: 'running',
    dataset: { name: splits.train.name, trainSize: train.size, testSize: splits.test.size, ...skippedOf(splits) },
    epochs: [],
    eval: { cleanAccuracy: null, attackSuccessRate: null },
    poison,
    filter: null,
    timings: { totalSeconds: 0, trainSeconds: 0, evalSeconds: 0, hookSeconds: 0 },
  };
}

/** Samples external data skipped as unreadable, per split (absent for built-in data). */
function skippedOf(splits: DatasetSplits): { skipped?: unknown } {
  const of = (d: unknown) => (d && typeof d === 'object' && 'skipped' in d ? (d as { skipped: unknown }).skipped : undefined);
  const train = of(splits.train);
  const test = of(splits.test);
  return train === undefined && test === undefined ? {} : { skipped: { train, test } };
}

/** Backend, data and poison: everything a run needs before the model. */
export async function setupRun(config: Config, options: Pick<RunOptions, 'poison' | 'reporter'> = {}): Promise<RunSetup> {
  const reporter = options.reporter ?? silentReporter;
  const outDir = resolve(config.out ?? defaultOutDir());
  mkdirSync(outDir, { recursive: true });
  const backend = await selectBackend(config.backend);
  reporter.info(`backend: ${backend.name} (${backend.provider})`);
  const splits = await loadSplits(config);
  reporter.info(`data: ${splits.train.name}, ${splits.train.size} train / ${splits.test.size} test samples`);
  let poison: PreparedPoison | null = null;
  if (config.poison) {
    if (!options.poison) throw new Error('config has a poison section but no poison preparer was given');
    poison = await options.poison(config, splits, outDir);
    if (poison) reporter.info(`poison: ${poison.summary.attack} -> "${poison.summary.target}", ${poison.summary.count} samples (${(poison.summary.rate * 100).toFixed(3)}%)`);
  }
  return { config, outDir, backend, splits, poison };
}

/** Train one model from a config: the programmatic equivalent of `clip-backdoor-filter train`. */
export async function runTraining(config: Config, options: RunOptions = {}): Promise<TrainResult & { setup: RunSetup }> {
  const reporter = options.reporter ?? silentReporter;
  const setup = await setupRun(config, options);
  const { outDir, backend, splits, poison } = setup;
  const train = poison?.train ?? splits.train;
  const resume = options.resume ? await loadCheckpoint(outDir) : null;
  if (resume) reporter.info(`resuming ${outDir} after epoch ${resume.state.epoch}`);
  let model: ClipModel;
  if (resume) model = resume.model;
  else {
    const tokenizer = buildTokenizer(config, splits, train);
    model = ClipModel.create(architectureFor(config, splits, tokenizer), tokenizer, splits.normalization, config.seed);
  }
  writeJsonAtomic(join(outDir, 'config.json'), configForDisk(config));
  reporter.info(`model: ${config.model.imageTower} image tower, ${model.params.count().toLocaleString('en-US')} parameters, vocabulary ${model.tokenizer.size}`);
  const hooks: TrainHook[] = [];
  for (const make of options.hookFactories ?? []) {
    const hook = make(setup);
    if (hook) hooks.push(hook);
  }
  hooks.push(...(options.hooks ?? []));
  const trainer = new Trainer({
    config,
    outDir,
    backend: backend.name,
    model,
    train,
    test: splits.test,
    promptTemplates: splits.promptTemplates,
    hooks,
    poison: poison?.truth ?? null,
    attackEval: poison?.attackEval ?? null,
    reporter,
    signal: options.signal,
    resume,
    summary: initialSummary(config, backend, splits, train, poison?.summary ?? null),
    initialWeights: options.initialWeights,
    stepper: config.train.workers > 1 ? (m, opts) => new WorkerStepper(m, opts, { workers: config.train.workers, backend: backend.name, seed: config.seed, kernel: config.train.kernel }) : undefined,
  });
  const poisonFile = join(outDir, 'poison.json');
  if (poison && existsSync(poisonFile)) trainer.recorder.addArtifact(poisonFile, 'poison.json');
  try {
    const result = await trainer.fit();
    return { ...result, setup };
  } finally {
    await trainer.dispose();
    model.dispose();
  }
}
