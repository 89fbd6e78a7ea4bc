import { join } from 'node:path';
import { preparePoison } from './attacks/prepare.js';
import { resolveConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { backdoorFilter, type FilterSummary } from './filter/hook.js';
import { existsSync } from 'node:fs';
import { checkpointPath, loadCheckpoint } from './train/checkpoint.js';
import { mlflowTracking } from './tracking/index.js';
import type { TrainHook } from './train/hooks.js';
import { defaultOutDir, runTraining, type RunOptions, type RunSetup } from './train/run.js';
import type { TrainResult } from './train/trainer.js';

/**
 * The application layer: a run as the CLI makes it, from the config alone:
 * poisoning when `poison` is set, the backdoor filter when `filter.enabled`,
 * MLflow tracking when `tracking.enabled`. Library users who want exactly the
 * CLI's behaviour call `runPipeline`; those who compose their own hooks call
 * `runTraining`.
 */
export type HookFactory = (setup: RunSetup) => TrainHook | null;

export interface PipelineOptions extends Omit<RunOptions, 'poison' | 'hookFactories'> {
  /** Extra hook factories after the standard ones. */
  readonly hookFactories?: readonly HookFactory[];
}

/** Hooks every pipeline run gets, in order: the filter first, so that trackers see its metrics of the same epoch. */
export function standardHookFactories(config: Config, extra: readonly HookFactory[] = []): HookFactory[] {
  const factories: HookFactory[] = [];
  if (config.filter.enabled && config.filter.mode === 'during') factories.push(() => backdoorFilter());
  factories.push(...extra);
  // Last: MLflow then sees everything the other hooks log and register, even in their onTrainEnd.
  if (config.tracking.enabled) factories.push(() => mlflowTracking());
  return factories;
}

/** Train as the config says; with `filter.mode: retrain`, train, score once, and retrain from scratch on the kept samples. */
export async function runPipeline(config: Config, options: PipelineOptions = {}): Promise<TrainResult & { setup: RunSetup }> {
  if (config.filter.enabled && config.filter.mode === 'retrain') return runRetrain(config, options);
  return runTraining(config, { ...options, poison: preparePoison, hookFactories: standardHookFactories(config, options.hookFactories) });
}

/**
 * The paper's pipeline: phase 1 trains the (possibly poisoned) model to the
 * end in `<out>/phase1` and the filter scores once with it; phase 2 trains a
 * fresh model from the same seed on the samples the filter kept, in `<out>`.
 * Phase 2's summary carries the filter section and phase 1's results.
 */
async function runRetrain(config: Config, options: PipelineOptions): Promise<TrainResult & { setup: RunSetup }> {
  const reporter = options.reporter;
  const outDir = config.out ?? defaultOutDir();
  const phase2Config = config.out ? config : resolveConfig({ ...(config as object), out: outDir } as never);
  const phase1Config = resolveConfig({ ...(config as object), out: join(outDir, 'phase1'), tracking: { ...config.tracking, enabled: false } } as never);
  reporter?.info('retrain mode, phase 1: training on the unfiltered data, then scoring once');
  // --resume continues whichever phase was interrupted (a finished phase 1 is not trained again).
  const hasCheckpoint = (dir: string) => existsSync(join(checkpointPath(dir), 'state.json'));
  const phase1 = await runTraining(phase1Config, {
    ...options,
    resume: Boolean(options.resume) && hasCheckpoint(phase1Config.out!),
    poison: preparePoison,
    hookFactories: [() => backdoorFilter(), ...(options.hookFactories ?? [])],
  });
  if (phase1.status !== 'finished') return phase1;
  const checkpoint = await loadCheckpoint(phase1.setup.outDir);
  checkpoint.model.dispose();
  const filterSummary = phase1.summary.filter as FilterSummary;
  const carryOver: TrainHook = {
    name: 'retrain-filter-record',
    onTrainBegin(ctx) {
      ctx.summary.filter = {
        ...filterSummary,
        phase1: { outDir: phase1.setup.outDir, cleanAccuracy: phase1.summary.eval.cleanAccuracy, attackSuccessRate: phase1.summary.eval.attackSuccessRate },
      };
      const round = filterSummary.rounds[filterSummary.rounds.length - 1];
      if (round) {
        ctx.recorder.log({ 'filter/auroc': round.auroc, 'filter/auprc': round.auprc, 'filter/dropped': round.dropped, 'filter/poison_recall': round.poisonRecall, 'filter/seconds': round.seconds }, 0);
        if (round.scoresFile) ctx.recorder.addArtifact(round.scoresFile, 'scores/phase1-' + round.scoresFile.split('/').pop());
      }
    },
  };
  reporter?.info(`retrain mode, phase 2: training from scratch on ${checkpoint.sampleWeights.filter((w) => w > 0).length} kept samples`);
  return runTraining(phase2Config, {
    ...options,
    resume: Boolean(options.resume) && hasCheckpoint(outDir),
    poison: preparePoison,
    initialWeights: checkpoint.sampleWeights,
    hookFactories: [() => carryOver, ...standardHookFactories({ ...config, filter: { ...config.filter, enabled: false } } as Config, options.hookFactories)],
  });
}
