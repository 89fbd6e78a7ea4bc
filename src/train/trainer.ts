import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { batchStream } from '../data/stream.js';
import type { ClipDataset } from '../data/types.js';
import { evaluateZeroShot, type AttackEvalSet, type ZeroShotResult } from '../eval/zeroShot.js';
import { ClipModel } from '../model/clip.js';
import { writeJsonAtomic } from '../util/fs.js';
import type { Reporter } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import { saveCheckpoint, type Checkpoint } from './checkpoint.js';
import { HookList, hookName, type HookContext, type PoisonTruth, type TrainHook } from './hooks.js';
import { learningRate, type AdamWOptions } from './optimizer.js';
import { LocalStepper, type StepRunner } from './stepper.js';
import { RunRecorder } from './recorder.js';
import type { EpochRecord, RunStatus, RunSummary } from './summary.js';
import { SampleWeightTable } from './weights.js';

export interface TrainerOptions {
  readonly config: Config;
  readonly outDir: string;
  readonly backend: string;
  readonly model: ClipModel;
  readonly train: ClipDataset;
  readonly test: ClipDataset;
  readonly promptTemplates: readonly string[];
  readonly hooks?: readonly TrainHook[];
  readonly poison?: PoisonTruth | null;
  /** Triggered test images for the attack success rate. */
  readonly attackEval?: AttackEvalSet | null;
  readonly reporter: Reporter;
  /** Aborting stops training at the next batch with status `killed` (SIGINT/SIGTERM). */
  readonly signal?: AbortSignal;
  /** Continue from this checkpoint instead of starting fresh. */
  readonly resume?: Checkpoint | null;
  /** Initial summary sections (dataset, poison) set up by the caller. */
  readonly summary: RunSummary;
  /** Write checkpoints at epoch ends (default true). */
  readonly checkpoints?: boolean;
  /** Sample weights to start from (e.g. a filtered set to retrain on); default all 1. */
  readonly initialWeights?: Float32Array;
  /** How steps run (default: in this thread). */
  readonly stepper?: (model: ClipModel, options: AdamWOptions) => StepRunner;
}

export interface TrainResult {
  readonly summary: RunSummary;
  readonly status: RunStatus;
}

/**
 * The training loop: epochs of shuffled batches from the active samples
 * (weight > 0), AdamW with warm-up + cosine schedule, zero-shot evaluation,
 * checkpoints, and hooks around all of it.
 */
export class Trainer {
  readonly weights: SampleWeightTable;
  readonly recorder = new RunRecorder();
  readonly stepper: StepRunner;
  private readonly hooks: HookList;
  private readonly tokens: Int32Array;
  private readonly rng: Rng;
  private epoch = 0;
  private step = 0;
  private stopReason: string | null = null;
  /** Epochs this run will train in all: the schedule, plus the epochs before each rewind. */
  private totalEpochs: number;
  /** Epochs after which the model was rewound to its initialisation. */
  private rewinds: number[] = [];
  private rewindReason: string | null = null;
  /** Samples the learning-rate schedule is sized for: those active when it (re)started. */
  private scheduleSamples: number;
  private readonly summary: RunSummary;
  private pendingRestore: { step: number; moments: Map<string, { m: Float32Array; v: Float32Array }> } | null = null;

