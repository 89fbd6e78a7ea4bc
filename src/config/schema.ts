import { z } from 'zod';

/**
 * The one description of every configuration key: type, allowed values,
 * default and meaning. Raw input (YAML/JSON file, then `--a.b` overrides) is
 * parsed against it once; the rest of the code only sees the frozen result.
 * Every object is `.strict()` so that a typo is an error, not a silent default.
 */

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();
const fraction = z.number().min(0).max(1);

const DEFAULT_PROMPTS = [
  'a photo of a {}.',
  'a picture of a {}.',
  'an image of a {}.',
  'a photo of the {}.',
  'a low resolution photo of a {}.',
  'a cropped photo of a {}.',
  'a close-up photo of a {}.',
  'a drawing of a {}.',
];

export const dataSchema = z
  .object({
    /** Which dataset: the built-in procedural `synthetic` one needs no download. */
    kind: z.enum(['synthetic', 'fashion-mnist', 'webdataset', 'csv', 'folder']).default('synthetic'),
    /** Training samples to use (synthetic: how many to draw; others: subsample, 0 = all). */
    size: nonNegativeInt.default(4000),
    /** Test samples for zero-shot evaluation (synthetic: how many to draw; others: subsample, 0 = all). */
    testSize: nonNegativeInt.default(1000),
    /** Synthetic image side in pixels. */
    imageSize: z.number().int().min(8).max(128).default(16),
    /** Directory of Fashion-MNIST's IDX `.gz` files. */
    dir: z.string().default('/usr/share/datasets/fashion-mnist'),
    /** Caption templates for the training captions (`{}` = class name); default: per dataset. */
    captionTemplates: z.array(z.string().includes('{}')).min(1).optional(),
    /** Prompt templates for zero-shot class embeddings; default: the caption templates. */
    promptTemplates: z.array(z.string().includes('{}')).min(1).optional(),
    /** Seed of the synthetic generator and of subsampling (defaults to the run seed). */
    seed: nonNegativeInt.optional(),
    /** Shard list (webdataset), CSV/TSV file (csv) or directory (folder). */
    path: z.string().optional(),
    /** Test split for external data: labelled folder or CSV. */
    testPath: z.string().optional(),
    /** Class names for zero-shot evaluation of external data. */
    classNames: z.array(z.string().min(1)).optional(),
    /** CSV column holding the image path. */
    csvImageKey: z.string().default('filepath'),
    /** CSV column holding the caption. */
    csvCaptionKey: z.string().default('title'),
    /** CSV column holding the class label (test CSVs). */
    csvLabelKey: z.string().default('label'),
    /** CSV separator; auto-detected from the extension (`.tsv` = tab) when absent. */
    csvSeparator: z.enum([',', '\t']).optional(),
    /** Side length images are resized to (external data). */
    resize: z.number().int().min(8).max(512).default(28),
    /** How external images are fitted to a square: center crop or pad. */
    fit: z.enum(['crop', 'pad']).default('crop'),
    /** Decode external images as grayscale (1 channel) or RGB (3 channels). */
    channels: z.union([z.literal(1), z.literal(3)]).default(3),
    /** Fail on the first bad sample instead of skipping and counting it. */
    strict: z.boolean().default(false),
    /** Images decoded ahead of the training step. */
    prefetch: positiveInt.default(4),
  })
  .strict()
  .default({});

export const modelSchema = z
  .object({
    /** Image tower: `mlp` (fast on CPU), `conv` (translation-aware). */
    imageTower: z.enum(['mlp', 'conv']).default('mlp'),
    /** Hidden layer widths of the MLP image tower. */
    hidden: z.array(positiveInt).default([512, 512]),
    /** Output channels of each stride-2 3x3 conv layer of the conv tower. */
    convChannels: z.array(positiveInt).min(1).default([16, 32]),
    /** Width of the dense layer after the conv layers. */
    convDense: positiveInt.default(256),
    /** Word-embedding width of the bag-of-words text tower. */
    textWidth: positiveInt.default(256),
    /** Hidden layers of the text tower after the bag of words (empty = linear projection). */
    textHidden: z.array(positiveInt).default([]),
    /** Tokens kept per caption (longer captions are truncated). */
    maxTokens: positiveInt.default(16),
    /** Words seen fewer times than this in the training captions map to `<unk>`. */
    minWordCount: positiveInt.default(1),
    /** Dimension of the shared image-text embedding. */
    embedDim: positiveInt.default(128),
    /** Initial softmax temperature (CLIP: 0.07). */
    initTemperature: z.number().positive().default(0.07),
    /** Upper bound on the learnable logit scale 1/temperature (CLIP: 100). */
    maxLogitScale: z.number().positive().default(100),
  })
  .strict()
  .default({});

