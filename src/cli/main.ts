#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { formatError, HookError, isUserError } from '../util/errors.js';
import * as compare from './commands/compare.js';
import * as data from './commands/data.js';
import * as demo from './commands/demo.js';
import * as mlflowSync from './commands/mlflowSync.js';
import * as poison from './commands/poison.js';
import * as score from './commands/score.js';
import * as train from './commands/train.js';

/** Errors users can fix print one clean message; bugs keep their stack (or always with CBF_DEBUG=1). */
function fail(error: unknown): never {
  const debug = process.env.CBF_DEBUG === '1';
  const userFixable = isUserError(error) || (error instanceof HookError && isUserError(error.cause));
  process.stderr.write(`error: ${formatError(error)}\n`);
  if (debug || !userFixable) {
    const stack = error instanceof HookError && error.cause instanceof Error ? error.cause.stack : error instanceof Error ? error.stack : undefined;
    if (stack && (debug || !userFixable)) process.stderr.write(`${stack}\n`);
  }
  process.exit(isUserError(error) ? 2 : 1);
}

export async function main(args: string[]): Promise<void> {
  await yargs(args)
    .scriptName('clip-backdoor-filter')
    .usage('$0 <command> [options]\n\nCLIP pretraining in TensorFlow.js with a backdoor-sample filter (local outlier detection on embeddings).')
    .command(train.command, train.describe, train.builder, train.handler)
    .command(poison.command, poison.describe, poison.builder, poison.handler)
    .command(score.command, score.describe, score.builder, score.handler)
    .command(mlflowSync.command, mlflowSync.describe, mlflowSync.builder, mlflowSync.handler)
    .command(compare.command, compare.describe, compare.builder, compare.handler)
    .command(data.command, data.describe, data.builder, data.handler)
    .command(demo.command, demo.describe, demo.builder, demo.handler)
    .demandCommand(1, 'name a command, e.g. `clip-backdoor-filter train --config configs/quickstart.yaml`')
    .strictCommands()
    .parserConfiguration({ 'dot-notation': true, 'camel-case-expansion': true })
    .fail((msg, err) => {
      if (err) fail(err);
      process.stderr.write(`error: ${msg}\nrun with --help for usage\n`);
      process.exit(2);
    })
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(120, process.stdout.columns || 100))
    .parseAsync();
}

main(hideBin(process.argv)).catch(fail);
