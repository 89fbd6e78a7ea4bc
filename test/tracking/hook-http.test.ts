import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { flattenConfig } from '../../src/config/load.js';
import type { RawConfig } from '../../src/config/schema.js';
import { mlflowTracking, readSpool, syncSpool, type MlflowTrackingOptions } from '../../src/tracking/index.js';
import type { TrainHook } from '../../src/train/hooks.js';
import { fakeContext, tempDir, writeSummary, type FakeContext } from './fakeContext.js';
import { FakeMlflow, type FakeRun } from './fakeMlflow.js';

const FAST = { retry: { baseMs: 5, maxMs: 40 }, timeoutMs: 1000, finalWaitMs: 3000 } satisfies MlflowTrackingOptions;

let server: FakeMlflow;
let logs: string[];

beforeEach(async () => {
  server = new FakeMlflow();
  await server.start();
  logs = [];
});
afterEach(async () => {
  await server.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function context(config: RawConfig = {}, outDir = join(tempDir(), 'run-h')): FakeContext {
  mkdirSync(outDir, { recursive: true });
  return fakeContext({ outDir, config: { ...config, tracking: { uri: server.url, experiment: 'http-exp', ...(config.tracking ?? {}) } } });
}

function hookFor(options: MlflowTrackingOptions = {}): TrainHook {
  return mlflowTracking({ env: {}, log: (m) => logs.push(m), ...FAST, ...options });
}

function epoch(ctx: FakeContext, e: number): void {
  ctx.recorder.log({ 'train/loss': 1 / e, 'eval/clean_accuracy': e === 2 ? NaN : e / 10, 'filter/auroc': e === 3 ? -Infinity : 0.8 }, e);
}

async function finish(hook: TrainHook, ctx: FakeContext, status: 'finished' | 'failed' | 'killed' = 'finished'): Promise<void> {
  writeSummary(ctx, status);
  await hook.onTrainEnd!(ctx, { status });
}

function onlyRun(): FakeRun {
  expect(server.runs.size).toBe(1);
  return [...server.runs.values()][0];
}

const steps = (run: FakeRun, key: string) => (run.metrics.get(key) ?? []).map((m) => m.step);

describe('mlflowTracking with a tracking server', () => {
  it('logs params, metrics, tags and artifacts through the REST API and ends FINISHED', async () => {
    const ctx = context({ poison: { attack: 'blended', rate: 0.05, target: 'b' }, tracking: { tags: { sweep: 's1' } } });
    const hook = hookFor();
    await hook.onTrainBegin!(ctx);
    for (const e of [1, 2, 3]) epoch(ctx, e);
    const scores = join(ctx.outDir, 'scores-epoch1.csv');
    writeFileSync(scores, 'index,score\n');
    ctx.recorder.addArtifact(scores, 'scores/scores-epoch1.csv');
    await finish(hook, ctx);

    const run = onlyRun();
    expect(run.info).toMatchObject({ status: 'FINISHED', run_name: 'run-h', lifecycle_stage: 'active' });
    expect(typeof run.info.end_time).toBe('number');
    expect(Object.fromEntries(run.params)).toEqual(Object.fromEntries(flattenConfig(ctx.config).map(([k, v]) => (k === 'tracking.uri' ? [k, server.url] : [k, v]))));
    expect(run.tags.get('attack')).toBe('blended');
    expect(run.tags.get('detector')).toBe('none');
    expect(run.tags.get('sweep')).toBe('s1');
    expect(run.tags.get('mlflow.runName')).toBe('run-h');
    expect(steps(run, 'train/loss')).toEqual([1, 2, 3]);
    expect(run.metrics.get('eval/clean_accuracy')![1].value).toBe('NaN');
    expect(run.metrics.get('filter/auroc')![2].value).toBe('-Infinity');
    for (const r of server.requests.filter((x) => x.path.endsWith('log-batch'))) {
      const b = r.body as { params: unknown[]; metrics: unknown[] };
      expect(b.params.length).toBeLessThanOrEqual(100);
      expect(r.rawBody.toString()).not.toContain('null');
    }
    const prefix = `${run.info.experiment_id}/${run.info.run_id}/artifacts`;
    expect([...server.artifacts.keys()].sort()).toEqual([`${prefix}/config.json`, `${prefix}/scores/scores-epoch1.csv`, `${prefix}/summary.json`]);
    expect(JSON.parse(readFileSync(join(ctx.outDir, 'mlflow-run.json'), 'utf8'))).toEqual({ uri: server.url, experimentId: run.info.experiment_id, runId: run.info.run_id });
    expect(existsSync(join(ctx.outDir, 'mlflow-spool.jsonl'))).toBe(false);
    expect(logs[logs.length - 1]).toContain(`${server.url}/#/experiments/${run.info.experiment_id}/runs/${run.info.run_id}`);
  });

  it('outage: the server goes away mid-run and comes back on the same port; every metric arrives once, in order', async () => {
    const ctx = context();
    const hook = hookFor();
    await hook.onTrainBegin!(ctx);
    epoch(ctx, 1);
    await until('epoch 1 on the server', () => steps(onlyRun(), 'train/loss').length === 1);
    const port = server.port;
    await server.stop();

    for (const e of [2, 3, 4]) {
      epoch(ctx, e); // returns at once: training does not wait for the server
      await sleep(20);
    }
    const spoolPath = join(ctx.outDir, 'mlflow-spool.jsonl');
    await until('the spool', () => existsSync(spoolPath) && (readSpool(spoolPath)?.pending.length ?? 0) >= 3);
    expect(logs.some((l) => l.includes('cannot deliver to') && l.includes('while training goes on'))).toBe(true);

    await server.start(port);
    epoch(ctx, 5);
    await finish(hook, ctx);

    const run = onlyRun();
    for (const key of ['train/loss', 'eval/clean_accuracy', 'filter/auroc']) expect(steps(run, key), key).toEqual([1, 2, 3, 4, 5]);
    expect(run.metrics.get('train/loss')!.map((m) => m.value)).toEqual([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5]);
    expect(run.info.status).toBe('FINISHED');
    expect(existsSync(spoolPath)).toBe(false);
    expect(logs.some((l) => l.includes('answers again'))).toBe(true);
  });

  it('a server that is down at the start gets the whole run once it is back', async () => {
    const port = server.port;
    await server.stop();
    const ctx = context();
    const hook = hookFor();
    await hook.onTrainBegin!(ctx); // does not throw: training goes on
    for (const e of [1, 2]) epoch(ctx, e);
    await server.start(port);
    epoch(ctx, 3);
    await finish(hook, ctx);
    const run = onlyRun();
    expect(steps(run, 'train/loss')).toEqual([1, 2, 3]);
    expect(run.params.size).toBe(flattenConfig(ctx.config).length);
    expect(run.info.status).toBe('FINISHED');
  });

  it('retries 429 and 503 answers and delivers once', async () => {
    const ctx = context();
    const hook = hookFor();
    await hook.onTrainBegin!(ctx);
    server.faults.push(
      { endpoint: 'runs/log-batch', status: 429, headers: { 'Retry-After': '0' }, body: { error_code: 'RESOURCE_EXHAUSTED', message: 'busy' } },
      { endpoint: 'runs/log-batch', status: 503, body: 'Service Unavailable' },
    );
    for (const e of [1, 2, 3]) epoch(ctx, e);
    await finish(hook, ctx);
    const run = onlyRun();
    expect(steps(run, 'train/loss')).toEqual([1, 2, 3]);
    expect(server.faults).toEqual([]);
    expect(logs.some((l) => l.includes('rejected'))).toBe(false);
  });

  it('after a timeout whose request was applied anyway, the retry does not log the values twice', async () => {
    const ctx = context();
    const hook = hookFor({ timeoutMs: 150 });
    await hook.onTrainBegin!(ctx);
    await until('all params', () => onlyRun().params.size === flattenConfig(ctx.config).length);
    server.faults.push({ endpoint: 'runs/log-batch', after: true, delayMs: 400 });
    epoch(ctx, 1);
    await until('the timed-out batch applied', () => steps(onlyRun(), 'train/loss').length === 1);
    epoch(ctx, 2);
    await finish(hook, ctx);
    const run = onlyRun();
    expect(steps(run, 'train/loss')).toEqual([1, 2]);
    expect(steps(run, 'filter/auroc')).toEqual([1, 2]);
    expect(server.requests.some((r) => r.path.endsWith('metrics/get-history'))).toBe(true);
  });

  it('reports a 4xx rejection once with its error_code, drops only what was refused, and goes on', async () => {
    server.rejectKeys.add('filter/bad');
    const ctx = context();
    const hook = hookFor();
    await hook.onTrainBegin!(ctx);
    for (const e of [1, 2, 3]) ctx.recorder.log({ 'train/loss': e, 'filter/bad': e }, e);
    await finish(hook, ctx);
    const run = onlyRun();
    expect(steps(run, 'train/loss')).toEqual([1, 2, 3]);
    expect(run.metrics.has('filter/bad')).toBe(false);
    const reports = logs.filter((l) => l.includes('INVALID_PARAMETER_VALUE'));
    expect(reports).toHaveLength(2);
    expect(reports[0]).toMatch(/rejected metric "filter\/bad" at step 1 \(INVALID_PARAMETER_VALUE\).*Metric 'filter\/bad' is refused/);
    expect(reports[1]).toBe('mlflow: 2 more record(s) were rejected with INVALID_PARAMETER_VALUE');
    expect(run.info.status).toBe('FINISHED');
  });

  it('a resumed run continues the same MLflow run; a changed param is reported once, the rest goes on', async () => {
    const outDir = join(tempDir(), 'run-r');
    const ctx = context({ train: { epochs: 2 } }, outDir);
    const hook = hookFor();
    await hook.onTrainBegin!(ctx);
    for (const e of [1, 2]) epoch(ctx, e);
    await finish(hook, ctx, 'killed');
    const first = onlyRun();
    expect(first.info.status).toBe('KILLED');

    logs.length = 0;
    const ctx2 = context({ train: { epochs: 4 } }, outDir);
    const hook2 = hookFor();
    await hook2.onTrainBegin!(ctx2);
    await until('RUNNING again', () => first.info.status === 'RUNNING');
    for (const e of [3, 4]) epoch(ctx2, e);
    await finish(hook2, ctx2);
    const run = onlyRun();
    expect(run.info.run_id).toBe(first.info.run_id);
    expect(steps(run, 'train/loss')).toEqual([1, 2, 3, 4]);
    expect(run.info.status).toBe('FINISHED');
    expect(run.params.get('train.epochs')).toBe('2');
    const reports = logs.filter((l) => l.includes('INVALID_PARAMETER_VALUE'));
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatch(/param "train\.epochs".*Changing param values is not allowed/);
  });

  it('the artifact store is not proxied: reported once, the run still completes', async () => {
    server.artifactRoot = 's3://bucket/mlflow';
    const ctx = context();
    const hook = hookFor();
    await hook.onTrainBegin!(ctx);
    epoch(ctx, 1);
    await finish(hook, ctx);
    expect(onlyRun().info.status).toBe('FINISHED');
    const reports = logs.filter((l) => l.includes('s3://bucket'));
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatch(/artifact upload of .* failed.*--serve-artifacts.*stay in the output directory/);
    expect(server.artifacts.size).toBe(0);
  });

  it('a killed run ends quickly while the server is down and leaves a spool that mlflow-sync replays', async () => {
    const ctx = context();
    const hook = hookFor({ killedWaitMs: 100 });
    await hook.onTrainBegin!(ctx);
    epoch(ctx, 1);
    await until('epoch 1', () => steps(onlyRun(), 'train/loss').length === 1);
    const port = server.port;
    await server.stop();
    epoch(ctx, 2);
    await finish(hook, ctx, 'killed');
    const spoolPath = join(ctx.outDir, 'mlflow-spool.jsonl');
    const spooled = readSpool(spoolPath)!;
    expect(spooled.pending.map((r) => r.op)).toEqual(['batch', 'artifact', 'artifact', 'end']);
    expect(spooled.pending[3]).toMatchObject({ op: 'end', status: 'KILLED' });
    expect(logs[logs.length - 1]).toContain(`Replay them with: clip-backdoor-filter mlflow-sync ${ctx.outDir}`);

    await server.start(port);
    const syncLogs: string[] = [];
    const result = await syncSpool(ctx.outDir, { env: {}, log: (m) => syncLogs.push(m), retry: FAST.retry });
    expect(result).toEqual({ delivered: 4, dropped: 0, pending: 0 });
    const run = onlyRun();
    expect(steps(run, 'train/loss')).toEqual([1, 2]);
    expect(run.info.status).toBe('KILLED');
    expect(existsSync(spoolPath)).toBe(false);
    expect(await syncSpool(ctx.outDir, { env: {}, log: (m) => syncLogs.push(m) })).toEqual({ delivered: 0, dropped: 0, pending: 0 });
    expect(syncLogs[syncLogs.length - 1]).toMatch(/nothing to replay/);
  });

  it('syncSpool replays a whole run spooled while the server was down from start to end', async () => {
    const port = server.port;
    await server.stop();
    const ctx = context();
    const hook = hookFor({ finalWaitMs: 100 });
    await hook.onTrainBegin!(ctx);
    for (const e of [1, 2, 3]) epoch(ctx, e);
    await finish(hook, ctx);
    expect(existsSync(join(ctx.outDir, 'mlflow-run.json'))).toBe(false);
    const pending = readSpool(join(ctx.outDir, 'mlflow-spool.jsonl'))!.pending;
    expect(pending[0].op).toBe('open');

    await server.start(port);
    const result = await syncSpool(ctx.outDir, { env: {}, log: () => {}, retry: FAST.retry });
    expect(result).toMatchObject({ pending: 0, dropped: 0, delivered: pending.length });
    const run = onlyRun();
    expect(steps(run, 'train/loss')).toEqual([1, 2, 3]);
    expect(run.params.size).toBe(flattenConfig(ctx.config).length);
    expect(run.info.status).toBe('FINISHED');
    expect(JSON.parse(readFileSync(join(ctx.outDir, 'mlflow-run.json'), 'utf8')).runId).toBe(run.info.run_id);
  });

  it('an interrupted replay resumes where it stopped: each record is sent once', async () => {
    const port = server.port;
    await server.stop();
    const ctx = context();
    const hook = hookFor({ finalWaitMs: 50 });
    await hook.onTrainBegin!(ctx);
    for (const e of [1, 2, 3, 4]) epoch(ctx, e);
    await finish(hook, ctx);
    await server.start(port);
    // The server dies again after a few requests of the first replay.
    const total = readSpool(join(ctx.outDir, 'mlflow-spool.jsonl'))!.pending.length;
    let seen = 0;
    const realFetch = globalThis.fetch;
    const flaky: typeof fetch = async (input, init) => {
      if (++seen > 4) throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED', message: 'refused' } });
      return realFetch(input, init);
    };
    const partial = await syncSpool(ctx.outDir, { env: {}, log: () => {}, fetch: flaky, retry: FAST.retry, waitMs: 100 });
    expect(partial.pending).toBeGreaterThan(0);
    expect(partial.delivered + partial.pending).toBe(total);
    const rest = await syncSpool(ctx.outDir, { env: {}, log: () => {}, retry: FAST.retry });
    expect(rest).toMatchObject({ pending: 0, delivered: partial.pending });
    const run = onlyRun();
    expect(steps(run, 'train/loss')).toEqual([1, 2, 3, 4]);
    expect(run.info.status).toBe('FINISHED');
  });
});

describe('credentials', () => {
  const USER = 'cbf-user-q';
  const PASS = 'pw-S3CRET-77';
  const TOKEN = 'tok-ZXCV-9911';
  const secrets = [PASS, TOKEN, encodeURIComponent(PASS), Buffer.from(`${USER}:${PASS}`).toString('base64'), `${USER}:`];

  function assertClean(what: string, text: string): void {
    for (const s of secrets) expect(text, `${what} contains a secret`).not.toContain(s);
  }

  it('never appear in log lines, params, tags, mlflow-run.json, the config artifact or the spool', async () => {
    server.auth = `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`;
    const uriWithCreds = `http://${USER}:${PASS}@127.0.0.1:${server.port}`;
    const ctx = context({ tracking: { uri: uriWithCreds, tags: { note: `see ${uriWithCreds}` } } });
    const hook = hookFor({ env: { MLFLOW_TRACKING_TOKEN: TOKEN } });
    await hook.onTrainBegin!(ctx);
    epoch(ctx, 1);
    await until('epoch 1', () => steps(onlyRun(), 'train/loss').length === 1);
    const port = server.port;
    await server.stop();
    epoch(ctx, 2);
    const spoolPath = join(ctx.outDir, 'mlflow-spool.jsonl');
    await until('the spool', () => existsSync(spoolPath) && (readSpool(spoolPath)?.pending.length ?? 0) > 0);
    const spoolText = readFileSync(spoolPath, 'utf8');
    await server.start(port);
    await finish(hook, ctx);

    const run = onlyRun();
    expect(steps(run, 'train/loss')).toEqual([1, 2]);
    assertClean('spool', spoolText);
    assertClean('logs', logs.join('\n'));
    assertClean('params', [...run.params].flat().join('\n'));
    assertClean('tags', [...run.tags].flat().join('\n'));
    assertClean('mlflow-run.json', readFileSync(join(ctx.outDir, 'mlflow-run.json'), 'utf8'));
    assertClean('config.json', readFileSync(join(ctx.outDir, 'mlflow-config.json'), 'utf8'));
    for (const [path, body] of server.artifacts) assertClean(path, body.toString());
    for (const r of server.requests) assertClean('request URL', r.path + r.query.toString());
    expect(run.params.get('tracking.uri')).toBe(`http://127.0.0.1:${port}`);
  });

  it('wrong credentials stop the run before training with a fix, and say nothing secret', async () => {
    server.auth = 'Basic something-else';
    const ctx = context();
    const hook = hookFor({ env: { MLFLOW_TRACKING_USERNAME: USER, MLFLOW_TRACKING_PASSWORD: PASS } });
    const err = (await hook.onTrainBegin!(ctx)?.then(
      () => null,
      (e: unknown) => e,
    )) as { name: string; message: string; hint?: string; code: string } | null;
    expect(err).toMatchObject({ name: 'UserError', code: 'TRACKING_FAILED' });
    expect(err!.message).toMatch(/HTTP 401/);
    expect(err!.hint).toMatch(/MLFLOW_TRACKING_USERNAME/);
    assertClean('error', `${err!.message} ${err!.hint}`);
    assertClean('logs', logs.join('\n'));
    expect(existsSync(join(ctx.outDir, 'mlflow-spool.jsonl'))).toBe(false);
  });

  it('credentials that stop working mid-run keep everything in the spool for mlflow-sync', async () => {
    const good = `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`;
    server.auth = good;
    const env = { MLFLOW_TRACKING_USERNAME: USER, MLFLOW_TRACKING_PASSWORD: PASS };
    const ctx = context();
    const hook = hookFor({ env });
    await hook.onTrainBegin!(ctx);
    epoch(ctx, 1);
    await until('epoch 1', () => steps(onlyRun(), 'train/loss').length === 1);
    server.auth = 'Basic rotated';
    epoch(ctx, 2);
    await finish(hook, ctx);
    expect(logs.filter((l) => l.includes('stopped logging'))).toHaveLength(1);
    expect(readSpool(join(ctx.outDir, 'mlflow-spool.jsonl'))!.pending.length).toBeGreaterThan(0);
    server.auth = good;
    const syncLogs: string[] = [];
    const result = await syncSpool(ctx.outDir, { env: { ...env, MLFLOW_TRACKING_URI: `http://${USER}:${PASS}@127.0.0.1:${server.port}` }, log: (m) => syncLogs.push(m) });
    expect(result.pending).toBe(0);
    expect(steps(onlyRun(), 'train/loss')).toEqual([1, 2]);
    expect(onlyRun().info.status).toBe('FINISHED');
    assertClean('logs', [...logs, ...syncLogs].join('\n'));
  });
});
