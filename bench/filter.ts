/**
 * One backdoor-filter pass on Fashion-MNIST-sized data — embed every
 * training image with the current model, neighbours + scores with the
 * default filter config (configs/fashion-mnist.yaml: slof, k = 16, sampled
 * references of 2048, 4 repeats), the trigger probe — as a share of one
 * training epoch of the same model, both measured in this process.
 *
 * The epoch is extrapolated from timed training steps (LocalStepper, the
 * trainer's in-thread stepper; batch 256; prebuilt batches, so data loading
 * is not counted, which only makes the epoch shorter). Steps and filter
 * passes alternate round by round, so load from other processes hits both
 * alike; the share is computed per round and its spread reported.
 *
 * Arms of the pass: embedding with the model's tfjs forward pass
 * (ClipModel.embedImages), with ParallelEmbedder in this thread (the wasm
 * GEMM forward pass for an MLP tower) or on worker threads (warm: threads
 * started in an earlier round, as in training, where the filter scores
 * every epoch); scoring in this thread (Detector.score) or on worker threads
 * (Detector.scoreAsync). The cores the process actually got (CPU time / wall
 * time) are printed: other load on the machine shows there.
 *
 * The displacement view (`filter.displacement`, on by default) scores every
 * image's movement since an anchor too: one more neighbours + scores run per
 * round (the anchor here: the model before the timed steps), timed as its own
 * part and in `pass, with the displacement view`; its one anchor embedding
 * pass per training run is not counted.
 *
 * `filter.embedFrom: training` is costed too: the per-step copy of the
 * step's image embeddings into the round's table (timed inside the step
 * loop) plus the encoder's embedding of the samples the epoch did not train
 * on (`--dropped`, the share of the set dropped by earlier rounds; default
 * 0.18, the last round's share on Fashion-MNIST blended 1%), with the same
 * scoring and probe as the threaded pass.
 *
 *   npm run build && node dist/bench/filter.js [--rounds 3] [--steps 60] [--threads N] [--backend wasm] [--dropped 0.18]
 *
 * Without the Fashion-MNIST files (apt-get install dataset-fashion-mnist)
 * the same-sized synthetic 28x28x1 pixels are used.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectBackend, type BackendRequest } from '../src/backend/select.js';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { loadSplits } from '../src/data/index.js';
import { InMemoryDataset } from '../src/data/memory.js';
import type { RawBatch } from '../src/data/stream.js';
import type { ClipDataset, DatasetSplits } from '../src/data/types.js';
import { countDuplicateGroups, createDetector, detectorOptionsFromConfig } from '../src/detectors/index.js';
import { ParallelEmbedder } from '../src/embed/parallel.js';
import { DEFAULT_Z_THRESHOLD, rankDescending, robustZ } from '../src/filter/policy.js';
import { probeDrops } from '../src/filter/probe.js';
import { seedConcept } from '../src/filter/concept.js';
import { displacementRows, largerRobustZ } from '../src/filter/views.js';
import { ClipModel } from '../src/model/clip.js';
import { closeKnnPool, defaultThreads } from '../src/neighbors/parallel/pool.js';
import { LocalStepper } from '../src/train/stepper.js';
import { architectureFor, buildTokenizer } from '../src/train/run.js';
import { Rng } from '../src/util/rng.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const ROUNDS = Number(flag('rounds', '3'));
const STEPS = Number(flag('steps', '60'));
const THREADS = Number(flag('threads', String(defaultThreads())));
const BACKEND = flag('backend', 'wasm') as BackendRequest;
const DROPPED = Number(flag('dropped', '0.18'));
const CONFIG = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'configs', 'fashion-mnist.yaml');
const FASHION_DIR = '/usr/share/datasets/fashion-mnist';

/** 60k random 28x28x1 images with templated captions, when the real files are absent. */
function syntheticFashionSized(config: Config): DatasetSplits {
  const n = 60000;
  const rng = new Rng(config.seed, 'bench-filter');
  const classes = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'];
  const images = new Uint8Array(n * 784).map(() => rng.int(256));
  const labels = Int32Array.from({ length: n }, () => rng.int(10));
  const captions = Array.from(labels, (l) => `a photo of a ${classes[l]}.`);
  const train = new InMemoryDataset('synthetic-28x28', [28, 28, 1], images, captions, labels, classes, 'synthetic');
  const test = new InMemoryDataset('synthetic-28x28-test', [28, 28, 1], images.subarray(0, 1000 * 784), captions.slice(0, 1000), labels.subarray(0, 1000), classes, 'synthetic-test');
  return { train, test, captionTemplates: ['a photo of a {}.'], promptTemplates: ['a photo of a {}.'], normalization: { mean: [0.5], std: [0.29] } };
}

