import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';
import { Delivery, type RetryOptions } from './delivery.js';
import { createSink, syncCommand } from './hook.js';
import { readRunFile, writeRunFile } from './runFile.js';
import { readSpool, SPOOL_FILE, SpoolWriter } from './spool.js';
import { makeRedactor, resolveTrackingTarget, stripUrlCredentials } from './uri.js';

export interface SyncSpoolOptions {
  /** Environment for credentials and MLFLOW_TRACKING_URI (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where messages go (default stderr). */
  log?: (message: string) => void;
  /** Server to replay to; default the URI recorded in the spool (a moved server keeps its runs: only change the address). */
  uri?: string;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
  /** How long to keep retrying while the server does not answer (default 60 s). */
  waitMs?: number;
  retry?: RetryOptions;
  fetch?: typeof fetch;
}

export interface SyncResult {
  /** Records the server accepted. */
  delivered: number;
  /** Records the server rejected for good (reported, not retried again). */
  dropped: number;
  /** Records still in the spool (server unreachable or a fatal error): run the command again later. */
  pending: number;
}

/**
 * Replay `<outDir>/mlflow-spool.jsonl`, the records a run could not deliver
 * to its tracking server, in order and each once, into the same MLflow run
 * (`<outDir>/mlflow-run.json`). Delivered records are acknowledged in the
 * spool as they go, so an interrupted sync can simply be run again; the
 * file is deleted once nothing is pending. Credentials come from
 * MLFLOW_TRACKING_USERNAME/_PASSWORD or _TOKEN (or a MLFLOW_TRACKING_URI
 * with user info for the same server). Backs the CLI command
 * `clip-backdoor-filter mlflow-sync <out>`, which should exit non-zero when
 * `pending > 0`.
 */
export async function syncSpool(outDir: string, options: SyncSpoolOptions = {}): Promise<SyncResult> {
  const env = options.env ?? process.env;
  const spoolPath = join(outDir, SPOOL_FILE);
  const loaded = readSpool(spoolPath);
  const previous = readRunFile(outDir);
  const recorded = loaded?.uri ?? previous?.uri ?? null;
  // The recorded URI has no credentials: take the environment's URI when it names the same server.
  const envUri = env.MLFLOW_TRACKING_URI?.trim();
  const rawUri = options.uri ?? (envUri && recorded && stripUrlCredentials(envUri).replace(/\/+$/, '') === recorded ? envUri : recorded);
  const redact = makeRedactor(env, [rawUri ?? undefined, options.uri]);
  const log = (m: string): void => (options.log ?? ((x: string) => process.stderr.write(`${x}\n`)))(redact(`mlflow-sync: ${m}`));

  if (!loaded) {
    log(`nothing to replay: ${spoolPath} does not exist`);
    return { delivered: 0, dropped: 0, pending: 0 };
  }
  if (loaded.badLines) log(`${loaded.badLines} damaged line(s) in ${spoolPath} were skipped`);
  if (!loaded.pending.length) {
    new SpoolWriter(spoolPath, '', redact).remove();
    log(`nothing to replay: every record in ${spoolPath} was delivered (file removed)`);
    return { delivered: 0, dropped: 0, pending: 0 };
  }
  if (!rawUri) {
    throw new UserError(`${spoolPath} does not say which MLflow server it is for`, 'TRACKING_SYNC', 'pass the server URI (mlflow-sync --uri http://host:port)');
  }
  const target = resolveTrackingTarget(rawUri);
  if (target.kind !== 'http') {
    throw new UserError(redact(`mlflow-sync replays to a tracking server, got ${rawUri}`), 'TRACKING_SYNC', 'pass the http(s) URI of the MLflow server');
  }
  const sink = createSink(target, rawUri, { env, timeoutMs: options.timeoutMs, fetch: options.fetch, redact });
  const hasOpen = loaded.pending.some((r) => r.op === 'open');
  const run = previous && previous.uri === sink.uri ? previous : previous && options.uri ? { ...previous, uri: sink.uri } : null;
  if (!hasOpen && !run) {
    throw new UserError(
      `cannot replay ${spoolPath}: ${existsSync(join(outDir, 'mlflow-run.json')) ? 'mlflow-run.json names a different server' : 'mlflow-run.json is missing'}, so the MLflow run is unknown`,
      'TRACKING_SYNC',
      'restore <out>/mlflow-run.json from the run, or pass --uri of the server it names',
    );
  }
  const spool = new SpoolWriter(spoolPath, sink.uri, redact);
  spool.open();
  const delivery = new Delivery({ sink, spool, previous: run, onOpened: (r) => writeRunFile(outDir, r), log, retry: options.retry, spoolHint: `run \`${syncCommand(outDir)}\` again` });
  log(`replaying ${loaded.pending.length} record(s) to ${sink.uri}`);
  delivery.load(loaded.pending, loaded.unsure, loaded.maxSeq);
  await delivery.drain(options.waitMs ?? 60_000);
  await delivery.stop();
  for (const line of delivery.repeatedReports()) log(line);
  const result = { delivered: delivery.stats.delivered, dropped: delivery.stats.dropped, pending: delivery.pending };
  if (result.pending) {
    spool.close();
    log(`${result.pending} record(s) still pending in ${spoolPath}${delivery.fatal ? ` (${delivery.fatal.message})` : ''}; run \`${syncCommand(outDir)}\` again later`);
  } else {
    spool.remove();
    const opened = delivery.openedRun;
    log(`replayed ${result.delivered} record(s)${result.dropped ? `, ${result.dropped} rejected` : ''}${opened ? ` into run ${opened.runId}` : ''}; ${spoolPath} removed`);
  }
  return result;
}