export const trainSchema = z
  .object({
    epochs: positiveInt.default(10),
    batchSize: z.number().int().min(2).default(256),
    /** Peak learning rate of AdamW. */
    lr: z.number().positive().default(1e-3),
    /** Decoupled weight decay (not applied to biases, embeddings and the temperature). */
    weightDecay: z.number().nonnegative().default(0.1),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.999),
    eps: z.number().positive().default(1e-8),
    /** Linear warm-up steps before the cosine decay (capped at 10% of all steps). */
    warmupSteps: nonNegativeInt.default(100),
    /** Evaluate zero-shot accuracy every N epochs (the last epoch is always evaluated). */
    evalEvery: positiveInt.default(1),
    /** Samples per forward pass when embedding without gradients. */
    embedBatchSize: positiveInt.default(1024),
    /** Data-parallel worker threads for the training step (1 = in process). */
    workers: positiveInt.default(1),
    /**
     * The training step on the project's WebAssembly SIMD kernels instead of tfjs ops: `auto` uses
     * them on the CPU backends (wasm, cpu) for MLP image towers, `off` always steps with tfjs.
     */
    kernel: z.enum(['auto', 'off']).default('auto'),
  })
  .strict()
  .default({});

export const poisonSchema = z
  .object({
    /** Trigger: badnets, blended, sig, wanet, nashville, clean-label, multi-trigger, patch (user image), blend (user image). */
    attack: z.string().min(1),
    /** Fraction of training samples to poison (exclusive with `count`). */
    rate: z.number().gt(0).lt(1).optional(),
    /** Number of training samples to poison (exclusive with `rate`); 0 = a clean run that still measures the trigger's ASR. */
    count: nonNegativeInt.optional(),
    /** Target class name the poisoned captions name. */
    target: z.string().min(1),
    /** Seed of the poison index draw and of per-sample trigger randomness (defaults to the run seed). */
    seed: nonNegativeInt.optional(),
    /** Caption templates for poisoned captions (`{}` = target); default: the dataset's caption templates. */
    captionTemplates: z.array(z.string().includes('{}')).min(1).optional(),
    /** BadNets patch position during training: `random` corner (the paper's setting) or `fixed` at the test position (bottom-right). */
    position: z.enum(['random', 'fixed']).default('random'),
    /** Blend weight of blended / sig / user blend triggers. */
    alpha: fraction.optional(),
    /** Image file for user-supplied `patch` / `blend` triggers. */
    image: z.string().optional(),
    /** Patch side as a fraction of the image side (badnets, patch). */
    patchFraction: z.number().gt(0).max(1).optional(),
    /** Top-left position [x, y] of a user patch, in pixels (default: bottom-right corner). */
    patchPosition: z.tuple([nonNegativeInt, nonNegativeInt]).optional(),
    /** Triggers that multi-trigger draws from. */
    triggers: z.array(z.string()).min(1).optional(),
    /** External ground truth: JSON list of ids/indices or a CSV with an `id` column. */
    groundTruth: z.string().optional(),
  })
  .strict()
  .refine((p) => !(p.rate !== undefined && p.count !== undefined), {
    message: 'give either poison.rate or poison.count, not both',
  });

