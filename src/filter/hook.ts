import { join } from 'node:path';
import type { FilterConfig } from '../config/schema.js';
import { countDuplicateGroups, createDetector, detectorOptionsFromConfig } from '../detectors/index.js';
import { ParallelEmbedder } from '../embed/parallel.js';
import { ClipModel } from '../model/clip.js';
import { gatherRows } from '../neighbors/reference.js';
import { auprc, auroc, fprAtTpr } from '../metrics/detection.js';
import type { BatchInfo, HookContext, TrainHook } from '../train/hooks.js';
import type { EpochRecord } from '../train/summary.js';
import { writeFileAtomic } from '../util/fs.js';
import { readNpyMatrix, writeNpy } from '../util/npy.js';
import { UserError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { decideWeights } from './policy.js';
import { displacementDetector, scoreViews } from './views.js';
import { probeDrops } from './probe.js';
import { rowCosines } from '../util/rows.js';
import { dominates, inConcept, seedConcept, type SeedConcept } from './concept.js';
import { decideReadmission, HELD, NOT_HELD, quantile, sampleRows, VETOED } from './readmit.js';

/** No agreement recorded yet (agreements are cosines, in [-1, 1]). */
const BELIEF_NONE = -2;

/** One scoring round, as recorded in `summary.json` under `filter.rounds`. */
export interface FilterRound {
  /** Epoch after which the round scored (its decisions apply from the next epoch). */
  epoch: number;
  /** An observation round (`filter.observeEpochs`): it recorded its confident detections for the re-admission's concept and dropped nothing. */
  observeOnly: boolean;
  seconds: number;
  /** Samples scored this round (the active ones, or all with `reconsider`). */
  scored: number;
  /** Rows of the embedded set taken from the epoch's training steps (`filter.embedFrom: training`); the encoder embedded the rest. */
  capturedRows: number;
  /** Samples the detector's decision set to weight 0 this round that were not already. */
  dropped: number;
  /**
   * Confident detections so far (robust z >= `filter.probe.seedZ` in any dropping round): what the trigger
   * probe learns from. In an observation round, its own and earlier observations' confident detections.
   */
  probeSeeds: number;
  /** Samples the trigger probe set to weight 0 this round (`filter.probe`; 0 when off or short of seeds). */
  probeDropped: number;
  /**
   * The confident detections the probe fitted on: the seeds, or, when one caption group dominates the seeds
   * and the observations' detections (`filter.probe.concept`), that group's. 0 when the probe did not run.
   */
  probePositives: number;
  /**
   * The caption group of the seeds and observations that `filter.probe.concept` tested: its size, the next
   * group's and whether it dominated (`readmit.conceptSimilarity`, `readmit.conceptDominance`). Null when off
   * or when the probe did not run.
   */
  probeConcept: ProbeConcept | null;
  /** Poisons among them (null without a poison list). */
  probeDroppedPoisons: number | null;
  /** All samples at weight 0 after the round. */
  droppedTotal: number;
  /** Mean weight over the whole training set after the round. */
  meanWeight: number;
  rule: string;
  /** Score at the cut (drop) or at weight 0.5 (downweight). */
  cut: number | null;
  capped: boolean;
  /** Detection quality of this round's scores against the ground truth (null without a poison list). */
  auroc: number | null;
  /**
   * With the displacement view (`filter.displacement`): the AUROC of each view's own scores — the
   * embeddings (`position`) and their movement since the anchor epoch (`displacement`) — whose larger
   * robust z is the round's score. Null when the view did not run or without a poison list.
   */
  viewAuroc: { position: number | null; displacement: number | null } | null;
  /**
   * AUROC of the trigger probe's decision value over every training sample
   * against the ground truth: the round's ranking once the probe has
   * generalised from the detector's confident detections (it never sees the
   * ground truth). Null without a poison list or when the probe did not run.
   */
  probeAuroc: number | null;
  auprc: number | null;
  fprAt95Tpr: number | null;
  /** Share of all poisons at weight 0 after the round (downweight: 1 - their mean weight). */
  poisonRecall: number | null;
  /** Poisons still training after the round (weight > 0). */
  poisonsRemaining: number | null;
  /** Clean samples at weight 0 after the round. */
  cleanDropped: number | null;
  /** Rows in groups of exact-duplicate embeddings among the scored (mass duplicates look dense to density ratios). */
  duplicateRows: number;
  scoresFile: string | null;
}

/** The re-admission after the rewind (`filter.readmit`), as recorded in `summary.json` under `filter.readmission`. */
export interface ReadmissionRecord {
  /** Epoch after which the dropped samples were judged (their return applies from the next epoch). */
  epoch: number;
  seconds: number;
  /** Dropped samples judged. */
  candidates: number;
  /** Candidates the trigger probe holds (its drops, and drops a probe fit ranked like its seeds). */
  heldByProbe: number;
  /** Of them, those whose caption names the seeds' concept (`readmit.conceptSimilarity`; 0 when no group dominates; null when off). */
  heldInConcept: number | null;
  /** Of those, the ones the rounds' models believed more than the judge (`readmit.beliefQuantile`; null when off): judged at `heldQuantile`. */
  heldBelieved: number | null;
  /** The kept samples' `beliefQuantile` of belief minus judge agreement (null when off). */
  beliefThreshold: number | null;
  /**
   * Of the holds left, those the probe ranked like its seeds (`readmit.probeVetoQuantile`; of all the probe's holds at
   * `readmit.undominatedVetoQuantile` when no caption group dominates; null when off): never re-admitted.
   */
  heldVetoed: number | null;
  /** The `probeVetoQuantile` (or `undominatedVetoQuantile`) of the probe's highest decision value over the rounds, over the samples it fitted on (null when off). */
  vetoThreshold: number | null;
  /**
   * The seeds' largest caption group: its anchor sample and size, the size of the next group, and whether it
   * dominates (`readmit.conceptDominance`; when not, nothing is held). Null: no seeds among the candidates, or the rule off.
   */
  concept: { anchor: number; seeds: number; caption: string; runnerUp: number; dominant: boolean } | null;
  readmitted: number;
  /** Re-admitted samples the probe held. */
  readmittedHeld: number;
  /** Poisons among the re-admitted (null without a poison list). */
  readmittedPoisons: number | null;
  /** The kept samples' `quantile` of cos(image, own caption): what a candidate had to exceed. */
  threshold: number | null;
  /** The kept samples' `heldQuantile` of it: what a held candidate had to exceed (null: never). */
  heldThreshold: number | null;
  /** After the re-admission. */
  poisonsRemaining: number | null;
  cleanDropped: number | null;
  /** Why nothing was judged (every drop stays dropped), or null when the judgement ran. */
  skipped: string | null;
}

export interface FilterSummary {
  detector: string;
  k: number;
  mode: FilterConfig['mode'];
  action: FilterConfig['action'];
  embedding: FilterConfig['embedding'];
  embedFrom: FilterConfig['embedFrom'];
  distance: FilterConfig['distance'];
  reference: FilterConfig['reference'];
  referenceSize: number | null;
  neighbors: FilterConfig['neighbors'] | null;
  probe: FilterConfig['probe'] | null;
  displacement: FilterConfig['displacement'] | null;
  rounds: FilterRound[];
  readmission: ReadmissionRecord | null;
  [key: string]: unknown;
}

export type FilterOptions = Partial<Omit<FilterConfig, 'hnsw' | 'ivf' | 'probe' | 'readmit' | 'displacement'>> & {
  hnsw?: Partial<FilterConfig['hnsw']>;
  displacement?: Partial<FilterConfig['displacement']>;
  ivf?: Partial<FilterConfig['ivf']>;
  probe?: Partial<FilterConfig['probe']>;
  readmit?: Partial<FilterConfig['readmit']>;
};

/** Epochs after which the filter scores: warm-up, then every `every` epochs, never after the last one (nothing would change). */
export function isRoundEpoch(epoch: number, totalEpochs: number, cfg: Pick<FilterConfig, 'warmupEpochs' | 'every'>): boolean {
  if (epoch >= totalEpochs) return false;
  if (epoch === cfg.warmupEpochs) return true;
  return cfg.every > 0 && epoch > cfg.warmupEpochs && (epoch - cfg.warmupEpochs) % cfg.every === 0;
}

function mergeOptions(base: FilterConfig, options: FilterOptions): FilterConfig {
  return {
    ...base,
    ...options,
    hnsw: { ...base.hnsw, ...options.hnsw },
    ivf: { ...base.ivf, ...options.ivf },
    probe: { ...base.probe, ...options.probe },
    readmit: { ...base.readmit, ...options.readmit },
    displacement: { ...base.displacement, ...options.displacement },
  } as FilterConfig;
}

/** The trigger probe runs with the drop action only: it decides drops, not weights. */
const probing = (cfg: FilterConfig) => cfg.probe.enabled && cfg.action === 'drop';

/**
 * Re-admission needs a model that never trained on the dropped samples (the
 * rewound one), dropped (not down-weighted) samples to judge, and the trigger
 * probe: without its holds every drop faces the lenient bar, which the poisons
 * that look like the target pass (28 back on Fashion-MNIST blended 1%).
 */
const readmitting = (cfg: FilterConfig) => cfg.readmit.enabled && cfg.mode === 'during' && cfg.rewindAfter > 0 && probing(cfg);

/** The displacement view needs image embeddings only: a detector that reads captions scores pairs, not movement. */
const displacing = (cfg: FilterConfig) => cfg.displacement.enabled && cfg.detector !== 'clipscore';

export interface ProbeConcept {
  /** The caption of the group's anchor. */
  caption: string;
  seeds: number;
  runnerUp: number;
  dominant: boolean;
}

const fmt = (v: number | null, digits = 4) => (v === null ? 'n/a' : v.toFixed(digits));

/** What the round's probe fitted on, for its log line (nothing when `probe.concept` is off or the probe did not run). */
function probeFitText(round: FilterRound): string {
  const concept = round.probeConcept;
  if (!concept) return '';
  const groups = `${concept.seeds} against ${concept.runnerUp}`;
  return concept.dominant
    ? `; fitted on the ${round.probePositives} detections captioned like "${concept.caption}", ${groups} in the next group`
    : `; no caption group dominates (${groups}): fitted on them all`;
}

/**
 * The backdoor filter: on its schedule, embed the training set with the
 * current image encoder, score every sample with a local outlier detector,
 * and lower the weights of the suspicious ones in the sample-weight table
 * that the next epoch's loader reads. Options override `config.filter`.
 */
export class BackdoorFilter implements TrainHook {
  readonly name = 'backdoor-filter';
  private cfg: FilterConfig | null = null;
  private rounds: FilterRound[] = [];
  /** Embedding threads, started at the first round and kept for the next ones (the model's weights are sent each round). */
  private embedder: ParallelEmbedder | null = null;
  /** The trigger probe's seeds: samples whose robust z reached `probe.seedZ` in some round (kept across rounds: later rounds no longer score them). */
  private seeds = new Set<number>();
  /**
   * Confident detections of the observation rounds (`filter.observeEpochs`): the caption concept reads them
   * with the seeds (the probe's, `filter.probe.concept`, and the re-admission's); the probe fits on those of
   * them in a dominant group, never on the rest, and its budget stays twice the seeds.
   */
  private observedSeeds = new Set<number>();
  /**
   * Samples the re-admission holds to a higher bar (see `readmit`): the
   * trigger probe's drops, and dropped samples a probe fit ranked like its
   * seeds (decision value > 0) in any round.
   */
  private probeHeld = new Set<number>();
  /**
   * Every sample some round's probe fitted on as a confident detection: what the re-admission's veto
   * compares the holds with ("ranked like what it learned from").
   */
  private probeFitted = new Set<number>();
  /**
   * Per sample, the highest agreement cos(image, own caption) under the
   * filtering rounds' models (`readmit.beliefQuantile`; BELIEF_NONE before a
   * round has seen it): what the possibly backdoored model believes.
   */
  private belief: Float32Array | null = null;
  /**
   * Per sample, the trigger probe's highest decision value over the rounds
   * (`readmit.probeVetoQuantile`; -Infinity before a probe has scored it).
   */
  private probeMax: Float32Array | null = null;
  private readmission: ReadmissionRecord | null = null;
  /** The image embeddings the training steps of the current epoch computed, when a round follows it and `embedFrom` is `training`. */
  private captured: CapturedEmbeddings | null = null;
  /**
   * Every sample's image embedding under the encoder after `displacement.anchorEpoch`, and the file in
   * the run directory it was written to, for a resumed run (loaded at the next round).
   */
  private anchor: { epoch: number; file: string; embeddings: Float32Array | null } | null = null;

  constructor(private readonly options: FilterOptions = {}) {}

  saveState(): unknown {
    return {
      rounds: this.rounds,
      seeds: [...this.seeds],
      ...(this.observedSeeds.size ? { observedSeeds: [...this.observedSeeds] } : {}),
      probeHeld: [...this.probeHeld],
      ...(this.probeFitted.size ? { probeFitted: [...this.probeFitted] } : {}),
      readmission: this.readmission,
      // one float32 per training sample: little-endian bytes in base64, a quarter of the size as JSON numbers (and -Infinity survives)
      ...(this.belief ? { beliefFloat32: base64FromFloat32(this.belief) } : {}),
      ...(this.probeMax ? { probeMaxFloat32: base64FromFloat32(this.probeMax) } : {}),
      // a whole training set's embeddings would swell every checkpoint; the anchor's file is written once
      ...(this.anchor ? { anchor: { epoch: this.anchor.epoch, file: this.anchor.file } } : {}),
    };
  }

  restoreState(state: unknown): void {
    const saved = state as {
      rounds?: FilterRound[];
      seeds?: number[];
      observedSeeds?: number[];
      probeHeld?: number[];
      /** Missing in checkpoints from before `probe.concept`, whose probes fitted on their seeds. */
      probeFitted?: number[];
      readmission?: ReadmissionRecord | null;
      beliefFloat32?: string;
      /** As JSON numbers, in checkpoints written before `beliefFloat32`. */
      belief?: number[];
      probeMaxFloat32?: string;
      anchor?: { epoch: number; file: string };
    };
    this.rounds = (saved.rounds ?? []).slice();
    this.seeds = new Set(saved.seeds ?? []);
    this.observedSeeds = new Set(saved.observedSeeds ?? []);
    this.probeHeld = new Set(saved.probeHeld ?? []);
    this.probeFitted = new Set(saved.probeFitted ?? saved.seeds ?? []);
    this.readmission = saved.readmission ?? null;
    this.belief = saved.beliefFloat32 ? float32FromBase64(saved.beliefFloat32) : saved.belief ? Float32Array.from(saved.belief) : null;
    this.probeMax = saved.probeMaxFloat32 ? float32FromBase64(saved.probeMaxFloat32) : null;
    this.anchor = saved.anchor ? { ...saved.anchor, embeddings: null } : null;
  }

  /** Raise each sample's recorded belief to its agreement under this round's model (all samples' embeddings, in index order). */
  private recordBelief(allEmbeddings: Float32Array, allCaptions: Float32Array, n: number, d: number): void {
    const agreement = rowCosines(allEmbeddings, allCaptions, n, d);
    if (!this.belief) this.belief = new Float32Array(n).fill(BELIEF_NONE);
    for (let i = 0; i < n; i++) if (agreement[i] > this.belief[i]) this.belief[i] = agreement[i];
  }

  private config(ctx: HookContext): FilterConfig {
    if (!this.cfg) this.cfg = mergeOptions(ctx.config.filter, this.options);
    return this.cfg;
  }

  private summary(cfg: FilterConfig): FilterSummary {
    return {
      detector: cfg.detector,
      k: cfg.k,
      mode: cfg.mode,
      action: cfg.action,
      embedding: cfg.embedding,
      embedFrom: cfg.embedFrom,
      distance: cfg.distance,
      reference: cfg.reference,
      referenceSize: cfg.reference === 'sampled' ? cfg.referenceSize : null,
      neighbors: cfg.reference === 'all' ? cfg.neighbors : null,
      probe: probing(cfg) ? cfg.probe : null,
      displacement: displacing(cfg) ? cfg.displacement : null,
      rounds: this.rounds,
      readmission: this.readmission,
    };
  }

  async onTrainBegin(ctx: HookContext): Promise<void> {
    const cfg = this.config(ctx);
    // Fail before training if the detector cannot be built from this config.
    createDetector(cfg.detector, detectorOptionsFromConfig(cfg));
    ctx.summary.filter = this.summary(cfg);
    if (ctx.epoch === 0) await this.captureAnchor(ctx, cfg);
    if (cfg.mode === 'during' && cfg.warmupEpochs === 0) await this.round(ctx, 0);
  }

  /** The last epoch a round can follow (the schedule's rounds end before it, or at it). */
  private lastRoundEpoch(ctx: HookContext, cfg: FilterConfig): number {
    if (cfg.mode === 'retrain') return ctx.totalEpochs;
    return cfg.rewindAfter > 0 ? Math.min(cfg.rewindAfter, ctx.totalEpochs - 1) : ctx.totalEpochs - 1;
  }

  /**
   * Embed every sample with the encoder after `displacement.anchorEpoch` (before any rewind) and keep it,
   * written to the run directory so a resumed run has it too.
   */
  private async captureAnchor(ctx: HookContext, cfg: FilterConfig): Promise<void> {
    const anchorEpoch = cfg.displacement.anchorEpoch;
    if (!displacing(cfg) || this.anchor || ctx.epoch !== anchorEpoch || ctx.rewinds.length > 0 || anchorEpoch >= this.lastRoundEpoch(ctx, cfg)) return;
    const t0 = performance.now();
    const n = ctx.weights.size;
    const embeddings = await this.embed(ctx, cfg, Int32Array.from({ length: n }, (_, i) => i));
    const file = `anchor-embeddings-epoch${anchorEpoch}.npy`;
    writeNpy(join(ctx.outDir, file), embeddings, [n, ctx.model.embedDim]);
    this.anchor = { epoch: anchorEpoch, file, embeddings };
    ctx.log(`filter: anchor embeddings after epoch ${anchorEpoch} for the displacement view (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }

  /** The anchor's embeddings of every sample when a round after `epoch` has one (read back from its file after a resume). */
  private anchorFor(ctx: HookContext, cfg: FilterConfig, epoch: number): Float32Array | null {
    const anchor = this.anchor;
    if (!displacing(cfg) || !anchor || epoch <= anchor.epoch) return null;
    if (!anchor.embeddings) {
      const saved = readNpyMatrix(join(ctx.outDir, anchor.file));
      if (saved.rows !== ctx.weights.size || saved.cols !== ctx.model.embedDim) {
        throw new UserError(
          `${join(ctx.outDir, anchor.file)} holds ${saved.rows} x ${saved.cols} embeddings, but this run has ${ctx.weights.size} samples x ${ctx.model.embedDim} dimensions`,
          'FILTER_ANCHOR_MISMATCH',
          'the file is the displacement view\'s anchor that this run wrote before it stopped; restore it, or start the run again (or pass --filter.displacement.enabled false)',
        );
      }
      anchor.embeddings = saved.data;
    }
    return anchor.embeddings;
  }

  async onTrainEnd(): Promise<void> {
    const embedder = this.embedder;
    this.embedder = null;
    await embedder?.close();
  }

  /**
   * Whether a scoring round follows epoch `ctx.epoch`. With a rewind, the
   * filter's work is the filtering epochs before it: the rewound model trains
   * on what they kept. (A fresh model cannot see the few poisons left until
   * it has learned their trigger.)
   */
  private roundFollows(ctx: HookContext, cfg: FilterConfig): boolean {
    if (this.observationFollows(ctx, cfg)) return true;
    // Phase 1 of the retrain pipeline: one round with the fully trained model.
    if (cfg.mode === 'retrain') return ctx.epoch === ctx.totalEpochs;
    const rewinding = cfg.rewindAfter > 0;
    if (rewinding && ctx.rewinds.length > 0) return false;
    const lastEpoch = rewinding ? Math.min(cfg.rewindAfter, ctx.totalEpochs - 1) : ctx.totalEpochs - 1;
    return ctx.epoch <= lastEpoch && isRoundEpoch(ctx.epoch, lastEpoch + 1, cfg);
  }

  /** Whether an observation round (`filter.observeEpochs`) follows epoch `ctx.epoch`. */
  private observationFollows(ctx: HookContext, cfg: FilterConfig): boolean {
    return cfg.mode === 'during' && ctx.rewinds.length === 0 && ctx.epoch >= 1 && ctx.epoch < cfg.warmupEpochs && ctx.epoch >= cfg.warmupEpochs - cfg.observeEpochs;
  }

  onEpochBegin(ctx: HookContext): void {
    const cfg = this.config(ctx);
    const n = ctx.weights.size;
    this.captured = cfg.embedFrom === 'training' && this.roundFollows(ctx, cfg) ? { epoch: ctx.epoch, embeddings: new Float32Array(n * ctx.model.embedDim), seen: new Uint8Array(n) } : null;
  }

  onBatchEnd(ctx: HookContext, batch: BatchInfo): void {
    const captured = this.captured;
    const embeddings = batch.imageEmbeddings;
    if (!captured || captured.epoch !== ctx.epoch || !embeddings) return;
    const d = ctx.model.embedDim;
    batch.indices.forEach((i, t) => {
      captured.embeddings.set(embeddings.subarray(t * d, t * d + d), i * d);
      captured.seen[i] = 1;
    });
  }

  async onEpochEnd(ctx: HookContext, _record: EpochRecord): Promise<void> {
    const cfg = this.config(ctx);
    await this.captureAnchor(ctx, cfg);
    if (this.roundFollows(ctx, cfg)) await this.round(ctx, ctx.epoch, this.observationFollows(ctx, cfg));
    this.captured = null;
    if (cfg.mode === 'retrain' || cfg.rewindAfter === 0) return;
    if (ctx.rewinds.length > 0) {
      if (readmitting(cfg) && !this.readmission && ctx.epoch === ctx.rewinds[0] + cfg.readmit.after && ctx.epoch < ctx.totalEpochs) await this.readmit(ctx, cfg);
    } else if (ctx.epoch === cfg.rewindAfter && ctx.epoch < ctx.totalEpochs) {
      ctx.requestRewind(`backdoor filter: ${ctx.weights.size - ctx.weights.activeCount()} samples dropped in the first ${cfg.rewindAfter} epochs`);
      // no round follows a rewind: the anchor's embeddings are done with (its file stays for the record)
      if (this.anchor) this.anchor.embeddings = null;
    }
  }

  /**
   * Image embeddings of `rows` for the round after `epoch`: those its
   * training steps computed (`embedFrom: training`), the encoder's for the
   * rest. Returns the embeddings and how many rows were captured.
   */
  private async roundEmbeddings(ctx: HookContext, cfg: FilterConfig, rows: Int32Array, epoch: number): Promise<{ embeddings: Float32Array; captured: number }> {
    const captured = this.captured?.epoch === epoch ? this.captured : null;
    if (!captured) return { embeddings: await this.embed(ctx, cfg, rows), captured: 0 };
    const d = ctx.model.embedDim;
    const missing = rows.filter((i) => captured.seen[i] === 0);
    const encoded = missing.length ? await this.embed(ctx, cfg, missing) : new Float32Array(0);
    const out = gatherRows(captured.embeddings, d, rows);
    let m = 0;
    rows.forEach((i, r) => {
      if (captured.seen[i] === 0) out.set(encoded.subarray(m * d, ++m * d), r * d);
    });
    return { embeddings: out, captured: rows.length - missing.length };
  }

  /** Image embeddings of `rows`: on worker threads for this project's ClipModel, else the model's own pass. */
  private embed(ctx: HookContext, cfg: FilterConfig, rows: Int32Array): Promise<Float32Array> {
    if (!(ctx.model instanceof ClipModel)) return ctx.model.embedImages(ctx.trainSet, rows);
    this.embedder ??= new ParallelEmbedder({ threads: cfg.threads > 0 ? cfg.threads : undefined });
    return this.embedder.embedImages(ctx.model, ctx.trainSet, rows);
  }

  /**
   * The trigger probe, after the detector's decision is in the weight table:
   * add this round's confident detections (robust z of the scored rows) to the seeds, fit, drop what it
   * picks. Returns the dropped rows and the decision value of every sample
   * (null when short of seeds).
   */
  private async probe(
    ctx: HookContext,
    cfg: FilterConfig,
    epoch: number,
    allEmbeddings: Float32Array,
    scored: Int32Array,
    z: Float64Array,
  ): Promise<{ rows: Int32Array; scores: Float64Array | null; positives: number; concept: ProbeConcept | null }> {
    for (let r = 0; r < scored.length; r++) if (z[r] >= cfg.probe.seedZ) this.seeds.add(scored[r]);
    if (this.seeds.size < cfg.probe.minSeeds) return { rows: new Int32Array(0), scores: null, positives: 0, concept: null };
    const weights = ctx.weights;
    const current = Float32Array.from({ length: weights.size }, (_, i) => weights.get(i));
    const seeds = Int32Array.from(this.seeds).sort();
    const { positives, concept } = await this.probePositives(ctx, cfg, seeds);
    for (const i of positives) this.probeFitted.add(i);
    const { negatives, l2, budget } = cfg.probe;
    // the budget stays tied to all the seeds: the concept narrows what the probe learns, not how much it may drop
    const result = probeDrops(allEmbeddings, weights.size, ctx.model.embedDim, current, positives, Math.round(budget * seeds.length), { negatives, l2, seed: ctx.config.seed + epoch });
    for (const i of result.rows) weights.set(i, 0);
    for (let i = 0; i < weights.size; i++) if (weights.get(i) === 0 && result.scores[i] > 0) this.probeHeld.add(i);
    if (readmitting(cfg) && (cfg.readmit.probeVetoQuantile >= 0 || cfg.readmit.undominatedVetoQuantile >= 0)) {
      this.probeMax ??= new Float32Array(weights.size).fill(-Infinity);
      for (let i = 0; i < weights.size; i++) if (result.scores[i] > this.probeMax[i]) this.probeMax[i] = result.scores[i];
    }
    return { rows: result.rows, scores: result.scores, positives: positives.length, concept };
  }

  /** The seeds and the observation rounds' confident detections, each once, ascending: what the caption concept groups. */
  private confidentDetections(): Int32Array {
    return Int32Array.from(new Set([...this.seeds, ...this.observedSeeds])).sort();
  }

  /**
   * What the probe fits on (`filter.probe.concept`): the seeds, unless one caption group dominates the
   * seeds and the observation rounds' detections together (captions under this round's model) — then that
   * group alone, observations included. The seeds mix the found poisons with the clean outliers any density
   * ratio flags; the poisons share the trigger, the outliers nothing, so a fit on both learns a diluted
   * direction. Once the 1% poisons have drawn together (the round after epoch 5) the seeds alone do not
   * dominate (90 against 56 on BadNets seed 2), with the observation's detections they do (339 against 78,
   * 322 of them poisons), and the probe's ranking rises from 0.989 to 0.9999 (README, "Concept-fitted
   * probe"). At 0.1% and without poison no group dominates: the fit is the seeds', as before.
   */
  private async probePositives(ctx: HookContext, cfg: FilterConfig, seeds: Int32Array): Promise<{ positives: Int32Array; concept: ProbeConcept | null }> {
    if (!cfg.probe.concept) return { positives: seeds, concept: null };
    const detections = this.confidentDetections();
    const captionOf = (i: number) => ctx.trainSet.caption(i);
    const captions = await ctx.model.embedTexts(Array.from(detections, captionOf));
    const { conceptSimilarity, conceptDominance } = cfg.readmit;
    const group = seedConcept(captions, ctx.model.embedDim, Int32Array.from(detections.keys()), conceptSimilarity);
    if (!group) return { positives: seeds, concept: null };
    const dominant = dominates(group, conceptDominance);
    const concept = { caption: captionOf(detections[group.anchor]), seeds: group.seeds.length, runnerUp: group.runnerUp, dominant };
    return { positives: dominant ? Int32Array.from(group.seeds, (r) => detections[r]) : seeds, concept };
  }

  /**
   * Judge the dropped samples by the current (rewound) model's agreement with
   * their captions; give back those above the kept samples' quantile — above
   * a higher one (`readmit.heldQuantile`, the median) for what the trigger
   * probe holds. The probe exists for the poisons whose images already look
   * like the target, and those agree with their target captions under a clean
   * model too. Fashion-MNIST, blended 1%, judged after one rewound epoch at
   * the 1% quantile: with the probe's drops judged at that bar, 28 poisons
   * came back (seed 1); with every detector drop at it, 38 (seed 0). Holding
   * what the last round's probe ranked like its seeds to the kept median
   * instead: 1 / 1 poisons of 600 / 599, for 7,427 / 6,550 clean samples back
   * (seeds 0 / 1; offline on the judge's saved embeddings, the hook holds what
   * any round's probe ranked so, a superset).
   */
  private async readmit(ctx: HookContext, cfg: FilterConfig): Promise<void> {
    const t0 = performance.now();
    const weights = ctx.weights;
    const d = ctx.model.embedDim;
    const dropped = Int32Array.from({ length: weights.size }, (_, i) => i).filter((i) => weights.get(i) === 0);
    // Seeds only accumulate, so fewer than minSeeds now means no round ran the probe: nothing is known to be
    // held, and judging every drop at the lenient bar is what lets target-lookalike poisons back (the
    // quickstart scored after epoch 4: 4 of 40, ASR 0.081). Nothing comes back instead.
    if (this.seeds.size < cfg.probe.minSeeds) return this.skipReadmission(ctx, cfg, t0, dropped.length, `the trigger probe never ran (${this.seeds.size} seeds, fewer than probe.minSeeds ${cfg.probe.minSeeds})`);
    const held = Uint8Array.from(dropped, (i) => (this.probeHeld.has(i) ? HELD : NOT_HELD));
    const kept = sampleRows(weights.activeIndices(), cfg.readmit.references, Rng.derive(ctx.config.seed, 'filter/readmit'));
    const rows = new Int32Array(dropped.length + kept.length);
    rows.set(dropped);
    rows.set(kept, dropped.length);
    const { images, captions } = await this.judgeEmbeddings(ctx, cfg, rows);
    const heldCount = () => held.reduce((a, h) => a + (h === NOT_HELD ? 0 : 1), 0);
    const heldByProbe = heldCount();
    const probeHolds = held.slice();
    const concept = this.holdConcept(captions, d, dropped, held, cfg.readmit.conceptSimilarity, cfg.readmit.conceptDominance);
    const heldAfterConcept = heldCount();
    const agreement = rowCosines(images, captions, rows.length, d);
    const beliefThreshold = this.holdBelieved(agreement, rows, dropped.length, held, cfg.readmit.beliefQuantile);
    const heldFinal = heldCount();
    // Without a dominant caption group nothing is held, but what the probe ranks most like its seeds still
    // never comes back: at 0.1% Nashville its lookalike poisons pass the lenient bar (4 back, ASR 0.073).
    const dominant = concept === null ? null : dominates(concept, cfg.readmit.conceptDominance);
    const undominated = dominant === false;
    const vetoThreshold = undominated
      ? this.vetoHeld(dropped, held, cfg.readmit.undominatedVetoQuantile, probeHolds)
      : this.vetoHeld(dropped, held, cfg.readmit.probeVetoQuantile);
    const heldVetoed = held.reduce((a, h) => a + (h === VETOED ? 1 : 0), 0);
    const decision = decideReadmission(agreement.subarray(0, dropped.length), held, agreement.subarray(dropped.length), cfg.readmit.quantile, cfg.readmit.heldQuantile);
    let readmittedHeld = 0;
    for (const r of decision.readmitted) {
      weights.set(dropped[r], 1);
      if (held[r] === HELD) readmittedHeld++;
    }
    const truth = ctx.poison;
    let readmittedPoisons: number | null = null;
    let poisonsRemaining: number | null = null;
    let cleanDropped: number | null = null;
    if (truth) {
      readmittedPoisons = 0;
      for (const r of decision.readmitted) readmittedPoisons += truth.mask[dropped[r]];
      ({ poisonsRemaining, cleanDropped } = groundTruthCounts(weights, truth.mask));
    }
    this.readmission = {
      epoch: ctx.epoch,
      seconds: (performance.now() - t0) / 1000,
      candidates: dropped.length,
      heldByProbe,
      heldInConcept: concept ? heldAfterConcept : null,
      heldBelieved: beliefThreshold === null ? null : heldFinal,
      beliefThreshold,
      heldVetoed: vetoThreshold === null ? null : heldVetoed,
      vetoThreshold,
      concept: concept
        ? { anchor: dropped[concept.anchor], seeds: concept.seeds.length, caption: ctx.trainSet.caption(dropped[concept.anchor]), runnerUp: concept.runnerUp, dominant: dominant === true }
        : null,
      readmittedHeld,
      readmitted: decision.readmitted.length,
      readmittedPoisons,
      threshold: Number.isFinite(decision.threshold) ? decision.threshold : null,
      heldThreshold: Number.isFinite(decision.heldThreshold) ? decision.heldThreshold : null,
      poisonsRemaining,
      cleanDropped,
      skipped: null,
    };
    ctx.summary.filter = this.summary(cfg);
    ctx.recorder.log({ 'filter/readmitted': decision.readmitted.length, 'filter/readmitted_poisons': readmittedPoisons }, ctx.epoch);
    ctx.log(
      `filter re-admission after epoch ${ctx.epoch}: ${decision.readmitted.length} of ${dropped.length} dropped samples agree with their captions ` +
        `(cos > ${fmt(this.readmission.threshold, 3)}, the kept samples' ${cfg.readmit.quantile} quantile; for the ${heldFinal} the trigger probe holds` +
        `${concept ? ` captioned like its seeds' largest group (${concept.seeds.length} seeds, "${this.readmission.concept?.caption}"; the next: ${concept.runnerUp}${this.readmission.concept?.dominant ? '' : ', not dominant: none held'})` : ''}` +
        `${beliefThreshold !== null ? ` and its rounds' models believed by more than ${fmt(beliefThreshold, 3)} over the judge` : ''}` +
        `${vetoThreshold !== null ? ` (${heldVetoed} of ${undominated ? 'all its holds' : 'them'} ranked by the probe like its seeds, decision >= ${fmt(vetoThreshold, 3)}: kept out)` : ''}, ` +
        `${this.readmission.heldThreshold === null ? 'never' : `cos > ${fmt(this.readmission.heldThreshold, 3)}, their ${cfg.readmit.heldQuantile} quantile`}: ${readmittedHeld} back)` +
        (truth ? `; ${readmittedPoisons} of them poisons, ${poisonsRemaining} poisons training, ${cleanDropped} clean still dropped` : ''),
    );
  }

  private skipReadmission(ctx: HookContext, cfg: FilterConfig, t0: number, candidates: number, why: string): void {
    const truth = ctx.poison;
    const counts = truth ? groundTruthCounts(ctx.weights, truth.mask) : { poisonsRemaining: null, cleanDropped: null };
    this.readmission = {
      epoch: ctx.epoch,
      seconds: (performance.now() - t0) / 1000,
      candidates,
      heldByProbe: 0,
      heldInConcept: null,
      heldBelieved: null,
      beliefThreshold: null,
      heldVetoed: null,
      vetoThreshold: null,
      concept: null,
      readmitted: 0,
      readmittedHeld: 0,
      readmittedPoisons: truth ? 0 : null,
      threshold: null,
      heldThreshold: null,
      ...counts,
      skipped: why,
    };
    ctx.summary.filter = this.summary(cfg);
    ctx.recorder.log({ 'filter/readmitted': 0 }, ctx.epoch);
    ctx.log(`filter re-admission after epoch ${ctx.epoch}: none of ${candidates} dropped samples judged: ${why}`);
  }

  /**
   * Narrow `held` (over the candidates, `dropped`) to the candidates whose
   * caption is within `similarity` of a caption of the seeds' largest caption
   * group (the seeds are among the candidates: they were dropped); the rest
   * are judged like any drop; all of them are when that group holds fewer
   * than `dominance` times the seeds of the next one. -1 keeps every hold.
   * Captions are the first rows of `captions`, in `dropped` order.
   */
  private holdConcept(captions: Float32Array, d: number, dropped: Int32Array, held: Uint8Array, similarity: number, dominance: number): SeedConcept | null {
    if (similarity <= -1) return null;
    const position = new Map<number, number>();
    dropped.forEach((i, r) => position.set(i, r));
    const seedRows = Int32Array.from(Array.from(this.confidentDetections(), (i) => position.get(i)).filter((r): r is number => r !== undefined)).sort();
    const concept = seedConcept(captions, d, seedRows, similarity);
    if (!concept) return null;
    const heldRows = Int32Array.from({ length: held.length }, (_, r) => r).filter((r) => held[r] === HELD);
    // no dominant caption: no evidence of a target, so nothing is held
    const member = dominates(concept, dominance) ? inConcept(captions, d, heldRows, concept, similarity) : new Uint8Array(heldRows.length);
    heldRows.forEach((r, t) => {
      held[r] = member[t];
    });
    return concept;
  }

  /**
   * Narrow `held` (over the first `candidates` of `rows`) to the candidates
   * the filtering rounds' models believed more than the judge does: belief
   * minus the judge's agreement above the `quantile` of the same gap over the
   * kept samples that follow in `rows`. A backdoored model matches its
   * poisons' images to their target captions; a judge that never learned the
   * trigger does not. Returns the threshold (null when off or unrecorded).
   */
  private holdBelieved(agreement: Float64Array, rows: Int32Array, candidates: number, held: Uint8Array, quantileOfKept: number | undefined): number | null {
    if (quantileOfKept === undefined || !this.belief) return null;
    const belief = this.belief;
    const gap = Float64Array.from(rows, (i, r) => (belief[i] === BELIEF_NONE ? NaN : belief[i] - agreement[r]));
    const threshold = quantile(gap.subarray(candidates), quantileOfKept);
    // a hold without a recorded belief (dropped before any round saw it: none in `during` mode) stays held
    for (let r = 0; r < candidates; r++) if (held[r] === HELD && gap[r] <= threshold) held[r] = NOT_HELD;
    return Number.isFinite(threshold) ? threshold : null;
  }

  /**
   * Mark VETOED the candidates (over `dropped`) marked HELD in `eligible` —
   * the current holds unless told — that the probe ranked like what it
   * learned from: highest decision value over the rounds at least the
   * `quantileOfSeeds` of the same over the samples the probes fitted on (the
   * seeds, or their dominant caption group: `filter.probe.concept`). Returns
   * that threshold (null when off — a negative quantile — or no probe scored).
   */
  private vetoHeld(dropped: Int32Array, held: Uint8Array, quantileOfSeeds: number, eligible: Uint8Array = held): number | null {
    const probeMax = this.probeMax;
    if (quantileOfSeeds < 0 || !probeMax) return null;
    const threshold = quantile(Float64Array.from(this.probeFitted, (i) => probeMax[i]), quantileOfSeeds);
    if (!Number.isFinite(threshold)) return null;
    dropped.forEach((i, r) => {
      if (eligible[r] === HELD && probeMax[i] >= threshold) held[r] = VETOED;
    });
    return threshold;
  }

  /**
   * Image and caption embeddings of `rows` under the re-admission's judge.
   * With `filter.saveEmbeddings`, every sample's are embedded once, written
   * for offline analysis, and the rows gathered from them.
   */
  private async judgeEmbeddings(ctx: HookContext, cfg: FilterConfig, rows: Int32Array): Promise<{ images: Float32Array; captions: Float32Array }> {
    const embedRows = async (r: Int32Array) => ({ images: await this.embed(ctx, cfg, r), captions: await ctx.model.embedTexts(Array.from(r, (i) => ctx.trainSet.caption(i))) });
    if (!cfg.saveEmbeddings) return embedRows(rows);
    const n = ctx.weights.size;
    const d = ctx.model.embedDim;
    const all = await embedRows(Int32Array.from({ length: n }, (_, i) => i));
    for (const [name, data] of [
      [`readmit-epoch${ctx.epoch}-images.npy`, all.images],
      [`readmit-epoch${ctx.epoch}-captions.npy`, all.captions],
    ] as const) {
      writeNpy(join(ctx.outDir, name), data, [n, d]);
      ctx.recorder.addArtifact(join(ctx.outDir, name), `embeddings/${name}`);
    }
    return { images: gatherRows(all.images, d, rows), captions: gatherRows(all.captions, d, rows) };
  }

  /**
   * Score, decide, apply, report. Public so callers can score outside the schedule (e.g. the retrain
   * pipeline). `observeOnly`: score and record the confident detections for the re-admission's concept, nothing else.
   */
  async round(ctx: HookContext, epoch: number, observeOnly = false): Promise<FilterRound> {
    const cfg = this.config(ctx);
    const t0 = performance.now();
    const weights = ctx.weights;
    const everyRow = Int32Array.from({ length: weights.size }, (_, i) => i);
    const scored = cfg.reconsider ? everyRow : weights.activeIndices();
    const n = scored.length;
    const d = ctx.model.embedDim;
    const detector = createDetector(cfg.detector, detectorOptionsFromConfig(cfg));
    // The probe learns from seeds dropped in earlier rounds: it needs their embeddings under the current encoder.
    const embedAll = probing(cfg) || cfg.saveEmbeddings;
    const embedded = await this.roundEmbeddings(ctx, cfg, embedAll ? everyRow : scored, epoch);
    const allEmbeddings = embedAll ? embedded.embeddings : null;
    const embeddings = allEmbeddings ? (scored === everyRow ? allEmbeddings : gatherRows(allEmbeddings, d, scored)) : embedded.embeddings;
    const believing = readmitting(cfg) && cfg.readmit.beliefQuantile !== undefined;
    // every caption under this round's model, once, for the belief and for saveEmbeddings
    const allCaptions = allEmbeddings && (believing || cfg.saveEmbeddings) ? await ctx.model.embedTexts(Array.from(everyRow, (i) => ctx.trainSet.caption(i))) : null;
    if (allEmbeddings && allCaptions && believing) this.recordBelief(allEmbeddings, allCaptions, weights.size, d);
    const needsText = detector.needsText || cfg.embedding === 'image+text';
    const textEmbeddings = needsText ? await ctx.model.embedTexts(Array.from(scored, (i) => ctx.trainSet.caption(i))) : undefined;
    const anchor = this.anchorFor(ctx, cfg, epoch);
    const { scores, position: positionScores, displacement: displacementScores } = await scoreViews(
      detector,
      { embeddings, n, d, k: cfg.k, textEmbeddings, rng: Rng.derive(ctx.config.seed, `filter/round-${epoch}`) },
      anchor ? { detector: displacementDetector(cfg), anchor, rows: scored, rng: Rng.derive(ctx.config.seed, `filter/round-${epoch}/displacement`) } : null,
    );
    const decision = decideWeights(scores, cfg);
    let newlyDropped = 0;
    if (observeOnly) for (let r = 0; r < n; r++) if (decision.z[r] >= cfg.probe.seedZ) this.observedSeeds.add(scored[r]);
    for (let r = 0; r < n && !observeOnly; r++) {
      const i = scored[r];
      const old = weights.get(i);
      // Without `reconsider`, weights only go down: a dropped sample stays dropped.
      const next = cfg.reconsider ? decision.weights[r] : Math.min(old, decision.weights[r]);
      if (next === 0 && old > 0) newlyDropped++;
      weights.set(i, next);
    }
    const probed = allEmbeddings && probing(cfg) && !observeOnly ? await this.probe(ctx, cfg, epoch, allEmbeddings, scored, decision.z) : null;
    const probeRows = probed?.rows ?? new Int32Array(0);
    const probeScores = probed?.scores ?? null;
    const truth = ctx.poison;
    let metrics = { auroc: null as number | null, auprc: null as number | null, fprAt95Tpr: null as number | null };
    let viewAuroc: FilterRound['viewAuroc'] = null;
    let poisonRecall: number | null = null;
    let poisonsRemaining: number | null = null;
    let cleanDropped: number | null = null;
    let probeDroppedPoisons: number | null = null;
    let probeAuroc: number | null = null;
    if (truth) {
      if (probeScores) probeAuroc = auroc(probeScores, truth.mask);
      probeDroppedPoisons = 0;
      for (const i of probeRows) probeDroppedPoisons += truth.mask[i];
      const labels = new Uint8Array(n);
      for (let r = 0; r < n; r++) labels[r] = truth.mask[scored[r]];
      metrics = { auroc: auroc(scores, labels), auprc: auprc(scores, labels), fprAt95Tpr: fprAtTpr(scores, labels, 0.95) };
      if (displacementScores) viewAuroc = { position: auroc(positionScores, labels), displacement: auroc(displacementScores, labels) };
      const counts = groundTruthCounts(weights, truth.mask);
      ({ poisonsRemaining, cleanDropped } = counts);
      poisonRecall = truth.indices.length ? counts.poisonWeightRemoved / truth.indices.length : null;
    }
    if (allEmbeddings && allCaptions && cfg.saveEmbeddings) {
      // the captions under the same model too: what it believes of each pair (the re-admission's judge writes its own)
      for (const [name, data] of [
        [`embeddings-epoch${epoch}.npy`, allEmbeddings],
        [`caption-embeddings-epoch${epoch}.npy`, allCaptions],
      ] as const) {
        writeNpy(join(ctx.outDir, name), data, [weights.size, d]);
        ctx.recorder.addArtifact(join(ctx.outDir, name), `embeddings/${name}`);
      }
    }
    let scoresFile: string | null = null;
    if (cfg.writeScores) {
      scoresFile = join(ctx.outDir, `scores-epoch${epoch}.csv`);
      writeScoresCsv(scoresFile, ctx, scored, scores, probing(cfg), probeScores, displacementScores ? { position: positionScores, displacement: displacementScores } : null);
      ctx.recorder.addArtifact(scoresFile, `scores/scores-epoch${epoch}.csv`);
    }
    const round: FilterRound = {
      epoch,
      observeOnly,
      seconds: (performance.now() - t0) / 1000,
      scored: n,
      capturedRows: embedded.captured,
      dropped: newlyDropped,
      probeSeeds: observeOnly ? this.observedSeeds.size : this.seeds.size,
      probeDropped: probeRows.length,
      probePositives: probed?.positives ?? 0,
      probeConcept: probed?.concept ?? null,
      probeDroppedPoisons,
      droppedTotal: weights.size - weights.activeCount(),
      meanWeight: weights.mean(),
      rule: decision.rule,
      cut: Number.isFinite(decision.cut) ? decision.cut : null,
      capped: decision.capped,
      ...metrics,
      viewAuroc,
      probeAuroc,
      poisonRecall,
      poisonsRemaining,
      cleanDropped,
      duplicateRows: countDuplicateGroups(embeddings, n, d).rows,
      scoresFile,
    };
    this.rounds.push(round);
    ctx.summary.filter = this.summary(cfg);
    ctx.recorder.log(
      {
        'filter/auroc': round.auroc,
        'filter/probe_auroc': round.probeAuroc,
        'filter/auroc_position': round.viewAuroc?.position ?? null,
        'filter/auroc_displacement': round.viewAuroc?.displacement ?? null,
        'filter/auprc': round.auprc,
        'filter/fpr_at_95_tpr': round.fprAt95Tpr,
        'filter/dropped': round.dropped,
        'filter/probe_dropped': round.probeDropped,
        'filter/probe_positives': round.probePositives,
        'filter/dropped_total': round.droppedTotal,
        'filter/mean_weight': round.meanWeight,
        'filter/poison_recall': round.poisonRecall,
        'filter/poisons_remaining': round.poisonsRemaining,
        'filter/clean_dropped': round.cleanDropped,
        'filter/seconds': round.seconds,
      },
      epoch,
    );
    ctx.log(
      `filter after epoch ${epoch}: ${cfg.detector} k=${cfg.k} on ${n} samples in ${round.seconds.toFixed(1)} s` +
        `${cfg.embedFrom === 'training' ? ` (${round.capturedRows} embeddings from the epoch's training steps)` : ''}` +
        `${displacementScores ? ` and on their displacement since epoch ${this.anchor?.epoch}` : ''}; ` +
        (observeOnly
          ? `observation only: nothing dropped, ${round.probeSeeds} confident detections for the re-admission's concept`
          : `${cfg.action === 'drop' ? `dropped ${round.dropped} (${round.rule})${probing(cfg) ? ` + ${round.probeDropped} by the trigger probe (${round.probeSeeds} seeds${probeFitText(round)})` : ''}, ${round.droppedTotal} in total` : `mean weight ${round.meanWeight.toFixed(4)}`}`) +
        (truth ? `; AUROC ${fmt(round.auroc)}${viewAuroc ? ` (embeddings ${fmt(viewAuroc.position)}, displacement ${fmt(viewAuroc.displacement)})` : ''}${round.probeAuroc !== null ? ` (the probe's ranking of every sample: ${fmt(round.probeAuroc)})` : ''}, poison recall ${fmt(round.poisonRecall, 3)}, ${round.poisonsRemaining} poisons left, ${round.cleanDropped} clean dropped` : ''),
    );
    return round;
  }
}

function base64FromFloat32(values: Float32Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
}

/** A Float32Array from the base64 of its little-endian bytes (copied: a Buffer's bytes need not be 4-byte aligned). */
function float32FromBase64(text: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  const out = new Float32Array(bytes.length >> 2);
  new Uint8Array(out.buffer).set(bytes.subarray(0, out.length * 4));
  return out;
}

/** Image embeddings computed by the training steps of `epoch`, row i = sample i (valid where `seen[i]`). */
interface CapturedEmbeddings {
  epoch: number;
  embeddings: Float32Array;
  seen: Uint8Array;
}

/** Against the ground truth: poisons still training (weight > 0), clean samples at weight 0, and the poisons' total weight removed (1 - w each). */
function groundTruthCounts(weights: HookContext['weights'], mask: Uint8Array): { poisonsRemaining: number; cleanDropped: number; poisonWeightRemoved: number } {
  let poisonsRemaining = 0;
  let cleanDropped = 0;
  let poisonWeightRemoved = 0;
  for (let i = 0; i < weights.size; i++) {
    const w = weights.get(i);
    if (mask[i]) {
      poisonWeightRemoved += 1 - w;
      if (w > 0) poisonsRemaining++;
    } else if (w === 0) cleanDropped++;
  }
  return { poisonsRemaining, cleanDropped, poisonWeightRemoved };
}

function csvField(text: string): string {
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * `index,id,score,weight,poisoned[,probe][,position,displacement]` for every
 * training sample; samples not scored this round have empty scores. `probe`
 * (with the trigger probe on) is its decision value, > 0 = looks like a
 * confident detection; empty when the probe did not run (too few seeds).
 * `position` and `displacement` (with the displacement view) are the two
 * views' own detector scores, `score` the larger of their robust z-scores.
 */
function writeScoresCsv(
  path: string,
  ctx: HookContext,
  scored: Int32Array,
  scores: Float64Array,
  probing: boolean,
  probe: Float64Array | null,
  views: { position: Float64Array; displacement: Float64Array } | null,
): void {
  const n = ctx.weights.size;
  const byIndex = (values: Float64Array) => {
    const out = new Float64Array(n).fill(NaN);
    for (let r = 0; r < scored.length; r++) out[scored[r]] = values[r];
    return out;
  };
  const cell = (s: number) => (Number.isNaN(s) ? '' : s === Infinity ? 'inf' : String(s));
  const score = byIndex(scores);
  const position = views && byIndex(views.position);
  const displacement = views && byIndex(views.displacement);
  const lines = [`index,id,score,weight,poisoned${probing ? ',probe' : ''}${views ? ',position,displacement' : ''}`];
  for (let i = 0; i < n; i++) {
    const poisoned = ctx.poison ? String(ctx.poison.mask[i]) : '';
    const probeValue = !probing ? '' : probe && !Number.isNaN(probe[i]) ? `,${probe[i]}` : ',';
    const viewValues = position && displacement ? `,${cell(position[i])},${cell(displacement[i])}` : '';
    lines.push(`${i},${csvField(ctx.trainSet.id(i))},${cell(score[i])},${ctx.weights.get(i)},${poisoned}${probeValue}${viewValues}`);
  }
  writeFileAtomic(path, lines.join('\n') + '\n');
}


/** The filter as a hook; `--backdoor-filter` on the CLI. */
export function backdoorFilter(options: FilterOptions = {}): BackdoorFilter {
  return new BackdoorFilter(options);
}
