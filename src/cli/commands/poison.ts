import { join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { preparePoison } from '../../attacks/prepare.js';
import { writePreviewGrid } from '../../attacks/preview.js';
import { loadSplits } from '../../data/index.js';
import { createReporter } from '../../util/progress.js';
import { configFromArgv, withRunOptions } from '../common.js';
import { mkdirSync } from 'node:fs';

export const command = 'poison';
export const describe = 'poison a dataset without training: write poison.json and a preview grid of every trigger';

export function builder(y: Argv) {
  return withRunOptions(y)
    .option('preview', { type: 'number', default: 16, describe: 'samples per row of the preview grid (0 = no grid)' })
    .option('mode', { choices: ['train', 'test'] as const, default: 'train', describe: 'preview the training-time triggers (random patch positions, multi-trigger draws) or the test-time ones' })
    .example('$0 poison --config configs/fashion-mnist-badnets.yaml --out runs/p --preview 16', 'poison.json + runs/p/poison-preview.png');
}

export async function handler(argv: Record<string, unknown>): Promise<void> {
  const config = configFromArgv(argv, {}, ['preview', 'mode']);
  const reporter = createReporter({ quiet: config.quiet });
  const out = resolve(config.out ?? 'runs/poison');
  mkdirSync(out, { recursive: true });
  const splits = await loadSplits(config);
  if (config.poison) {
    const prepared = await preparePoison(config, splits, out);
    if (prepared) {
      const s = prepared.summary;
      reporter.info(`poisoned ${s.count} of ${splits.train.size} samples (${(s.rate * 100).toFixed(3)}%) with ${s.attack} -> "${s.target}": ${join(out, 'poison.json')}`);
    }
  } else {
    reporter.info('no poison section in the config: writing the preview only (set --poison.attack and --poison.target to poison)');
  }
  const count = argv.preview as number;
  if (count > 0) {
    const cfg = config.poison ?? { attack: 'badnets', target: splits.train.classNames?.[0] ?? '0' };
    const grid = await writePreviewGrid(join(out, 'poison-preview.png'), splits.train, cfg, { count, seed: config.poison?.seed ?? config.seed, mode: argv.mode as 'train' | 'test' });
    reporter.info(`preview (${grid.rows.join(', ')}; clean | triggered pairs): ${grid.path}`);
  }
}
