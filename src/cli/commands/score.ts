import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { scoreCheckpoint, scoreEmbeddings, writeScoreCsv, type ScoreReport } from '../../filter/offline.js';
import { readNpy, readNpyMatrix } from '../../util/npy.js';
import { UserError } from '../../util/errors.js';
import { configFromArgv, withRunOptions } from '../common.js';

export const command = 'score';
export const describe = 'score samples offline: from .npy embeddings, or by embedding a dataset with a saved checkpoint';

export function builder(y: Argv) {
  return withRunOptions(y)
    .option('embeddings', { type: 'string', describe: 'N x D float32/float64 .npy of image embeddings' })
    .option('text-embeddings', { type: 'string', describe: 'N x D .npy of caption embeddings (clipscore, --filter.embedding image+text)' })
    .option('anchor-embeddings', { type: 'string', describe: 'N x D .npy of the same samples under an earlier encoder (a run\'s anchor-embeddings-epoch<N>.npy): also score their displacement, as a round does' })
    .option('labels', { type: 'string', describe: 'ground truth: .npy of 0/1 (N) or a poison.json; prints AUROC/AUPRC' })
    .option('checkpoint', { type: 'string', describe: 'a checkpoint directory (<out>/checkpoints/last): embed the --config dataset with it first' })
    .option('detector', { type: 'string', describe: 'shorthand for --filter.detector (slof, kdist, lof, lid, dao, iforest, clipscore, *-official)' })
    .option('k', { type: 'number', describe: 'shorthand for --filter.k' })
    .option('reference', { choices: ['all', 'sampled'] as const, describe: 'shorthand for --filter.reference' })
    .option('reference-size', { type: 'number', describe: 'shorthand for --filter.referenceSize' })
    .option('scores', { type: 'string', default: 'scores.csv', describe: 'CSV to write (index,score[,poisoned])' })
    .option('save-embeddings', { type: 'string', describe: 'with --checkpoint: also write the embeddings to this .npy' })
    .example('$0 score --embeddings emb.npy --labels poison.json --detector slof --k 16 --reference sampled --scores s.csv', 'score saved embeddings')
    .example('$0 score --checkpoint runs/q/checkpoints/last --config configs/quickstart-poisoned.yaml', 'embed the (poisoned) training set with a saved model and score it');
}

/** Labels from a 0/1 .npy vector or a poison.json (`indices`). */
export function readLabels(path: string, n: number): Uint8Array {
  if (!existsSync(path)) throw new UserError(`labels file not found: ${path}`, 'LABELS_MISSING');
  if (path.endsWith('.json')) {
    const json = JSON.parse(readFileSync(path, 'utf8')) as { indices?: unknown };
    if (!Array.isArray(json.indices)) throw new UserError(`${path}: expected a poison.json with an "indices" list`, 'LABELS_INVALID');
    const mask = new Uint8Array(n);
    for (const i of json.indices) {
      if (!Number.isInteger(i) || i < 0 || i >= n) throw new UserError(`${path}: poison index ${JSON.stringify(i)} is outside 0..${n - 1}`, 'LABELS_INVALID', 'the labels must belong to the same embeddings (same sample order)');
      mask[i] = 1;
    }
    return mask;
  }
  const arr = readNpy(path);
  if (arr.shape.length !== 1 || arr.shape[0] !== n) {
    throw new UserError(`${path}: labels must be a 1-D array of ${n} zeros and ones, found shape (${arr.shape.join(', ')})`, 'LABELS_INVALID');
  }
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = Number(arr.data[i]);
    if (v !== 0 && v !== 1) throw new UserError(`${path}: label ${v} at position ${i} is not 0 or 1`, 'LABELS_INVALID');
    mask[i] = v;
  }
  return mask;
}

function printReport(report: ScoreReport, out: string): void {
  const lines = [`scored ${report.n} samples with ${report.detector} (k=${report.k}, reference ${report.reference}) in ${report.seconds.toFixed(2)} s: ${out}`];
  if (report.metrics) {
    const m = report.metrics;
    const f = (v: number | null) => (v === null ? 'n/a' : v.toFixed(4));
    lines.push(`AUROC ${f(m.auroc)}  AUPRC ${f(m.auprc)}  FPR@95%TPR ${f(m.fprAt95Tpr)}  recall@#poisons ${f(m.recallAtPositives)}  (${m.positives} poisoned)`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

export async function handler(argv: Record<string, unknown>): Promise<void> {
  const filter: Record<string, unknown> = { ...((argv.filter as object) ?? {}) };
  if (argv.detector !== undefined) filter.detector = argv.detector;
  if (argv.k !== undefined) filter.k = argv.k;
  if (argv.reference !== undefined) filter.reference = argv.reference;
  if (argv.referenceSize !== undefined) filter.referenceSize = argv.referenceSize;
  const config = configFromArgv(argv, { filter }, ['embeddings', 'text-embeddings', 'textEmbeddings', 'anchor-embeddings', 'anchorEmbeddings', 'labels', 'checkpoint', 'detector', 'k', 'reference', 'reference-size', 'referenceSize', 'scores', 'save-embeddings', 'saveEmbeddings']);
  const out = resolve(argv.scores as string);
  if (argv.checkpoint) {
    const report = await scoreCheckpoint(config, argv.checkpoint as string, { saveEmbeddings: argv.saveEmbeddings as string | undefined, scoresCsv: out });
    printReport(report, out);
    return;
  }
  if (!argv.embeddings) throw new UserError('score needs --embeddings <file.npy> or --checkpoint <dir>', 'CLI_MISSING_INPUT', 'see `clip-backdoor-filter score --help`');
  const emb = readNpyMatrix(argv.embeddings as string);
  // matrices of the same samples as --embeddings, row for row
  const companion = (option: string, path: unknown) => {
    if (!path) return null;
    const m = readNpyMatrix(path as string);
    if (m.rows !== emb.rows || m.cols !== emb.cols) {
      throw new UserError(`--${option} has shape (${m.rows}, ${m.cols}) but --embeddings has (${emb.rows}, ${emb.cols}); they must match row for row`, 'CLI_SHAPE');
    }
    return m;
  };
  const text = companion('text-embeddings', argv.textEmbeddings);
  const anchor = companion('anchor-embeddings', argv.anchorEmbeddings);
  const labels = argv.labels ? readLabels(argv.labels as string, emb.rows) : null;
  const report = await scoreEmbeddings(config, { embeddings: emb.data, n: emb.rows, d: emb.cols, textEmbeddings: text?.data, anchorEmbeddings: anchor?.data, labels });
  writeScoreCsv(out, report.scores, labels);
  printReport(report, out);
}