  constructor(private readonly opts: TrainerOptions) {
    const { config, model, train, resume } = opts;
    this.summary = resume ? resume.state.summary : opts.summary;
    this.summary.status = 'running';
    this.weights = new SampleWeightTable(train.size, resume?.sampleWeights ?? opts.initialWeights);
    const optimizerOptions = { beta1: config.train.beta1, beta2: config.train.beta2, eps: config.train.eps, weightDecay: config.train.weightDecay };
    this.stepper = opts.stepper ? opts.stepper(model, optimizerOptions) : new LocalStepper(model, optimizerOptions, { kernel: config.train.kernel });
    this.rng = resume ? new Rng(resume.state.rng) : Rng.derive(config.seed, 'train/shuffle');
    this.totalEpochs = resume?.state.totalEpochs ?? config.train.epochs;
    this.rewinds = [...(resume?.state.rewinds ?? [])];
    // A checkpoint from before the field existed sized its schedule for the whole set.
    this.scheduleSamples = resume ? (resume.state.scheduleSamples ?? train.size) : this.weights.activeCount();
    if (resume) {
      this.pendingRestore = resume.optimizer;
      this.epoch = resume.state.epoch;
      this.step = resume.state.step;
      this.recorder.history.push(...resume.state.history);
      this.summary.resumedFrom = [...(this.summary.resumedFrom ?? []), resume.state.epoch];
    }
    const hooks = opts.hooks ?? [];
    if (resume) {
      hooks.forEach((h, i) => {
        const saved = resume.state.hooks[hookName(h, i)];
        if (saved !== undefined && h.restoreState) h.restoreState(saved);
      });
    }
    this.hooks = new HookList(hooks);
    const captions = Array.from({ length: train.size }, (_, i) => train.caption(i));
    this.tokens = model.tokenizer.encode(captions);
    model.embedBatchSize = config.train.embedBatchSize;
  }

  private context(): HookContext {
    const { opts } = this;
    return {
      config: opts.config,
      outDir: opts.outDir,
      epoch: this.epoch,
      totalEpochs: this.totalEpochs,
      backend: opts.backend,
      model: opts.model,
      trainSet: opts.train,
      testSet: opts.test,
      weights: this.weights,
      recorder: this.recorder,
      summary: this.summary,
      poison: opts.poison ?? null,
      log: (m) => opts.reporter.info(m),
      requestStop: (reason) => {
        this.stopReason = reason;
      },
      requestRewind: (reason) => {
        this.rewindReason = reason;
      },
      rewinds: this.rewinds,
    };
  }

  private totalSteps(): number {
    const { batchSize, epochs } = this.opts.config.train;
    // Sized for the samples active when the schedule started — all of them,
    // the kept set of a retrain, or the kept set at a rewind — so that a
    // schedule always anneals to its end. Samples dropped later (a filter
    // without a rewind) only shorten its tail. (Sized for the whole set, a
    // rewound run on 85% of the data stopped at 4.8% of the peak rate with
    // 15% fewer steps.)
    return Math.max(1, Math.ceil(this.scheduleSamples / batchSize) * epochs);
  }

  /**
   * Samples came back since the schedule started (a filter's re-admission):
   * stretch the schedule so that the remaining epochs, at the new epoch
   * length, still end where it anneals to 0 — otherwise their tail would
   * train at a learning rate of 0. The progress so far shrinks a little, so
   * the rate steps up by as much; it never shrinks the schedule (samples
   * dropped later only cut its tail, as before).
   */
  private stretchScheduleIfGrown(): void {
    const active = this.weights.activeCount();
    if (active <= this.scheduleSamples) return;
    const { batchSize, epochs } = this.opts.config.train;
    const remainingEpochs = this.totalEpochs - this.epoch + 1;
    const neededSteps = this.step + remainingEpochs * Math.ceil(active / batchSize);
    this.scheduleSamples = Math.max(this.scheduleSamples, batchSize * Math.ceil(neededSteps / epochs));
  }