function batches(dataset: ClipDataset, model: ClipModel, count: number, size: number): Promise<RawBatch[]> {
  const rng = new Rng(3, 'bench-filter/batches');
  return Promise.all(
    Array.from({ length: count }, async () => {
      const indices = Int32Array.from({ length: size }, () => rng.int(dataset.size));
      const pixels = new Uint8Array(size * 784 * dataset.imageShape[2]);
      await dataset.readImages(indices, pixels);
      const tokens = model.tokenizer.encode(Array.from(indices, (i) => dataset.caption(i)));
      return { indices, pixels, tokens, weights: null };
    }),
  );
}

/**
 * The trigger probe's inputs from a round's scores: drops above the default
 * robust z, seeds at z >= seedZ — or, with fewer than 500 of those (a barely
 * trained bench model has few confident detections), the 500 highest scores:
 * the fit's cost is set by its negatives (8,192) and the 60k rows it scores.
 */
function probeInputs(scores: Float64Array, seedZ: number): { weights: Float32Array; seeds: Int32Array } {
  const z = robustZ(scores);
  const weights = Float32Array.from(z, (v) => (v > DEFAULT_Z_THRESHOLD ? 0 : 1));
  let seeds = Int32Array.from(z.keys()).filter((i) => z[i] >= seedZ);
  if (seeds.length < 500) seeds = rankDescending(scores).slice(0, 500).sort();
  for (const i of seeds) weights[i] = 0;
  return { weights, seeds };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (xs: number[]) => `${median(xs).toFixed(3)} [${Math.min(...xs).toFixed(3)}, ${Math.max(...xs).toFixed(3)}]`;

async function main(): Promise<void> {
  const backend = await selectBackend(BACKEND);
  const config = loadConfig({ file: CONFIG });
  const real = existsSync(join(FASHION_DIR, 'train-images-idx3-ubyte.gz'));
  const splits = real ? await loadSplits(config) : syntheticFashionSized(config);
  const train = splits.train;
  const n = train.size;
  const tokenizer = buildTokenizer(config, splits, train);
  const model = ClipModel.create(architectureFor(config, splits, tokenizer), tokenizer, splits.normalization, config.seed);
  const batchSize = config.train.batchSize;
  const stepper = new LocalStepper(model, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: config.train.weightDecay });
  const data = await batches(train, model, 16, batchSize);
  const detectorOptions = detectorOptionsFromConfig(config.filter);
  const cfg = config.filter;
  const embedder = new ParallelEmbedder({ threads: THREADS });
  const embedder1 = new ParallelEmbedder({ threads: 1 });
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const untrained = new Rng(config.seed, 'bench-filter/dropped').permutation(n).subarray(0, Math.round(DROPPED * n)).sort();
  const captured = new Float32Array(n * model.embedDim);
  console.error(
    `filter bench: ${real ? 'Fashion-MNIST' : 'synthetic 28x28x1'} ${n} images, ${config.model.imageTower} tower, backend ${backend.name}, ` +
      `detector ${cfg.detector} k=${cfg.k} reference ${cfg.reference} R=${cfg.referenceSize} x${cfg.referenceRepeats}, threads ${THREADS}`,
  );

  for (let s = 0; s < 5; s++) await stepper.step(data[s % data.length], 1e-4);
  // Start the embedding threads once (training starts them at the first round and keeps them).
  const tStart = performance.now();
  await embedder.embedImages(model, train, all.subarray(0, 2048));
  const startSeconds = (performance.now() - tStart) / 1000;
  const anchor = await embedder.embedImages(model, train, all);

  const stepsPerEpoch = Math.ceil(n / batchSize);
  const rounds: Record<string, number>[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    let copyMs = 0;
    for (let s = 0; s < STEPS; s++) {
      const batch = data[s % data.length];
      await stepper.step(batch, 1e-4);
      // what the filter hook's onBatchEnd does with embedFrom: training
      const tc = performance.now();
      const emb = stepper.stepImageEmbeddings()!;
      const d = model.embedDim;
      batch.indices.forEach((i, row) => captured.set(emb.subarray(row * d, row * d + d), i * d));
      copyMs += performance.now() - tc;
    }
    const stepSeconds = (performance.now() - t0) / 1000 / STEPS;
    const epochSeconds = stepSeconds * stepsPerEpoch;
    const captureSeconds = (copyMs / 1000 / STEPS) * stepsPerEpoch;

    const cpu0 = process.cpuUsage();
    let t = performance.now();
    const tPass = t;
    const embThreads = await embedder.embedImages(model, train, all);
    const embedParallel = (performance.now() - t) / 1000;
    const kernelUsed = embedder.lastUsedKernel;
    t = performance.now();
    const embOne = await embedder1.embedImages(model, train, all);
    const embedOne = (performance.now() - t) / 1000;
    t = performance.now();
    const embMain = await model.embedImages(train, all);
    const embedMain = (performance.now() - t) / 1000;
    let maxDiff = 0;
    let scale = 1;
    for (let i = 0; i < embMain.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(embMain[i] - embThreads[i]), Math.abs(embMain[i] - embOne[i]));
      scale = Math.max(scale, Math.abs(embMain[i]));
    }

    const detector = createDetector(cfg.detector, detectorOptions);
    const input = () => ({ embeddings: embThreads, n, d: model.embedDim, k: cfg.k, rng: Rng.derive(config.seed, `filter/round-${r}`) });
    t = performance.now();
    const scoresThreads = await detector.scoreAsync(input(), { threads: THREADS });
    const scoreParallel = (performance.now() - t) / 1000;
    const { weights, seeds } = probeInputs(scoresThreads, cfg.probe.seedZ);
    t = performance.now();
    probeDrops(embThreads, n, model.embedDim, weights, seeds, seeds.length, { negatives: cfg.probe.negatives, l2: cfg.probe.l2, seed: r });
    const probeFitSeconds = (performance.now() - t) / 1000;
    // probe.concept (default): the seeds' captions under the model and their caption groups, before the fit
    t = performance.now();
    const seedCaptions = await model.embedTexts(Array.from(seeds, (i) => train.caption(i)));
    seedConcept(seedCaptions, model.embedDim, Int32Array.from(seeds.keys()), cfg.readmit.conceptSimilarity);
    const conceptSeconds = (performance.now() - t) / 1000;
    const probeSeconds = probeFitSeconds + conceptSeconds;
    const cpuPass = process.cpuUsage(cpu0);
    t = performance.now();
    const moved = displacementRows(embThreads, anchor, all, model.embedDim);
    const displacementScores = await detector.scoreAsync({ ...input(), embeddings: moved, rng: Rng.derive(config.seed, `filter/round-${r}/displacement`) }, { threads: THREADS });
    largerRobustZ(scoresThreads, displacementScores);
    const displacementSeconds = (performance.now() - t) / 1000;
    const coresThreads = (cpuPass.user + cpuPass.system) / 1e6 / ((performance.now() - tPass) / 1000);
    t = performance.now();
    const scoresMain = detector.score(input());
    const scoreMain = (performance.now() - t) / 1000;
    let same = true;
    for (let i = 0; i < n; i++) if (scoresMain[i] !== scoresThreads[i]) same = false;
    t = performance.now();
    countDuplicateGroups(embThreads, n, model.embedDim);
    const duplicates = (performance.now() - t) / 1000;
    t = performance.now();
    await embedder.embedImages(model, train, untrained);
    const embedUntrained = (performance.now() - t) / 1000;

    const passParallel = embedParallel + scoreParallel + duplicates + probeSeconds;
    const passDisplacement = passParallel + displacementSeconds;
    const passOne = embedOne + scoreMain + duplicates + probeSeconds;
    const passMain = embedMain + scoreMain + duplicates + probeSeconds;
    const passCaptured = captureSeconds + embedUntrained + scoreParallel + duplicates + probeSeconds;
    const round = {
      round: r,
      step_seconds: stepSeconds,
      samples_per_second: batchSize / stepSeconds,
      epoch_seconds: epochSeconds,
      embed_threads_seconds: embedParallel,
      embed_one_thread_seconds: embedOne,
      embed_tfjs_main_seconds: embedMain,
      embed_kernel: kernelUsed ? 1 : 0,
      score_threads_seconds: scoreParallel,
      score_main_seconds: scoreMain,
      duplicates_seconds: duplicates,
      probe_seconds: probeSeconds,
      probe_concept_seconds: conceptSeconds,
      probe_seeds: seeds.length,
      displacement_seconds: displacementSeconds,
      pass_threads_seconds: passParallel,
      pass_displacement_seconds: passDisplacement,
      share_displacement: passDisplacement / epochSeconds,
      pass_one_thread_seconds: passOne,
      pass_tfjs_embed_seconds: passMain,
      capture_copy_seconds_per_epoch: captureSeconds,
      embed_untrained_seconds: embedUntrained,
      pass_captured_seconds: passCaptured,
      share_captured: passCaptured / epochSeconds,
      share_threads: passParallel / epochSeconds,
      share_one_thread: passOne / epochSeconds,
      share_tfjs_embed: passMain / epochSeconds,
      embed_max_rel_diff: maxDiff / scale,
      cores_threads_pass: coresThreads,
      scores_identical: same ? 1 : 0,
    };
    rounds.push(round);
    console.log(JSON.stringify({ bench: 'filter', dataset: real ? 'fashion-mnist' : 'synthetic', n, threads: THREADS, backend: backend.name, ...round }));
  }
  await embedder.close();
  await embedder1.close();
  await closeKnnPool();

  const col = (k: string) => rounds.map((r) => r[k]);
  console.log(
    [
      '',
      `filter pass on ${n} images vs one epoch (${stepsPerEpoch} steps of ${batchSize}), ${ROUNDS} rounds: median [min, max]`,
      `  training step                 ${spread(col('step_seconds').map((v) => v * 1000))} ms  (${spread(col('samples_per_second'))} samples/s)`,
      `  epoch (extrapolated)          ${spread(col('epoch_seconds'))} s`,
      `  embed, ${THREADS} threads            ${spread(col('embed_threads_seconds'))} s   (${col('embed_kernel').every((v) => v === 1) ? 'wasm GEMM forward pass' : 'tfjs forward pass'}; thread start-up once: ${startSeconds.toFixed(2)} s)`,
      `  embed, 1 thread               ${spread(col('embed_one_thread_seconds'))} s   (ParallelEmbedder threads: 1)`,
      `  embed, tfjs (model)           ${spread(col('embed_tfjs_main_seconds'))} s   (ClipModel.embedImages)`,
      `  neighbours+scores, ${THREADS} threads ${spread(col('score_threads_seconds'))} s   (Detector.scoreAsync)`,
      `  neighbours+scores, 1 thread   ${spread(col('score_main_seconds'))} s   (Detector.score)`,
      `  trigger probe, 1 thread       ${spread(col('probe_seconds'))} s   (fit on ${cfg.probe.negatives} negatives, score every image; with its caption concept:)`,
      `    of which caption concept    ${spread(col('probe_concept_seconds'))} s   (${Math.min(...col('probe_seeds'))}-${Math.max(...col('probe_seeds'))} seeds' captions embedded and grouped)`,
      `  pass, ${THREADS} threads             ${spread(col('pass_threads_seconds'))} s  = ${spread(col('share_threads').map((v) => 100 * v))} % of an epoch (target <= 25 %)`,
      `  displacement view, ${THREADS} threads ${spread(col('displacement_seconds'))} s   (movement since the anchor, neighbours + scores, the larger z)`,
      `  pass + displacement view      ${spread(col('pass_displacement_seconds'))} s  = ${spread(col('share_displacement').map((v) => 100 * v))} % of an epoch (the default round)`,
      `  pass, 1 thread                ${spread(col('pass_one_thread_seconds'))} s  = ${spread(col('share_one_thread').map((v) => 100 * v))} % of an epoch`,
      `  pass, tfjs embed + 1 thread   ${spread(col('pass_tfjs_embed_seconds'))} s  = ${spread(col('share_tfjs_embed').map((v) => 100 * v))} % of an epoch`,
      `  embedFrom training: copy     ${spread(col('capture_copy_seconds_per_epoch'))} s per epoch (the steps' embeddings into the round's table)`,
      `  embedFrom training: encoder   ${spread(col('embed_untrained_seconds'))} s   (the ${untrained.length} samples the epoch did not train on, ${THREADS} threads)`,
      `  pass, embedFrom training      ${spread(col('pass_captured_seconds'))} s  = ${spread(col('share_captured').map((v) => 100 * v))} % of an epoch (the same scoring and probe)`,
      `  cores the threaded pass got   ${spread(col('cores_threads_pass'))} (CPU time / wall time; ${THREADS} = all of them)`,
      `  embeddings vs the model's: max relative diff ${Math.max(...col('embed_max_rel_diff')).toExponential(1)}; scores threads vs 1 thread identical: ${col('scores_identical').every((v) => v === 1)}`,
    ].join('\n'),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
