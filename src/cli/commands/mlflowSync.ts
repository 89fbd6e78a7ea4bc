import type { Argv } from 'yargs';
import { syncSpool } from '../../tracking/index.js';

export const command = 'mlflow-sync <out>';
export const describe = 'replay MLflow records a run could not deliver (its tracking server was down) into the same MLflow run';

export function builder(y: Argv) {
  return y
    .positional('out', { type: 'string', describe: 'the run directory holding mlflow-spool.jsonl', demandOption: true })
    .option('uri', { type: 'string', describe: 'server to replay to (default: the one the run used; credentials from MLFLOW_TRACKING_* env)' })
    .option('wait', { type: 'number', default: 60, describe: 'seconds to keep retrying while the server does not answer' })
    .example('$0 mlflow-sync runs/b', 'deliver what runs/b/mlflow-spool.jsonl still holds');
}

export async function handler(argv: Record<string, unknown>): Promise<void> {
  const result = await syncSpool(argv.out as string, {
    env: process.env,
    log: (m) => process.stderr.write(`${m}\n`),
    uri: argv.uri as string | undefined,
    waitMs: (argv.wait as number) * 1000,
  });
  process.stdout.write(`delivered ${result.delivered}, dropped ${result.dropped} (rejected by the server), pending ${result.pending}\n`);
  if (result.pending > 0) process.exitCode = 1;
}