  private async trainEpoch(): Promise<{ loss: number; samples: number; seconds: number; killed: boolean }> {
    const { config, model, train, reporter, signal } = this.opts;
    this.stretchScheduleIfGrown();
    const order = this.rng.shuffle(this.weights.activeIndices());
    const stream = batchStream(train, {
      order,
      batchSize: config.train.batchSize,
      tokens: this.tokens,
      maxTokens: model.arch.maxTokens,
      weights: this.weights.isUniform() ? null : this.weights.values,
      prefetch: config.data.prefetch,
    });
    const totalSteps = this.totalSteps();
    const start = performance.now();
    let lossSum = 0;
    let samples = 0;
    let batchNo = 0;
    reporter.startProgress(`epoch ${this.epoch}/${this.totalEpochs}`, order.length);
    const iterator = await stream.iterator();
    try {
      for (;;) {
        if (signal?.aborted) return { loss: samples ? lossSum / samples : NaN, samples, seconds: (performance.now() - start) / 1000, killed: true };
        const next = await iterator.next();
        if (next.done) break;
        const raw = next.value;
        const size = raw.indices.length;
        const lr = learningRate(this.step, totalSteps, config.train.lr, config.train.warmupSteps);
        const loss = await this.stepper.step(raw, lr);
        this.step++;
        lossSum += loss * size;
        samples += size;
        const elapsed = (performance.now() - start) / 1000;
        reporter.tick(size, { loss, rate: samples / Math.max(elapsed, 1e-9) });
        if (this.hooks.hasBatchHooks) await this.hooks.run('onBatchEnd', this.context(), { batch: batchNo, step: this.step, size, loss, indices: raw.indices, imageEmbeddings: this.stepper.stepImageEmbeddings() });
        batchNo++;
      }
    } finally {
      reporter.stopProgress();
      await this.stepper.syncModel();
    }
    return { loss: samples ? lossSum / samples : NaN, samples, seconds: (performance.now() - start) / 1000, killed: false };
  }

  private async evaluate(): Promise<ZeroShotResult> {
    return evaluateZeroShot(this.opts.model, this.opts.test, this.opts.promptTemplates, this.opts.attackEval);
  }

  private writeSummary(): void {
    writeJsonAtomic(join(this.opts.outDir, 'summary.json'), this.summary);
  }

  private hookStates(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    (this.opts.hooks ?? []).forEach((h, i) => {
      if (h.saveState) out[hookName(h, i)] = h.saveState();
    });
    return out;
  }

