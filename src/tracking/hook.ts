import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';
import { flattenConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { HookContext, TrainEnd, TrainHook } from '../train/hooks.js';
import type { ArtifactRecord, MetricPoint, RunRecorder } from '../train/recorder.js';
import { UserError } from '../util/errors.js';
import { Delivery, type RetryOptions } from './delivery.js';
import { FileStoreSink } from './fileSink.js';
import { MlflowFileStore } from './filestore.js';
import { keyProblem, sanitizeKey, toInteger, toWireValue, truncateValue } from './keys.js';
import { MlflowRestClient } from './rest.js';
import { RestSink } from './restSink.js';
import { readRunFile, writeRunFile } from './runFile.js';
import type { TrackingSink } from './sink.js';
import { readSpool, SPOOL_FILE, SpoolWriter } from './spool.js';
import { currentUser, gitCommit, sourceName } from './system.js';
import { MLFLOW_LIMITS, type KeyValue, type MlflowRunStatus, type WireMetric } from './types.js';
import { makeRedactor, pickTrackingUri, redactingContentFilter, resolveTrackingTarget, type Redactor, type TrackingTarget } from './uri.js';

/** Options of {@link mlflowTracking}; each one overrides the matching `tracking.*` config key. */
export interface MlflowTrackingOptions {
  /** `./mlruns`, `file:///abs/mlruns` or `http(s)://host:port` (default: tracking.uri, $MLFLOW_TRACKING_URI, ./mlruns). */
  uri?: string;
  /** Experiment name (default tracking.experiment). */
  experiment?: string;
  /** Run name (default tracking.runName, else the output directory's name). */
  runName?: string;
  /** Extra run tags, merged over tracking.tags. */
  tags?: Record<string, string>;
  /** Upload `<out>/checkpoints/last` as artifacts (default tracking.logModel). */
  logModel?: boolean;
  /** Environment for MLFLOW_TRACKING_URI and the credentials (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where messages go (default the context's `log`). Every message is free of credentials. */
  log?: (message: string) => void;
  /** Per-request timeout towards a tracking server (default 10 s). */
  timeoutMs?: number;
  /** Longest wait in onTrainBegin for the server to create the run before training starts anyway (default: timeoutMs). */
  openWaitMs?: number;
  /** Longest wait in onTrainEnd for pending records of a finished or failed run (default 30 s). */
  finalWaitMs?: number;
  /** The same for a killed run (SIGINT/SIGTERM), kept short (default 3 s). */
  killedWaitMs?: number;
  /** Backoff between retries (default 0.5 s doubling up to 30 s, with jitter). */
  retry?: RetryOptions;
  /** For tests: the fetch implementation (default the global fetch). */
  fetch?: typeof fetch;
}

const END_STATUS: Record<string, MlflowRunStatus> = { finished: 'FINISHED', failed: 'FAILED', killed: 'KILLED' };

/** Name of the resolved config written next to the run's outputs and uploaded as `config.json`. */
export const CONFIG_FILE = 'mlflow-config.json';

/** Everything a started run needs; absent when tracking is off or onTrainBegin has not run. */
interface Session {
  target: TrackingTarget;
  sink: TrackingSink;
  delivery: Delivery;
  spool: SpoolWriter | null;
  redact: Redactor;
  log: (message: string) => void;
  outDir: string;
  runName: string;
  logModel: boolean;
  /** Signature (size and mtime) of every artifact queued so far, by artifact path. */
  queuedArtifacts: Map<string, string>;
  closed: boolean;
}

/** Build a stand-alone sink for a resolved target (also used by syncSpool). */
export function createSink(
  target: TrackingTarget,
  rawUri: string,
  options: { env: NodeJS.ProcessEnv; timeoutMs?: number; fetch?: typeof fetch; redact: Redactor },
): TrackingSink {
  const filter = redactingContentFilter(options.redact);
  if (target.kind === 'file') return new FileStoreSink(new MlflowFileStore(target.root), filter);
  return new RestSink(new MlflowRestClient({ uri: rawUri, env: options.env, timeoutMs: options.timeoutMs, fetch: options.fetch, redact: options.redact }), filter);
}

/** How to replay a spool: printed whenever one is left behind. */
export const syncCommand = (outDir: string): string => `clip-backdoor-filter mlflow-sync ${outDir}`;

/**
 * The MLflow tracking hook (name `mlflow`); it only uses the HookContext.
 *
 * - onTrainBegin: resolves the tracking URI (option, `tracking.uri`,
 *   `$MLFLOW_TRACKING_URI`, `./mlruns`), gets or creates the experiment,
 *   creates the run (or continues the one in `<out>/mlflow-run.json`), logs
 *   the flattened config as params and the run tags, and subscribes to the
 *   recorder's metrics and artifacts. Throws a UserError only for problems
 *   the user must fix first (unsupported URI, rejected credentials, deleted
 *   experiment, unwritable store); an unreachable server is not one of them.
 * - during training: every metric batch is queued (never awaited) and sent
 *   in order, merged into `log-batch` calls.
 * - onTrainEnd: queues the registered artifacts, `summary.json`, the
 *   resolved config (`config.json`) and, with `logModel`, `checkpoints/last/`;
 *   sets FINISHED / FAILED / KILLED with the end time; waits a bounded time
 *   (short when killed) for delivery and leaves anything undelivered in
 *   `<out>/mlflow-spool.jsonl` for `clip-backdoor-filter mlflow-sync <out>`.
 *   It never throws. Register this hook after hooks that log or register
 *   artifacts in their own onTrainEnd.
 */
export function mlflowTracking(options: MlflowTrackingOptions = {}): TrainHook {
  let session: Session | null = null;
  const warned = new Set<string>();
  /** Per recorder: how many of its history points were queued (or belong to an earlier process). */
  const handled = new WeakMap<RunRecorder, number>();

  const warnOnce = (s: Session, key: string, message: string): void => {
    if (warned.has(key)) return;
    warned.add(key);
    s.log(message);
  };

  /** A key MLflow accepts; a bad one is sanitised and reported once. */
  const validKey = (s: Session, kind: string, key: string): string => {
    const problem = keyProblem(key);
    if (!problem) return key;
    const fixed = sanitizeKey(key);
    warnOnce(s, `key:${kind}:${key}`, `${kind} name "${key}" is not valid in MLflow (${problem}); logged as "${fixed}"`);
    return fixed;
  };

  const truncated: string[] = [];
  const limitValue = (key: string, value: string, limit: number): string => {
    const t = truncateValue(value, limit);
    if (t.truncated) truncated.push(`${key} (${value.length} characters)`);
    return t.value;
  };

  const queuePoints = (s: Session, points: readonly MetricPoint[]): void => {
    const metrics: WireMetric[] = points.map((p) => ({
      key: validKey(s, 'metric', p.key),
      value: toWireValue(p.value),
      timestamp: toInteger(p.timestamp),
      step: toInteger(p.step),
    }));
    for (let i = 0; i < metrics.length; i += MLFLOW_LIMITS.metricsPerBatch) {
      s.delivery.enqueue({ op: 'batch', batch: { metrics: metrics.slice(i, i + MLFLOW_LIMITS.metricsPerBatch), params: [], tags: [] } });
    }
  };

  const listenTo = (recorder: RunRecorder): void => {
    recorder.onMetrics((points) => {
      const s = session;
      if (!s || s.closed) return;
      queuePoints(s, points);
      // The recorder adds points to its history before it calls listeners.
      handled.set(recorder, recorder.history.length);
    });
    recorder.onArtifact(onArtifact);
  };

  const queueArtifact = (s: Session, path: string, artifactPath: string, onlyIfChanged: boolean): void => {
    let sig: string;
    try {
      const st = statSync(path);
      if (!st.isFile()) return;
      sig = `${st.size}:${st.mtimeMs}`;
    } catch {
      warnOnce(s, `missing:${path}`, `artifact ${artifactPath} (${path}) does not exist; not uploaded`);
      return;
    }
    if (onlyIfChanged && s.queuedArtifacts.get(artifactPath) === sig) return;
    s.queuedArtifacts.set(artifactPath, sig);
    s.delivery.enqueue({ op: 'artifact', path, artifactPath: safeArtifactPath(artifactPath) });
  };

  const onArtifact = (a: ArtifactRecord): void => {
    const s = session;
    if (!s || s.closed) return;
    queueArtifact(s, a.path, a.artifactPath, false);
  };

  return {
    name: 'mlflow',

    async onTrainBegin(ctx: HookContext): Promise<void> {
      const cfg = ctx.config.tracking;
      if (cfg.enabled === false) return;
      const env = options.env ?? process.env;
      const rawUri = pickTrackingUri(options.uri ?? cfg.uri, env);
      const redact = makeRedactor(env, [rawUri, options.uri, cfg.uri]);
      const baseLog = options.log ?? ((m: string) => ctx.log(m));
      const log = (m: string): void => baseLog(redact(`mlflow: ${m}`));
      let target: TrackingTarget;
      try {
        target = resolveTrackingTarget(rawUri);
      } catch (e) {
        if (e instanceof UserError) throw new UserError(redact(e.message), e.code, e.hint && redact(e.hint));
        throw e;
      }
      mkdirSync(ctx.outDir, { recursive: true });
      const sink = createSink(target, rawUri, { env, timeoutMs: options.timeoutMs, fetch: options.fetch, redact });

      let previous = readRunFile(ctx.outDir);
      if (previous && previous.uri !== sink.uri) {
        log(`${join(ctx.outDir, 'mlflow-run.json')} names run ${previous.runId} in ${previous.uri}, but this run logs to ${sink.uri}: starting a new MLflow run`);
        previous = null;
      }

      const spoolPath = join(ctx.outDir, SPOOL_FILE);
      const loaded = readSpool(spoolPath);
      let spool: SpoolWriter | null = null;
      if (loaded && loaded.pending.length && loaded.uri !== sink.uri) {
        if (target.kind === 'http') {
          throw new UserError(
            redact(`${spoolPath} holds ${loaded.pending.length} record(s) not yet delivered to ${loaded.uri ?? 'an MLflow server'}, but this run logs to ${sink.uri}`),
            'TRACKING_SPOOL_PENDING',
            redact(`replay them first with \`${syncCommand(ctx.outDir)}\` (or delete the file to discard them), or log to ${loaded.uri ?? 'that server'} again`),
          );
        }
        log(`${spoolPath} holds ${loaded.pending.length} record(s) for ${loaded.uri}; they are left alone (replay with \`${syncCommand(ctx.outDir)}\`)`);
      }
      if (target.kind === 'http') {
        spool = new SpoolWriter(spoolPath, sink.uri, redact);
        // A spool whose records were all delivered is finished business: start a fresh one.
        if (loaded && !loaded.pending.length) spool.remove();
      }

      const delivery = new Delivery({
        sink,
        spool,
        previous,
        onOpened: (run) => writeRunFile(ctx.outDir, run),
        log,
        retry: options.retry,
        spoolHint: `replay with \`${syncCommand(ctx.outDir)}\``,
      });
      const s: Session = {
        target,
        sink,
        delivery,
        spool,
        redact,
        log,
        outDir: ctx.outDir,
        runName: options.runName ?? cfg.runName ?? (basename(ctx.outDir) || 'run'),
        logModel: options.logModel ?? cfg.logModel,
        queuedArtifacts: new Map(),
        closed: false,
      };
      if (spool && loaded?.pending.length) {
        spool.open();
        log(`replaying ${loaded.pending.length} record(s) left in ${spoolPath} by an earlier run`);
        delivery.load(loaded.pending, loaded.unsure, loaded.maxSeq);
      }

      truncated.length = 0;
      const tags = runTags(ctx, { ...cfg.tags, ...options.tags }, s.runName, env).map((t) => {
        const key = validKey(s, 'tag', t.key);
        return { key, value: limitValue(key, redact(t.value), MLFLOW_LIMITS.tagValueLength) };
      });
      const params = new Map<string, string>();
      for (const [k, v] of flattenConfig(ctx.config)) {
        const key = validKey(s, 'param', k);
        if (params.has(key)) continue;
        params.set(key, limitValue(key, redact(v), MLFLOW_LIMITS.paramValueLength));
      }
      if (truncated.length) {
        log(`${truncated.length} param/tag value(s) exceed MLflow's length limits and were cut, ending in "...[truncated]": ${truncated.slice(0, 3).join(', ')}${truncated.length > 3 ? ', ...' : ''}`);
      }

      const openSeq = delivery.enqueue({
        op: 'open',
        request: { experiment: options.experiment ?? cfg.experiment, runName: s.runName, userId: currentUser(env), startTime: Date.now(), tags },
      });
      const paramList: KeyValue[] = [...params].map(([key, value]) => ({ key, value }));
      for (let i = 0; i < paramList.length; i += MLFLOW_LIMITS.paramsPerBatch) {
        delivery.enqueue({ op: 'batch', batch: { metrics: [], params: paramList.slice(i, i + MLFLOW_LIMITS.paramsPerBatch), tags: [] } });
      }
      writeFileSync(join(ctx.outDir, CONFIG_FILE), `${redact(JSON.stringify(ctx.config, null, 2))}\n`);

      await delivery.settle(openSeq, options.openWaitMs ?? options.timeoutMs ?? 10_000);
      if (delivery.isHalted) {
        // Misconfiguration (credentials, deleted experiment, unwritable store): say so before training, not after.
        const err = delivery.fatal!;
        delivery.abandon(openSeq);
        await delivery.stop();
        spool?.close();
        if (loaded?.pending.length === 0 || !loaded) spool?.remove();
        throw new UserError(redact(`MLflow tracking could not start the run on ${sink.uri}: ${err.message}`), 'TRACKING_FAILED', redact(
          err.details.hint ?? 'fix tracking.uri / MLFLOW_TRACKING_URI, or turn tracking off with --tracking.enabled false',
        ));
      }

      session = s;
      // Points this hook has not queued yet: logged before it subscribed (an earlier hook's
      // onTrainBegin) or between two trainings. Points restored from a checkpoint are older
      // than this process: the earlier run sent them.
      const recorder = ctx.recorder;
      const since = Math.floor(performance.timeOrigin);
      const unseen = recorder.history.slice(handled.get(recorder) ?? 0).filter((p) => p.timestamp >= since);
      if (unseen.length) queuePoints(s, unseen);
      // The recorder cannot unsubscribe: listen once per recorder, and route to the current session.
      if (!handled.has(recorder)) listenTo(recorder);
      handled.set(recorder, recorder.history.length);

      const run = delivery.openedRun;
      if (run && !delivery.inOutage) {
        log(`${run.resumed ? 'continuing' : 'logging to'} run "${s.runName}" (${run.runId}) of experiment "${options.experiment ?? cfg.experiment}" in ${sink.uri}`);
      }
    },

    async onTrainEnd(ctx: HookContext, end: TrainEnd): Promise<void> {
      const s = session;
      if (!s || s.closed) return;
      const { delivery, log } = s;
      const status = END_STATUS[end.status] ?? 'FAILED';
      try {
        for (const a of ctx.recorder.artifacts) queueArtifact(s, a.path, a.artifactPath, true);
        const summaryPath = join(ctx.outDir, 'summary.json');
        if (existsSync(summaryPath)) queueArtifact(s, summaryPath, 'summary.json', true);
        else log(`${summaryPath} is missing; not uploaded`);
        queueArtifact(s, join(ctx.outDir, CONFIG_FILE), 'config.json', true);
        if (s.logModel) {
          const ckpt = join(ctx.outDir, 'checkpoints', 'last');
          const files = listFiles(ckpt);
          if (!files.length) log(`tracking.logModel is on but ${ckpt} holds no checkpoint; no model uploaded`);
          for (const f of files) queueArtifact(s, f, `checkpoints/last/${relative(ckpt, f).split(sep).join('/')}`, true);
        }
        delivery.enqueue({ op: 'end', status, endTime: Date.now() });
        s.closed = true;

        const waitMs = status === 'KILLED' ? (options.killedWaitMs ?? 3000) : (options.finalWaitMs ?? 30_000);
        if (delivery.inOutage && delivery.pending) log(`waiting up to ${Math.round(waitMs / 1000)} s for ${s.sink.uri} to take ${delivery.pending} pending record(s)`);
        await delivery.drain(waitMs);
        await delivery.stop();
        for (const line of delivery.repeatedReports()) log(line);
        finish(s, status);
      } catch (e) {
        // Training is over; a tracking problem must not turn its result into an error.
        log(`could not finish the run: ${(e as Error)?.message ?? String(e)}`);
        try {
          s.delivery.spoolPending();
          s.spool?.close();
        } catch {
          /* already reported */
        }
      } finally {
        s.closed = true;
        session = null;
      }
    },
  };
}

function finish(s: Session, status: MlflowRunStatus): void {
  const { delivery, log, spool } = s;
  const run = delivery.openedRun;
  if (delivery.pending) {
    delivery.spoolPending();
    spool?.close();
    const why = delivery.fatal ? delivery.fatal.message : `${s.sink.uri} did not answer in time`;
    log(
      `${delivery.pending} record(s) could not be delivered (${why}); they are kept in ${spool?.path ?? 'memory only'}. ` +
        `Replay them with: ${syncCommand(s.outDir)}`,
    );
    return;
  }
  spool?.remove();
  if (!run) return;
  const dropped = delivery.stats.dropped ? ` (${delivery.stats.dropped} record(s) rejected, see above)` : '';
  if (s.target.kind === 'file') {
    log(`run "${s.runName}" (${run.runId}) ${status} in ${s.target.root}${dropped}; view it with: mlflow ui --backend-store-uri ${s.target.uri}`);
  } else {
    log(`run "${s.runName}" (${run.runId}) ${status}${dropped}: ${s.sink.uri}/#/experiments/${run.experimentId}/runs/${run.runId}`);
  }
}

/** Run tags: dataset/attack/detector/backend, MLflow's system tags, then the user's (which win, except the run name). */
export function runTags(ctx: HookContext, userTags: Readonly<Record<string, string>>, runName: string, env: NodeJS.ProcessEnv = process.env): KeyValue[] {
  const config: Config = ctx.config;
  const tags = new Map<string, string>();
  tags.set('dataset', ctx.trainSet?.name || config.data.kind);
  tags.set('attack', config.poison?.attack ?? 'none');
  tags.set('detector', config.filter.enabled ? config.filter.detector : 'none');
  tags.set('backend', ctx.backend);
  tags.set('mlflow.source.name', sourceName());
  tags.set('mlflow.source.type', 'LOCAL');
  tags.set('mlflow.user', currentUser(env));
  const commit = gitCommit(process.cwd());
  if (commit) tags.set('mlflow.source.git.commit', commit);
  for (const [k, v] of Object.entries(userTags)) tags.set(k, String(v));
  tags.set('mlflow.runName', runName);
  return [...tags].map(([key, value]) => ({ key, value }));
}

/** Artifact paths come from other modules: keep them inside the run's artifact directory. */
function safeArtifactPath(path: string): string {
  const parts = path
    .replace(/\\/g, '/')
    .split('/')
    .filter((p) => p !== '' && p !== '.')
    .map((p) => (p === '..' ? '__' : p));
  return parts.join('/') || 'artifact';
}

function listFiles(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}
