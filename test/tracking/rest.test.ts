import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TrackingError } from '../../src/tracking/errors.js';
import { chunkBatch, MlflowRestClient, proxiedArtifactPath } from '../../src/tracking/rest.js';
import type { WireMetric } from '../../src/tracking/types.js';
import { FakeMlflow } from './fakeMlflow.js';

let server: FakeMlflow;

beforeEach(async () => {
  server = new FakeMlflow();
  await server.start();
});
afterEach(async () => {
  await server.stop();
});

async function failure(p: Promise<unknown>): Promise<TrackingError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof TrackingError) return e;
    throw e;
  }
  throw new Error('did not fail');
}

const metric = (i: number, value: number | WireMetric['value'] = i): WireMetric => ({ key: `m${i % 3}`, value, timestamp: 1_700_000_000_000 + i, step: i });

describe('MLflow REST client', () => {
  it('gets, creates and refuses to duplicate experiments', async () => {
    const client = new MlflowRestClient({ uri: server.url, env: {} });
    expect(await client.getExperimentByName('exp')).toBeNull();
    const id = await client.createExperiment('exp');
    expect((await client.getExperimentByName('exp'))?.experiment_id).toBe(id);
    const err = await failure(client.createExperiment('exp'));
    expect(err.kind).toBe('permanent');
    expect(err.errorCode).toBe('RESOURCE_ALREADY_EXISTS');
    expect(err.details.status).toBe(400);
    expect(err.message).toMatch(/HTTP 400 RESOURCE_ALREADY_EXISTS: Experiment\(name=exp\) already exists/);
  });

  it('creates, reads and updates runs; an unknown run is null', async () => {
    const client = new MlflowRestClient({ uri: server.url, env: {} });
    const exp = await client.createExperiment('e');
    const run = await client.createRun({ experimentId: exp, runName: 'r', userId: 'u', startTime: 123, tags: [{ key: 'dataset', value: 'synthetic' }] });
    expect(run.info).toMatchObject({ experiment_id: exp, run_name: 'r', status: 'RUNNING', artifact_uri: `mlflow-artifacts:/${exp}/${run.info.run_id}/artifacts` });
    const info = await client.updateRun({ runId: run.info.run_id, status: 'FINISHED', endTime: 456 });
    expect(info).toMatchObject({ status: 'FINISHED', end_time: 456 });
    expect((await client.getRun(run.info.run_id))?.data.tags).toEqual([{ key: 'dataset', value: 'synthetic' }]);
    expect(await client.getRun('nope')).toBeNull();
    await client.setTag(run.info.run_id, 'k', 'v');
    expect(server.run(run.info.run_id).tags.get('k')).toBe('v');
  });

  it('splits log-batch within MLflow limits and keeps the order', async () => {
    const client = new MlflowRestClient({ uri: server.url, env: {} });
    const exp = await client.createExperiment('e');
    const { info } = await client.createRun({ experimentId: exp, startTime: 1 });
    const metrics = Array.from({ length: 2500 }, (_, i) => metric(i));
    const params = Array.from({ length: 250 }, (_, i) => ({ key: `p${i}`, value: String(i) }));
    const tags = Array.from({ length: 150 }, (_, i) => ({ key: `t${i}`, value: String(i) }));
    await client.logBatch(info.run_id, { metrics, params, tags });
    const batches = server.requests.filter((r) => r.path.endsWith('runs/log-batch')).map((r) => r.body as { metrics: unknown[]; params: unknown[]; tags: unknown[] });
    for (const b of batches) {
      expect(b.metrics.length).toBeLessThanOrEqual(1000);
      expect(b.params.length).toBeLessThanOrEqual(100);
      expect(b.tags.length).toBeLessThanOrEqual(100);
      expect(b.metrics.length + b.params.length + b.tags.length).toBeLessThanOrEqual(1000);
    }
    const run = server.run(info.run_id);
    expect(run.metrics.get('m0')!.map((m) => m.step)).toEqual(metrics.filter((m) => m.key === 'm0').map((m) => m.step));
    expect(run.params.size).toBe(250);
    expect(run.tags.size).toBe(150);
    expect(chunkBatch({ metrics, params, tags }).length).toBe(batches.length);
  });

  it('the fake server, like MLflow, rejects batches over the limits', async () => {
    const client = new MlflowRestClient({ uri: server.url, env: {} });
    const exp = await client.createExperiment('e');
    const { info } = await client.createRun({ experimentId: exp, startTime: 1 });
    const over = Array.from({ length: 1001 }, (_, i) => metric(i));
    const err = await failure(client.call('POST', 'runs/log-batch', { body: { run_id: info.run_id, metrics: over } }));
    expect(err.errorCode).toBe('INVALID_PARAMETER_VALUE');
    const params = await failure(client.call('POST', 'runs/log-batch', { body: { run_id: info.run_id, params: Array.from({ length: 101 }, (_, i) => ({ key: `p${i}`, value: '1' })) } }));
    expect(params.message).toMatch(/at most 100 params/);
  });

  it('sends NaN and infinities as the strings MLflow accepts, never null', async () => {
    const client = new MlflowRestClient({ uri: server.url, env: {} });
    const exp = await client.createExperiment('e');
    const { info } = await client.createRun({ experimentId: exp, startTime: 1 });
    await client.logBatch(info.run_id, {
      metrics: [
        { key: 'a', value: NaN as unknown as WireMetric['value'], timestamp: 1, step: 0 },
        { key: 'a', value: Infinity as unknown as WireMetric['value'], timestamp: 2, step: 1 },
        { key: 'a', value: 'Infinity', timestamp: 3, step: 2 },
        { key: 'a', value: -Infinity as unknown as WireMetric['value'], timestamp: 4, step: 3 },
        { key: 'a', value: 0.25, timestamp: 5.7, step: 4 },
      ],
      params: [],
      tags: [],
    });
    const raw = server.requests.find((r) => r.path.endsWith('runs/log-batch'))!.rawBody.toString();
    expect(raw).not.toContain('null');
    expect(raw).toContain('"value":"NaN"');
    expect(raw).toContain('"value":"-Infinity"');
    const history = await client.getMetricHistory(info.run_id, 'a');
    expect(history.map((m) => m.value)).toEqual(['NaN', 'Infinity', 'Infinity', '-Infinity', 0.25]);
    expect(history[4].timestamp).toBe(6);
    // What a naive client would send (JSON.stringify(NaN) === 'null') is refused.
    const err = await failure(client.call('POST', 'runs/log-batch', { body: { run_id: info.run_id, metrics: [{ key: 'a', value: null, timestamp: 1, step: 0 }] } }));
    expect(err.errorCode).toBe('INVALID_PARAMETER_VALUE');
  });

  it('authenticates with basic auth, a bearer token, or user info in the URI, which never reaches the URL', async () => {
    server.auth = `Basic ${Buffer.from('alice:pw-basic').toString('base64')}`;
    await new MlflowRestClient({ uri: server.url, env: { MLFLOW_TRACKING_USERNAME: 'alice', MLFLOW_TRACKING_PASSWORD: 'pw-basic' } }).createExperiment('a');
    await new MlflowRestClient({ uri: `http://alice:pw-basic@127.0.0.1:${server.port}`, env: {} }).createExperiment('b');
    server.auth = 'Bearer tok-xyz';
    await new MlflowRestClient({ uri: server.url, env: { MLFLOW_TRACKING_TOKEN: 'tok-xyz' } }).createExperiment('c');
    expect(server.experiments.size).toBe(3);
    for (const r of server.requests) expect(r.path).not.toContain('pw-basic');
  });

  it('treats 401 as fatal with a hint, and keeps the password out of the message', async () => {
    server.auth = 'Basic nope';
    const client = new MlflowRestClient({ uri: `http://bob:hunter2-secret@127.0.0.1:${server.port}`, env: {} });
    const err = await failure(client.createExperiment('x'));
    expect(err.kind).toBe('fatal');
    expect(err.errorCode).toBe('UNAUTHENTICATED');
    expect(err.details.hint).toMatch(/MLFLOW_TRACKING_USERNAME/);
    expect(`${err.message} ${err.details.hint}`).not.toContain('hunter2-secret');
  });

  it('classifies outages, overload and timeouts as retryable', async () => {
    const client = new MlflowRestClient({ uri: server.url, env: {}, timeoutMs: 150 });
    server.faults.push({ endpoint: 'experiments/create', status: 429, headers: { 'Retry-After': '2' }, body: { error_code: 'RESOURCE_EXHAUSTED', message: 'slow down' } });
    const busy = await failure(client.createExperiment('x'));
    expect(busy).toMatchObject({ kind: 'retryable' });
    expect(busy.details).toMatchObject({ status: 429, retryAfterSeconds: 2, errorCode: 'RESOURCE_EXHAUSTED' });
    server.faults.push({ endpoint: 'experiments/create', status: 503, body: 'Service Unavailable' });
    expect((await failure(client.createExperiment('x'))).details).toMatchObject({ status: 503, ambiguous: false });
    server.faults.push({ endpoint: 'experiments/create', status: 500, after: true });
    expect((await failure(client.createExperiment('y'))).details).toMatchObject({ status: 500, ambiguous: true });
    server.faults.push({ endpoint: 'experiments/create', delayMs: 400 });
    const slow = await failure(client.createExperiment('z'));
    expect(slow.kind).toBe('retryable');
    expect(slow.details).toMatchObject({ errorCode: 'TIMEOUT', ambiguous: true });
    const port = server.port;
    await server.stop();
    const downClient = new MlflowRestClient({ uri: `http://127.0.0.1:${port}`, env: {} });
    // A pooled keep-alive socket may still fail first ("other side closed"): ambiguous, also retryable.
    const first = await failure(downClient.createExperiment('w'));
    expect(first.kind).toBe('retryable');
    const down = first.errorCode === 'ECONNREFUSED' ? first : await failure(downClient.createExperiment('w'));
    expect(down.kind).toBe('retryable');
    expect(down.details).toMatchObject({ errorCode: 'ECONNREFUSED', ambiguous: false });
  });

  it('says when the URI is not an MLflow server', async () => {
    const err = await failure(new MlflowRestClient({ uri: `${server.url}/wrong-prefix`, env: {} }).createExperiment('x'));
    expect(err.kind).toBe('fatal');
    expect(err.details.hint).toMatch(/MLflow 2\.x tracking server/);
  });

  it('uploads artifacts through the server proxy', async () => {
    const client = new MlflowRestClient({ uri: server.url, env: {} });
    await client.uploadArtifact('mlflow-artifacts:/3/abc/artifacts', 'scores/scores epoch2.csv', Buffer.from('a,b\n'));
    expect(server.artifacts.get('3/abc/artifacts/scores/scores epoch2.csv')?.toString()).toBe('a,b\n');
    const put = server.requests.find((r) => r.method === 'PUT')!;
    expect(put.path).toBe('/api/2.0/mlflow-artifacts/artifacts/3/abc/artifacts/scores/scores%20epoch2.csv');
    expect(proxiedArtifactPath('mlflow-artifacts://host:5000/0/r/artifacts')).toBe('0/r/artifacts');
    expect(proxiedArtifactPath('s3://bucket/0/r/artifacts')).toBeNull();
    const err = await failure(client.uploadArtifact('s3://bucket/x', 'a', Buffer.from('')));
    expect(err.errorCode).toBe('ARTIFACT_URI_UNSUPPORTED');
  });
});