export const filterSchema = z
  .object({
    /** Switch the backdoor filter on (`--backdoor-filter`). */
    enabled: z.boolean().default(false),
    /** `during`: re-score and filter the running training; `retrain`: train, score once, retrain from scratch on the kept set. */
    mode: z.enum(['during', 'retrain']).default('during'),
    /**
     * Epochs trained before the first scoring. The detectors see a poison once the encoder has learned
     * its trigger, and a rare trigger takes epochs: blended 0.1% on Fashion-MNIST is at ASR 0.02 after
     * epoch 2 and 0.51 after epoch 4, and in an unfiltered run a round drops 6 of its 60 poisons after
     * epoch 2 (AUROC 0.78, no poison among the probe's seeds) against 53 after epoch 4 (AUROC 0.97, 39
     * among the seeds), while at 1% epoch 4 serves as well as epoch 2 (AUROC 0.99 both; README, "Why the
     * first round waits"). 5, with an observation round after epoch 4 (`observeEpochs`): with the
     * displacement view the first round after epoch 5 ranks blended 0.1%'s poisons at AUROC 0.985-0.998
     * on five seeds (>= 0.99 on four), against 0.938-0.994 after epoch 4 (on one). The
     * rewind makes the wait cost epochs only: what the filtering epochs' model learns is discarded. A
     * small set that learns its trigger within two epochs wants less: by epoch 4 the quickstart's poisons
     * have drawn together and leave the probe 4-10 seeds (seed 1: 3 poisons back, ASR 0.063), so its
     * config keeps 2.
     */
    warmupEpochs: nonNegativeInt.default(5),
    /**
     * Observation rounds before the first: after each of the `observeEpochs` epochs before
     * `warmupEpochs`, score every sample and record its confident detections (robust z >= `probe.seedZ`)
     * for the caption concept tests (the re-admission's, and the probe's with `probe.concept`), which read
     * them with the probe's seeds; nothing is dropped, and the probe fits only on those of them in a
     * dominant caption group. A later first round sees a rare trigger better, but a common
     * one's poisons have drawn together by then and fewer reach the seeds, and the concept test then
     * misses the target: blended 1% with rounds after epochs 5-7 gave 40 poisons back (ASR 0.094) with
     * the seeds' target group at 1.77 times the next, and 0 (3.2 times) with the observation after
     * epoch 4 (README, "Later first rounds"). `during` mode only; 0: none.
     */
    observeEpochs: nonNegativeInt.default(1),
    /** Re-score every N epochs after the first round (0 = score once). */
    every: nonNegativeInt.default(1),
    /**
     * `during` mode: after this many epochs (and that epoch's round), rewind the model to its
     * initialisation and train the full schedule on the kept samples (0 = never rewind). A backdoor
     * learned before its poisons were found does not fade when they are removed; rewinding costs
     * these epochs, against a whole extra training run for `retrain`. 7, so three rounds (after
     * epochs 5, 6, 7): on Fashion-MNIST blended 0.1% a second round has found the last poisons the first
     * missed (5 of them, with rounds after epochs 4-6 before the displacement view).
     */
    rewindAfter: nonNegativeInt.default(7),
    detector: z
      .enum(['slof', 'kdist', 'lof', 'lid', 'dao', 'iforest', 'clipscore', 'slof-official', 'kdist-official', 'dao-official'])
      .default('slof'),
    k: positiveInt.default(16),
    /**
     * Where a round's image embeddings come from. `snapshot`: the encoder after the epoch embeds every
     * sample (a second forward pass over the training set). `training`: each sample's embedding as the
     * epoch's own training step computed it, free but from a model that moved during the epoch; samples
     * the epoch did not train on (dropped ones), and every sample when the step runs on tfjs ops, are
     * embedded by the encoder after the epoch. Measured on Fashion-MNIST: the pass falls from 44% to 32% of
     * an epoch, but round-1 AUROC falls on every attack and blended 1% seed 1 ends at ASR 0.142 (README,
     * "Measured and not adopted").
     */
    embedFrom: z.enum(['snapshot', 'training']).default('snapshot'),
    /** Which embeddings form the reference: images only, or images and captions (official CLIP mode). */
    embedding: z.enum(['image', 'image+text']).default('image'),
    /**
     * The displacement view: each round after `anchorEpoch` also scores how far every sample's image
     * embedding has moved since the encoder after that epoch (raw difference, same detector and
     * references), and a sample's round score is the larger of its robust z-scores in the two views.
     * A trigger learned after the anchor moves its poisons together, from their own class towards the
     * target, while clean samples move with their class: on Fashion-MNIST blended 0.1% (seeds 0 / 1 / 2,
     * after epoch 4) SLOF on the displacement since epoch 1 ranks the poisons at AUROC 0.996 / 0.994 /
     * 0.954 against 0.968 / 0.965 / 0.947 on the embeddings. A trigger learned before the anchor leaves
     * little to see in the displacement (blended 1%, learned in the first epoch: 0.61-0.66), which is why
     * the views combine by their larger z and the round keeps the position view (README, "The
     * displacement view"). Anchor 0 (the untrained encoder) measured worse at 0.1% (seed 1: 0.968), 2 about
     * the same (0.996 on seed 1, 0.995 on seed 0 offline). Image embeddings only (with `embedding:
     * image+text` the captions join the first view's references, not the displacement's); not with
     * detectors that read captions (`clipscore`); rounds at or before the anchor score the embeddings alone.
     */
    displacement: z
      .object({ enabled: z.boolean().default(true), anchorEpoch: nonNegativeInt.default(1) })
      .strict()
      .default({}),
    distance: z.enum(['l2', 'cosine']).default('l2'),
    /** Neighbour search over whole-dataset references (`reference: all`). */
    neighbors: z.enum(['exact', 'hnsw', 'ivf']).default('exact'),
    /** `sampled`: random reference subsets of `referenceSize` (poisons stay rarer than k); `all`: the whole dataset. */
    reference: z.enum(['all', 'sampled']).default('sampled'),
    referenceSize: z.number().int().min(2).default(2048),
    /** Independent random reference draws averaged per sample (sampled reference): less noise in clean scores. */
    referenceRepeats: positiveInt.default(4),
    hnsw: z
      .object({ M: positiveInt.default(16), efConstruction: positiveInt.default(200), efSearch: positiveInt.default(64) })
      .strict()
      .default({}),
    /** Inverted file (`neighbors: ivf`): k-means lists (default round(sqrt(N))), and the lists each sample searches, its own first. */
    ivf: z
      .object({ lists: positiveInt.optional(), probes: positiveInt.default(16) })
      .strict()
      .default({}),
    /** Rows per block of the exact neighbour search (bounds memory to block x N). */
    blockSize: positiveInt.default(2048),
    /** Worker threads for embedding, neighbour search and scoring; 0 = every core this process may use. */
    threads: nonNegativeInt.default(0),
    action: z.enum(['drop', 'downweight']).default('drop'),
    /** Drop this top fraction of scores (exclusive with `threshold`). */
    dropFraction: fraction.optional(),
    /** Drop scores above this value (`thresholdKind: absolute`) or robust z-score (`zscore`). */
    threshold: z.number().optional(),
    thresholdKind: z.enum(['absolute', 'zscore']).default('zscore'),
    /** Temperature of the logistic weight on the robust z-score (downweight). */
    weightTemperature: z.number().positive().default(1),
    /** Robust z-score at which the down-weight is 0.5. */
    weightCenter: z.number().default(3),
    /** Re-admit previously dropped samples whose new score is low. */
    reconsider: z.boolean().default(false),
    /**
     * The trigger probe after each round's drops (src/filter/probe.ts; `action: drop` only): a
     * logistic regression of "confident detection" (robust z >= `seedZ` in any round) against
     * the kept samples, on unit-normalised embeddings, then drop the kept samples it ranks highest
     * (decision value > 0), at most `budget` x the number of seeds per round. The detector misses
     * poisons that sit near the target concept; what they share with the found ones is the trigger.
     */
    probe: z
      .object({
        enabled: z.boolean().default(true),
        seedZ: z.number().positive().default(8),
        /**
         * 2, not 1: with 1, blended 1% on Fashion-MNIST (seed 1) kept 6 poisons with 4 reference
         * repeats but 23-25 (ASR 0.12) with 2 or 8; with 2 it kept 1-8 (ASR <= 0.025) under all three,
         * for ~0.5 points of clean accuracy (README, filter results).
         */
        budget: z.number().nonnegative().default(2),
        /** Kept samples sampled as the fit's negatives (every kept sample is scored). */
        negatives: positiveInt.default(8192),
        /** Ridge penalty on the probe's weights (scikit-learn's 1 / C). */
        l2: z.number().positive().default(1),
        /** Fewer seeds than this: no probe this round (nothing to learn from). */
        minSeeds: positiveInt.default(10),
        /**
         * Fit on the seeds' dominant caption group alone, when there is one: the seeds and the
         * observation rounds' detections, grouped by caption (`readmit.conceptSimilarity`), dominate
         * when the largest group is `readmit.conceptDominance` times the next — a targeted attack's
         * poisons all caption its target. Without a dominant group, the fit is on all the seeds.
         * Fashion-MNIST, round after epoch 5: BadNets 1% seed 2's probe ranks every sample at 0.9999
         * instead of 0.989, blended 1% seed 0's at 1.000 instead of 0.997 (README, "Concept-fitted
         * probe"); at 0.1% no group dominates. Its drops include clean samples of the target class that sit
         * where the poisons went, and they grow with the dropping rounds: with rounds after every epoch from 2 to
         * 7, blended 1% lost most of its clean ankle boots to them (7.39 points; README, "Other targets").
         */
        concept: z.boolean().default(true),
      })
      .strict()
      .default({}),
    /**
     * Re-admission after the rewind (src/filter/readmit.ts; `during` mode with a rewind, `action:
     * drop` and the trigger probe, whose holds it needs): `after` epochs into the rewound training,
     * a dropped sample comes back for the remaining epochs when its CLIP score cos(image, own
     * caption) under the current model is above the kept samples' `quantile` of the same score —
     * above their `heldQuantile` when the trigger probe holds it (its drops, and drops a probe fit
     * ranked like its seeds). The rewound model has not learned the trigger, so it agrees with a
     * clean sample's caption and not with a poison's, except for poisons that already look like the
     * target: those are what the probe holds, at least those captioned like the target (`conceptSimilarity`) and not ranked by the
     * probe like what it fitted on (`probeVetoQuantile`). With these defaults, on Fashion-MNIST (blended 1% /
     * 0.1% and BadNets 1%, three seeds each) all 9 runs end within 1 point of the clean run's accuracy
     * (0.18-0.82 points below, against 1.1-2.1 without the re-admission) at ASR <= 0.007, with 0-3
     * poisons back per run; Nashville, SIG, WaNet <= 0.008; the quickstart (rounds after epochs 2-4) 0-2
     * of 40 back, ASR <= 0.017 on three seeds (README, filter results). Without a round that ran the probe
     * nothing is judged. `after` 3, not 1: one epoch in, the quickstart's judge (zero-shot accuracy 0.37)
     * took back 4 of 40 poisons (ASR 0.13).
     */
    readmit: z
      .object({
        enabled: z.boolean().default(true),
        /** Epochs of the rewound training before the judgement (its model must have learned the captions first). */
        after: positiveInt.default(3),
        quantile: fraction.default(0.01),
        /** The bar for what the trigger probe holds (its drops, and drops it ranks like its seeds): the kept samples' median; 1 = never. */
        heldQuantile: fraction.default(0.5),
        /**
         * What the probe holds stays held only when its caption is within this cosine (under the judge) of
         * a caption in the seeds' largest caption group — a targeted backdoor's poisons all caption its
         * target; the rest is judged like any drop. -1: everything the probe holds stays held. It must sit
         * between the similarity of captions of one concept and of two: 0.6-0.7 on the quickstart's
         * bag-of-words captions (rounds after epochs 2-4; 0.6: no poison back, 0.7: 1), 0.7-0.8 on
         * Fashion-MNIST's, where 0.6 merges the footwear classes (README, "The concept hold"). Too high a value lets poisons back (quickstart,
         * 0.8: 4); too low holds more clean samples.
         */
        conceptSimilarity: z.number().min(-1).max(1).default(0.7),
        /**
         * The seeds' largest caption group counts as the target's only when it holds at least this many
         * times the seeds of the next group; otherwise no caption dominates the seeds, they are mostly
         * clean outliers rather than poisons, and nothing the probe holds is held. The next group is formed
         * from the seeds outside the concept, so that one concept split by the similarity does not count
         * twice. On Fashion-MNIST (19 runs) the target's group is 2.1-4.4 times the next at 1%, while at
         * 0.1%, without poison and for WaNet on one seed the largest group is a clean concept's at 1.0-1.7
         * times the next; the quickstart's (rounds after epochs 2-4) 4.3. 0: the largest group, however
         * small its lead (before this option).
         */
        conceptDominance: z.number().min(0).default(2),
        /**
         * What the probe holds stays held only when the filtering rounds' model agreed with its caption by
         * more than the judge does — by more than this quantile of the same gap over the kept samples: a
         * backdoored model believes its poisons' captions, a clean judge does not. Unset (default): off.
         */
        beliefQuantile: fraction.optional(),
        /**
         * What the probe holds never comes back when the probe ranked it at least like this quantile of what
         * it fitted on (its highest decision value over the rounds against theirs): a judge that never learned
         * the trigger takes poisons that look like the target for the target (Nashville: 9 sneakers back at
         * the median bar); the probe, which learned the trigger in the rounds' models, ranks them like its
         * positives. 0.05, not 0.25 (the value when the probe fitted on every seed, clean outliers included):
         * fitted on the dominant caption group (`probe.concept`), nearly all poisons, the probe ranks the
         * poisons higher, and at 0.25 16 poisons came back over the six 1% runs and Nashville (ASR <= 0.015),
         * at 0.05 5 (ASR <= 0.008), at the same accuracy (README, "Concept-fitted probe"). Negative: off.
         */
        probeVetoQuantile: z.number().min(-1).max(1).default(0.05),
        /**
         * When no caption group dominates the seeds (`conceptDominance`), nothing is held, but the probe's
         * holds it ranked at least like this quantile of its seeds still never come back: a probe that
         * learned from mostly clean seeds also ranks the trigger's lookalikes high (Nashville at 0.1%: 4
         * sneakers and sandals captioned "ankle boot" passed the lenient bar, ASR 0.073; seed 1 the same;
         * at 0.5 none, ASR 0.022-0.023). Higher than `probeVetoQuantile` because these holds include the
         * clean outliers the probe learned from: at 0.5 it costs blended 0.1% 0.2-0.3 points (still within
         * 1 of the clean run), at 0.25 it would keep 3,700-5,700 clean samples out. Negative: off.
         */
        undominatedVetoQuantile: z.number().min(-1).max(1).default(0.5),
        /** Kept samples sampled for the quantile. */
        references: positiveInt.default(8192),
      })
      .strict()
      .default({}),
    /** Largest fraction of the dataset one round may drop (guards against a collapsed score distribution). */
    maxDropFraction: fraction.default(0.1),
    /** Write `scores-epoch<N>.csv` each round. */
    writeScores: z.boolean().default(true),
    /** Write every training sample's embedding each round to `embeddings-epoch<N>.npy` (row = sample index), for `score --embeddings`. */
    saveEmbeddings: z.boolean().default(false),
    /** Trees and subsample size of the isolation-forest baseline. */
    iforestTrees: positiveInt.default(100),
    iforestSampleSize: positiveInt.default(256),
  })
  .strict()
  .default({});

