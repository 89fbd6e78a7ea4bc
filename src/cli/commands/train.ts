import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { readConfigFile, resolveConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { runPipeline } from '../../pipeline.js';
import { UserError } from '../../util/errors.js';
import { createReporter } from '../../util/progress.js';
import { configFromArgv, withRunOptions } from '../common.js';
import { abortOnSignals } from '../signals.js';

export const command = 'train';
export const describe = 'pretrain a CLIP (optionally poisoned, optionally with the backdoor filter)';

export function builder(y: Argv) {
  return withRunOptions(y)
    .option('backdoor-filter', { type: 'boolean', describe: 'switch on the backdoor filter (options under --filter.*)' })
    .option('resume', { type: 'string', describe: 'continue the run in this output directory from its last checkpoint' })
    .example('$0 train --config configs/quickstart.yaml --out runs/q', 'clean quickstart run on the built-in synthetic data')
    .example('$0 train --config configs/fashion-mnist.yaml --poison.attack badnets --poison.rate 0.01 --poison.target "ankle boot" --backdoor-filter', 'poisoned Fashion-MNIST with the filter');
}

function resumeConfig(dir: string): Config {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) {
    throw new UserError(`cannot resume ${dir}: it has no config.json`, 'CHECKPOINT_MISSING', 'pass the --out directory of an earlier train run');
  }
  return resolveConfig({ ...readConfigFile(path), out: resolve(dir) });
}

export async function handler(argv: Record<string, unknown>): Promise<void> {
  const config = argv.resume
    ? resumeConfig(argv.resume as string)
    : configFromArgv(argv, argv.backdoorFilter ? { filter: { ...((argv.filter as object) ?? {}), enabled: true } } : {}, ['backdoor-filter', 'backdoorFilter', 'resume']);
  const reporter = createReporter({ quiet: config.quiet });
  const signals = abortOnSignals((sig) => reporter.warn(`${sig} received: stopping after this batch (send again to exit now)`));
  try {
    const result = await runPipeline(config, { reporter, signal: signals.signal, resume: Boolean(argv.resume) });
    const s = result.summary;
    reporter.info(
      `done (${result.status}) in ${s.timings.totalSeconds.toFixed(1)} s: clean accuracy ${s.eval.cleanAccuracy?.toFixed(4) ?? 'n/a'}` +
        (s.eval.attackSuccessRate !== null ? `, attack success rate ${s.eval.attackSuccessRate.toFixed(4)}` : '') +
        `; summary: ${join(result.setup.outDir, 'summary.json')}`,
    );
    if (result.status === 'killed') process.exitCode = signals.received() === 'SIGINT' ? 130 : 143;
  } finally {
    signals.dispose();
  }
}