  async fit(): Promise<TrainResult> {
    const { config, reporter, model } = this.opts;
    const t0 = performance.now();
    const timings = this.summary.timings;
    const priorSeconds = timings.totalSeconds;
    let status: RunStatus = 'finished';
    let failure: unknown;
    let hookSeconds = timings.hookSeconds;
    const timedHooks = async (fn: () => Promise<void>) => {
      const h0 = performance.now();
      await fn();
      hookSeconds += (performance.now() - h0) / 1000;
    };
    try {
      if (this.pendingRestore) {
        await this.stepper.restoreOptimizer(this.pendingRestore);
        this.pendingRestore = null;
      }
      await timedHooks(() => this.hooks.run('onTrainBegin', this.context()));
      while (this.epoch < this.totalEpochs && !this.stopReason) {
        this.epoch++;
        await timedHooks(() => this.hooks.run('onEpochBegin', this.context()));
        const result = await this.trainEpoch();
        timings.trainSeconds += result.seconds;
        if (result.killed) {
          // The interrupted epoch is not recorded: resuming repeats it.
          this.epoch--;
          status = 'killed';
          break;
        }
        const evalDue = this.epoch % config.train.evalEvery === 0 || this.epoch === this.totalEpochs;
        const e0 = performance.now();
        const ev = evalDue ? await this.evaluate() : null;
        timings.evalSeconds += (performance.now() - e0) / 1000;
        const record: EpochRecord = {
          epoch: this.epoch,
          loss: result.loss,
          temperature: model.temperature(),
          samplesPerSecond: result.samples / Math.max(result.seconds, 1e-9),
          activeSamples: result.samples,
          seconds: result.seconds,
          cleanAccuracy: ev ? ev.cleanAccuracy : null,
          attackSuccessRate: ev ? ev.attackSuccessRate : null,
        };
        this.summary.epochs.push(record);
        if (ev) {
          this.summary.eval = { cleanAccuracy: ev.cleanAccuracy, attackSuccessRate: ev.attackSuccessRate, accuracyByClass: ev.accuracyByClass };
          if (ev.attackSuccessByTrigger && Object.keys(ev.attackSuccessByTrigger).length > 1) {
            this.summary.eval.attackSuccessByTrigger = ev.attackSuccessByTrigger;
            const perTrigger: Record<string, number> = {};
            for (const [name, v] of Object.entries(ev.attackSuccessByTrigger)) perTrigger[`eval/attack_success_rate/${name}`] = v;
            this.recorder.log(perTrigger, this.epoch);
          }
        }
        this.recorder.log(
          {
            'train/loss': record.loss,
            'train/temperature': record.temperature,
            'train/samples_per_second': record.samplesPerSecond,
            'train/active_samples': record.activeSamples,
            'train/learning_rate': learningRate(Math.max(0, this.step - 1), this.totalSteps(), config.train.lr, config.train.warmupSteps),
            'eval/clean_accuracy': record.cleanAccuracy,
            'eval/attack_success_rate': record.attackSuccessRate,
          },
          this.epoch,
        );
        reporter.info(
          `epoch ${this.epoch}/${this.totalEpochs}  loss ${record.loss.toFixed(4)}  T ${record.temperature.toFixed(4)}  ` +
            `${Math.round(record.samplesPerSecond)} samples/s  active ${record.activeSamples}` +
            (ev ? `  clean acc ${ev.cleanAccuracy.toFixed(4)}` + (ev.attackSuccessRate !== null ? `  ASR ${ev.attackSuccessRate.toFixed(4)}` : '') : ''),
        );
        await timedHooks(() => this.hooks.run('onEpochEnd', this.context(), record));
        if (this.rewindReason) await this.rewind();
        timings.hookSeconds = hookSeconds;
        timings.totalSeconds = priorSeconds + (performance.now() - t0) / 1000;
        if (this.opts.checkpoints !== false) {
          await saveCheckpoint(this.opts.outDir, {
            model,
            optimizer: { state: await this.stepper.optimizerState(), options: this.stepper.optimizerOptions },
            weights: this.weights,
            state: {
              epoch: this.epoch,
              step: this.step,
              rng: this.rng.state(),
              summary: this.summary,
              history: this.recorder.history,
              hooks: this.hookStates(),
              totalEpochs: this.totalEpochs,
              rewinds: this.rewinds,
              scheduleSamples: this.scheduleSamples,
              savedAt: new Date().toISOString(),
            },
          });
        }
        this.writeSummary();
        if (this.opts.signal?.aborted) {
          status = 'killed';
          break;
        }
      }
      if (this.stopReason) reporter.info(`training stopped early: ${this.stopReason}`);
    } catch (e) {
      status = 'failed';
      failure = e;
    }
    timings.hookSeconds = hookSeconds;
    timings.totalSeconds = priorSeconds + (performance.now() - t0) / 1000;
    this.summary.status = status;
    this.writeSummary();
    try {
      await this.hooks.run('onTrainEnd', this.context(), { status, error: failure });
    } catch (e) {
      if (!failure) {
        failure = e;
        status = this.summary.status = 'failed';
      } else reporter.warn((e as Error).message);
    }
    this.writeSummary();
    if (failure) throw failure;
    return { summary: this.summary, status };
  }

  /**
   * Back to the initial weights (regenerated from the seed), fresh optimizer
   * moments and a restarted learning-rate schedule, followed by a full
   * schedule of epochs. Sample weights are kept: this is how a filter that
   * found poisons after the backdoor began to implant trains a clean model
   * on what it kept, at the cost of the epochs already spent.
   */
  private async rewind(): Promise<void> {
    const { model, reporter, config } = this.opts;
    const fresh = ClipModel.create(model.arch, model.tokenizer, model.normalization, config.seed);
    const values = new Map<string, { shape: readonly number[]; data: Float32Array }>();
    for (const p of fresh.params.list) values.set(p.name, { shape: p.variable.shape, data: p.variable.dataSync() as Float32Array });
    model.params.assign(values);
    fresh.dispose();
    await this.stepper.reloadFromModel();
    await this.stepper.resetOptimizer();
    this.step = 0;
    this.scheduleSamples = this.weights.activeCount();
    this.rewinds.push(this.epoch);
    this.totalEpochs = this.epoch + config.train.epochs;
    this.summary.rewinds = [...this.rewinds];
    reporter.info(`rewound the model to its initialisation after epoch ${this.epoch} (${this.rewindReason}); training ${config.train.epochs} more epochs on ${this.weights.activeCount()} samples`);
    this.rewindReason = null;
  }

  async dispose(): Promise<void> {
    await this.stepper.dispose();
  }
}
