import type { Argv } from 'yargs';
import { loadConfig, readConfigFile, resolveConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { configOverridesFromArgv, unknownDottedOptions } from './overrides.js';
import { UserError } from '../util/errors.js';

/** Options shared by every command that runs a model. */
export function withRunOptions<T>(y: Argv<T>) {
  return y
    .option('config', { alias: 'c', type: 'string', describe: 'YAML or JSON config file (see configs/)' })
    .option('out', { alias: 'o', type: 'string', describe: 'output directory (default: runs/run-<time>)' })
    .option('epochs', { type: 'number', describe: 'shorthand for --train.epochs' })
    .option('seed', { type: 'number', describe: 'run seed (data, poison, init, shuffling)' })
    .option('backend', { choices: ['auto', 'tensorflow', 'wasm', 'cpu'] as const, describe: 'tfjs backend (auto: native TensorFlow, else wasm, else cpu)' })
    .option('quiet', { alias: 'q', type: 'boolean', describe: 'no progress output' })
    .epilog(
      'Any config key can be overridden with dot notation, e.g. --data.size 2000 --model.embedDim 64 --poison.attack badnets. ' +
        'Unknown keys and wrong types are errors.',
    );
}

export const RUN_OPTION_NAMES = ['config', 'c', 'out', 'o', 'epochs', 'seed', 'backend', 'quiet', 'q', 'help', 'version'];

/** Throws a UserError naming every option that is neither a run option, one of `knownOptions`, nor a config key. */
export function rejectStrayOptions(argv: Record<string, unknown>, knownOptions: readonly string[] = []): void {
  const stray = unknownDottedOptions(argv, [...RUN_OPTION_NAMES, ...knownOptions]);
  if (stray.length) {
    throw new UserError(
      `unknown option${stray.length > 1 ? 's' : ''}: ${stray.map((s) => `--${s}`).join(', ')}`,
      'CLI_UNKNOWN_OPTION',
      'config keys start with a section name (data, model, train, eval, poison, filter, tracking), e.g. --model.embedDim 64; see --help',
    );
  }
}

/** Config file + shorthands + dotted overrides, validated once. */
export function configFromArgv(argv: Record<string, unknown>, extra: Record<string, unknown> = {}, knownOptions: readonly string[] = []): Config {
  rejectStrayOptions(argv, knownOptions);
  const overrides: Record<string, unknown> = { ...configOverridesFromArgv(argv), ...extra };
  const top: Record<string, unknown> = {};
  if (argv.out !== undefined) top.out = argv.out;
  if (argv.seed !== undefined) top.seed = argv.seed;
  if (argv.backend !== undefined) top.backend = argv.backend;
  if (argv.quiet !== undefined) top.quiet = argv.quiet;
  if (argv.epochs !== undefined) {
    const train = (overrides.train ?? {}) as Record<string, unknown>;
    overrides.train = { ...train, epochs: argv.epochs };
  }
  return loadConfig({ file: argv.config as string | undefined, overrides: { ...overrides, ...top } as never });
}

export { readConfigFile, resolveConfig };
