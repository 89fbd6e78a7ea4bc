import { preparePoison } from '../attacks/prepare.js';
import { dirname, resolve } from 'node:path';
import { resolveConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createDetector, detectorOptionsFromConfig } from '../detectors/index.js';
import { ParallelEmbedder } from '../embed/parallel.js';
import { detectionReport, type DetectionReport } from '../metrics/detection.js';
import { loadModel } from '../model/io.js';
import { setupRun } from '../train/run.js';
import { writeFileAtomic } from '../util/fs.js';
import { writeNpy } from '../util/npy.js';
import { Rng } from '../util/rng.js';
import { displacementDetector, scoreViews } from './views.js';

export interface ScoreInput {
  readonly embeddings: Float32Array;
  readonly n: number;
  readonly d: number;
  readonly textEmbeddings?: Float32Array;
  /**
   * The same samples' embeddings under an earlier encoder (the hook's `anchor-embeddings-epoch<N>.npy`):
   * score the displacement view too and combine as a round does (`filter.displacement`).
   */
  readonly anchorEmbeddings?: Float32Array;
  /** 1 = poisoned; enables the detection metrics. */
  readonly labels?: Uint8Array | null;
}

export interface ScoreReport {
  readonly detector: string;
  readonly k: number;
  readonly reference: string;
  readonly n: number;
  readonly seconds: number;
  readonly scores: Float64Array;
  readonly metrics: (DetectionReport & { positives: number }) | null;
}

/** Score embeddings with the detector and references of `config.filter`, outside any training (on `filter.threads` worker threads). */
export async function scoreEmbeddings(config: Config, input: ScoreInput): Promise<ScoreReport> {
  const cfg = config.filter;
  const t0 = performance.now();
  const detector = createDetector(cfg.detector, detectorOptionsFromConfig(cfg));
  const { scores } = await scoreViews(
    detector,
    { embeddings: input.embeddings, n: input.n, d: input.d, k: cfg.k, textEmbeddings: input.textEmbeddings, rng: Rng.derive(config.seed, 'filter/offline') },
    input.anchorEmbeddings
      ? { detector: displacementDetector(cfg), anchor: input.anchorEmbeddings, rows: Int32Array.from({ length: input.n }, (_, i) => i), rng: Rng.derive(config.seed, 'filter/offline/displacement') }
      : null,
  );
  let metrics: ScoreReport['metrics'] = null;
  if (input.labels) {
    let positives = 0;
    for (const v of input.labels) positives += v;
    metrics = { ...detectionReport(scores, input.labels), positives };
  }
  const reference = cfg.reference === 'sampled' ? `sampled R=${cfg.referenceSize}` : `all (${cfg.neighbors})`;
  return { detector: cfg.detector, k: cfg.k, reference, n: input.n, seconds: (performance.now() - t0) / 1000, scores, metrics };
}

export function writeScoreCsv(path: string, scores: Float64Array, labels?: Uint8Array | null, ids?: (i: number) => string): void {
  const header = ['index', ...(ids ? ['id'] : []), 'score', ...(labels ? ['poisoned'] : [])].join(',');
  const lines = [header];
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i] === Infinity ? 'inf' : String(scores[i]);
    const id = ids ? `,${JSON.stringify(ids(i))}` : '';
    lines.push(`${i}${id},${s}${labels ? `,${labels[i]}` : ''}`);
  }
  writeFileAtomic(path, lines.join('\n') + '\n');
}

/**
 * Embed the config's training set (poisoned as the config says, so a
 * poisoned run's data is reproduced exactly) with a saved model, then score.
 */
export async function scoreCheckpoint(config: Config, checkpointDir: string, opts: { saveEmbeddings?: string; scoresCsv: string }): Promise<ScoreReport> {
  // poison.json of the reproduced poisoning goes next to the scores.
  const setup = await setupRun(resolveConfig({ ...(config as object), out: dirname(resolve(opts.scoresCsv)) } as never), { poison: preparePoison });
  const train = setup.poison?.train ?? setup.splits.train;
  const model = await loadModel(checkpointDir);
  try {
    model.embedBatchSize = config.train.embedBatchSize;
    const embedder = new ParallelEmbedder({ threads: config.filter.threads > 0 ? config.filter.threads : undefined });
    const embeddings = await embedder.embedImages(model, train).finally(() => embedder.close());
    const d = model.embedDim;
    const needsText = config.filter.detector === 'clipscore' || config.filter.embedding === 'image+text';
    const textEmbeddings = needsText ? await model.embedTexts(Array.from({ length: train.size }, (_, i) => train.caption(i))) : undefined;
    if (opts.saveEmbeddings) writeNpy(opts.saveEmbeddings, embeddings, [train.size, d]);
    const report = await scoreEmbeddings(config, { embeddings, n: train.size, d, textEmbeddings, labels: setup.poison?.truth.mask ?? null });
    writeScoreCsv(opts.scoresCsv, report.scores, setup.poison?.truth.mask ?? null, (i) => train.id(i));
    return report;
  } finally {
    model.dispose();
  }
}
