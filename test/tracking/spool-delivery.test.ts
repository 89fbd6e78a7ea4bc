import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Delivery } from '../../src/tracking/delivery.js';
import { TrackingError } from '../../src/tracking/errors.js';
import type { OpenedRun, TrackingSink } from '../../src/tracking/sink.js';
import { readSpool, SpoolWriter } from '../../src/tracking/spool.js';
import type { BatchPayload } from '../../src/tracking/types.js';
import { tempDir } from './fakeContext.js';

const id = (s: string) => s;

describe('spool file', () => {
  it('replays records without an ack, in seq order, keeping unsure marks and NaN as a string', () => {
    const path = join(tempDir(), 'mlflow-spool.jsonl');
    const w = new SpoolWriter(path, 'http://h:1', id);
    w.append({ seq: 1, op: 'batch', batch: { metrics: [{ key: 'a', value: 'NaN', timestamp: 1, step: 0 }], params: [], tags: [] } });
    w.append({ seq: 2, op: 'end', status: 'FINISHED', endTime: 5 });
    w.append({ seq: 3, op: 'artifact', path: '/x', artifactPath: 'x' });
    w.unsure(1);
    w.ack(2);
    w.ack(3, 'INVALID_PARAMETER_VALUE');
    w.close();
    const lines = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ spool: 1, uri: 'http://h:1' });
    const s = readSpool(path)!;
    expect(s.uri).toBe('http://h:1');
    expect(s.pending.map((r) => r.seq)).toEqual([1]);
    expect(s.pending[0]).toMatchObject({ op: 'batch', batch: { metrics: [{ value: 'NaN' }] } });
    expect([...s.unsure]).toEqual([1]);
    expect(s.maxSeq).toBe(3);
  });

  it('survives a line torn by a crash and repairs it before appending', () => {
    const path = join(tempDir(), 'mlflow-spool.jsonl');
    const w = new SpoolWriter(path, 'http://h:1', id);
    w.append({ seq: 1, op: 'end', status: 'KILLED', endTime: 5 });
    w.close();
    appendFileSync(path, '{"seq":2,"op":"ba');
    expect(readSpool(path)).toMatchObject({ badLines: 0, pending: [{ seq: 1 }] });
    const again = new SpoolWriter(path, 'http://h:1', id);
    again.ack(1);
    again.close();
    expect(readSpool(path)).toMatchObject({ badLines: 1, pending: [] });
  });

  it('redacts every line it writes', () => {
    const path = join(tempDir(), 'mlflow-spool.jsonl');
    const w = new SpoolWriter(path, 'http://h:1', (t) => t.replaceAll('hunter2', '***'));
    w.append({ seq: 1, op: 'batch', batch: { metrics: [], params: [{ key: 'p', value: 'hunter2' }], tags: [] } });
    w.close();
    expect(readFileSync(path, 'utf8')).not.toContain('hunter2');
  });

  it('is absent until something is written', () => {
    const path = join(tempDir(), 'mlflow-spool.jsonl');
    expect(readSpool(path)).toBeNull();
    writeFileSync(path, '');
    expect(readSpool(path)).toMatchObject({ pending: [], uri: null });
  });
});

/** A sink that records calls and can refuse chosen metric keys. */
function memorySink(refuse = new Set<string>()) {
  const calls: BatchPayload[] = [];
  const run: OpenedRun = { uri: 'mem:', experimentId: '1', runId: 'r', resumed: false, artifactUri: '' };
  const sink: TrackingSink = {
    kind: 'http',
    uri: 'mem:',
    openRun: async () => run,
    logBatch: async (_r, batch) => {
      calls.push(batch);
      const bad = batch.metrics.find((m) => refuse.has(m.key));
      if (bad) throw new TrackingError(`refused ${bad.key}`, 'permanent', { errorCode: 'INVALID_PARAMETER_VALUE' });
    },
    uploadArtifact: async () => {},
    endRun: async () => {},
  };
  return { sink, calls };
}

const metricsRecord = (n: number, start: number, key = 'm') => ({
  op: 'batch' as const,
  batch: { metrics: Array.from({ length: n }, (_, i) => ({ key, value: start + i, timestamp: 1, step: start + i })), params: [], tags: [] },
});

describe('delivery queue', () => {
  it('merges consecutive metric records into log-batch calls of at most 1000 metrics, in order', async () => {
    const { sink, calls } = memorySink();
    const logs: string[] = [];
    const d = new Delivery({ sink, spool: null, previous: null, log: (m) => logs.push(m) });
    d.enqueue({ op: 'open', request: { experiment: 'e', runName: 'r', userId: '', startTime: 1, tags: [] } });
    d.enqueue({ op: 'batch', batch: { metrics: [], params: [{ key: 'p', value: '1' }], tags: [] } });
    for (let i = 0; i < 7; i++) d.enqueue(metricsRecord(400, i * 400));
    expect(await d.drain(5000)).toBe(true);
    for (const c of calls) expect(c.metrics.length).toBeLessThanOrEqual(1000);
    expect(calls[0].params).toEqual([{ key: 'p', value: '1' }]);
    const steps = calls.flatMap((c) => c.metrics.map((m) => m.step));
    expect(steps).toEqual(Array.from({ length: 2800 }, (_, i) => i));
    expect(calls.length).toBeLessThan(8);
    expect(d.stats).toEqual({ delivered: 9, dropped: 0 });
  });

  it('when MLflow refuses a merged batch, only the refused entity is lost', async () => {
    const { sink } = memorySink(new Set(['bad']));
    const logs: string[] = [];
    const d = new Delivery({ sink, spool: null, previous: null, log: (m) => logs.push(m) });
    d.enqueue({ op: 'open', request: { experiment: 'e', runName: 'r', userId: '', startTime: 1, tags: [] } });
    d.enqueue(metricsRecord(3, 0));
    d.enqueue({ op: 'batch', batch: { metrics: [{ key: 'ok', value: 1, timestamp: 1, step: 9 }, { key: 'bad', value: 1, timestamp: 1, step: 9 }], params: [], tags: [] } });
    d.enqueue(metricsRecord(3, 3));
    await d.drain(5000);
    await d.stop();
    expect(d.stats).toEqual({ delivered: 4, dropped: 1 });
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/rejected metric "bad" at step 9 \(INVALID_PARAMETER_VALUE\)/);
  });

  it('a fatal error stops delivery and keeps everything pending in the spool, in order', async () => {
    const path = join(tempDir(), 'mlflow-spool.jsonl');
    const spool = new SpoolWriter(path, 'mem:', id);
    const { sink } = memorySink();
    sink.logBatch = async () => {
      throw new TrackingError('HTTP 401', 'fatal', { errorCode: 'UNAUTHENTICATED' });
    };
    const logs: string[] = [];
    const d = new Delivery({ sink, spool, previous: null, log: (m) => logs.push(m) });
    d.enqueue({ op: 'open', request: { experiment: 'e', runName: 'r', userId: '', startTime: 1, tags: [] } });
    d.enqueue(metricsRecord(2, 0));
    await d.drain(5000);
    d.enqueue(metricsRecord(2, 2));
    d.enqueue({ op: 'end', status: 'FINISHED', endTime: 3 });
    await d.stop();
    spool.close();
    expect(d.isHalted).toBe(true);
    expect(readSpool(path)!.pending.map((r) => r.op)).toEqual(['batch', 'batch', 'end']);
    expect(logs.filter((l) => l.includes('stopped logging'))).toHaveLength(1);
  });
});
