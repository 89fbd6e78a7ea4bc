import { join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { loadConfig } from '../../config/load.js';
import { compareRun, formatComparisonTable } from '../../eval/compare.js';
import { runPipeline } from '../../pipeline.js';
import { createReporter } from '../../util/progress.js';
import { abortOnSignals } from '../signals.js';
import { rejectStrayOptions } from '../common.js';
import { configOverridesFromArgv } from '../overrides.js';

export const command = 'demo';
export const describe = 'the main job in one command: a clean, a poisoned and a poisoned + filtered run, compared';

export function builder(y: Argv) {
  return y
    .option('config', { alias: 'c', type: 'string', default: 'configs/quickstart-poisoned.yaml', describe: 'a config with a poison section' })
    .option('out', { alias: 'o', type: 'string', default: 'runs/demo', describe: 'parent directory of the three runs' })
    .option('backend', { choices: ['auto', 'tensorflow', 'wasm', 'cpu'] as const, default: 'auto' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false })
    .option('seed', { type: 'number', describe: 'run seed of all three runs (data, poison, init, shuffling)' })
    .option('epochs', { type: 'number', describe: 'shorthand for --train.epochs' })
    .epilog('Any config key can be overridden with dot notation for all three runs, e.g. --poison.rate 0.005 --filter.k 8. Unknown keys and wrong types are errors.');
}

/**
 * Three runs of one config: `clean` (poison.count 0: nothing poisoned, the
 * trigger still measured, so its ASR is the baseline), `poisoned`, and
 * `filtered` (poisoned, with the backdoor filter).
 */
export async function handler(argv: Record<string, unknown>): Promise<void> {
  rejectStrayOptions(argv);
  const out = resolve(argv.out as string);
  const user = configOverridesFromArgv(argv) as Record<string, Record<string, unknown> | undefined>;
  if (argv.epochs !== undefined) user.train = { ...user.train, epochs: argv.epochs };
  const base = { ...user, backend: argv.backend, quiet: argv.quiet, ...(argv.seed !== undefined ? { seed: argv.seed } : {}) };
  // each variant's own keys go over the user's keys of the same section, not in place of them
  const variants: [string, Record<string, unknown>][] = [
    ['clean', { poison: { ...user.poison, count: 0 } }],
    ['poisoned', {}],
    ['filtered', { filter: { ...user.filter, enabled: true } }],
  ];
  const reporter = createReporter({ quiet: Boolean(argv.quiet) });
  const signals = abortOnSignals((sig) => reporter.warn(`${sig} received: stopping`));
  const rows = [];
  try {
    for (const [name, overrides] of variants) {
      const config = loadConfig({
        file: argv.config as string,
        overrides: { ...base, ...overrides, out: join(out, name), tracking: { ...user.tracking, runName: `demo-${name}` } } as never,
      });
      reporter.info(`\n== ${name}: ${config.poison && (config.poison.count ?? 1) > 0 ? `${config.poison.attack} poisoning` : 'no poisoning'}${config.filter.enabled ? ', backdoor filter on' : ''} ==`);
      const result = await runPipeline(config, { reporter, signal: signals.signal });
      rows.push(compareRun(result.summary, result.setup.outDir, name));
      if (result.status !== 'finished') break;
    }
  } finally {
    signals.dispose();
  }
  process.stdout.write(`\n${formatComparisonTable(rows)}\n`);
  process.stdout.write(`\nruns in ${out}; MLflow: mlflow ui --backend-store-uri ./mlruns\n`);
}