export const trackingSchema = z
  .object({
    /** Log to MLflow (a local file store by default). */
    enabled: z.boolean().default(true),
    /** `./mlruns`, `file:///abs/mlruns` or `http(s)://host:port`; default: $MLFLOW_TRACKING_URI, else ./mlruns. */
    uri: z.string().optional(),
    experiment: z.string().min(1).default('clip-backdoor-filter'),
    runName: z.string().optional(),
    tags: z.record(z.string()).default({}),
    /** Upload the final checkpoint as an artifact. */
    logModel: z.boolean().default(false),
  })
  .strict()
  .default({});

export const evalSchema = z
  .object({
    /** Prompt templates for zero-shot class embeddings (default: the dataset's). */
    promptTemplates: z.array(z.string().includes('{}')).min(1).optional(),
  })
  .strict()
  .default({});

export const configSchema = z
  .object({
    seed: nonNegativeInt.default(0),
    backend: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
    /** Output directory of the run. */
    out: z.string().optional(),
    /** No progress display. */
    quiet: z.boolean().default(false),
    data: dataSchema,
    model: modelSchema,
    train: trainSchema,
    eval: evalSchema,
    poison: poisonSchema.nullable().default(null),
    filter: filterSchema,
    tracking: trackingSchema,
  })
  .strict();

export type RawConfig = z.input<typeof configSchema>;
type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;
export type Config = DeepReadonly<z.output<typeof configSchema>>;
export type DataConfig = Config['data'];
export type ModelConfig = Config['model'];
export type TrainConfig = Config['train'];
export type PoisonConfig = NonNullable<Config['poison']>;
export type FilterConfig = Config['filter'];
export type TrackingConfig = Config['tracking'];

export { DEFAULT_PROMPTS };
