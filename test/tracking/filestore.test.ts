import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TrackingError } from '../../src/tracking/errors.js';
import { FileStoreSink } from '../../src/tracking/fileSink.js';
import { MlflowFileStore, toYaml } from '../../src/tracking/filestore.js';
import { tempDir } from './fakeContext.js';
import { getMetricFromLine, readStore, readYaml } from './mlflowReader.js';

const RUN_META_KEYS = [
  'artifact_uri',
  'deleted_time',
  'end_time',
  'entry_point_name',
  'experiment_id',
  'lifecycle_stage',
  'run_id',
  'run_name',
  'run_uuid',
  'source_name',
  'source_type',
  'source_version',
  'start_time',
  'status',
  'tags',
  'user_id',
];

function newStore(): MlflowFileStore {
  return new MlflowFileStore(join(tempDir(), 'mlruns'));
}

function thrown(fn: () => unknown): TrackingError {
  try {
    fn();
  } catch (e) {
    if (e instanceof TrackingError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' });
}

describe('MLflow file store writer', () => {
  it('writes experiment meta.yaml as MLflow does: quoted id equal to the directory, absolute artifact location', () => {
    const store = newStore();
    const id = store.createExperiment('my-experiment');
    // 0 is left to MLflow's "Default" experiment.
    expect(id).toBe('1');
    expect(existsSync(join(store.root, '.trash'))).toBe(true);
    const text = readFileSync(join(store.root, id, 'meta.yaml'), 'utf8');
    expect(text).toContain(`experiment_id: '${id}'`);
    const meta = readYaml(text);
    expect(Object.keys(meta).sort()).toEqual(['artifact_location', 'creation_time', 'experiment_id', 'last_update_time', 'lifecycle_stage', 'name']);
    expect(meta).toMatchObject({ experiment_id: id, name: 'my-experiment', lifecycle_stage: 'active', artifact_location: pathToFileURL(join(store.root, id)).href });
    expect(Number.isInteger(meta.creation_time)).toBe(true);
    expect(meta.artifact_location).toMatch(/^file:\/\/\//);
    expect(readStore(store.root).map((e) => e.meta.name)).toEqual(['my-experiment']);
  });

  it('gives a new experiment a numeric id no experiment (active or deleted) uses, and finds existing ones by name', () => {
    const store = newStore();
    store.ensureRoot();
    for (const [dir, id, stage] of [['0', '0', 'active'], ['5', '5', 'active'], ['.trash/7', '7', 'deleted']] as const) {
      mkdirSync(join(store.root, dir), { recursive: true });
      writeFileSync(join(store.root, dir, 'meta.yaml'), toYaml({ experiment_id: id, name: `e${id}`, artifact_location: `file:///x/${id}`, lifecycle_stage: stage }));
    }
    expect(store.createExperiment('fresh')).toBe('8');
    expect(store.getExperimentByName('e5')?.id).toBe('5');
    expect(store.getExperimentByName('e7')?.meta.lifecycle_stage).toBe('deleted');
    expect(thrown(() => store.createExperiment('e5')).errorCode).toBe('RESOURCE_ALREADY_EXISTS');
  });

  it('reads experiment ids MLflow wrote unquoted (legacy) and very long random ids', () => {
    const store = newStore();
    store.ensureRoot();
    mkdirSync(join(store.root, '123456789012345678'));
    writeFileSync(join(store.root, '123456789012345678', 'meta.yaml'), 'artifact_location: file:///x\nexperiment_id: 123456789012345678\nlifecycle_stage: active\nname: big\n');
    expect(store.getExperimentByName('big')?.id).toBe('123456789012345678');
    expect(store.createExperiment('next')).toBe('123456789012345679');
  });

  it('writes run meta.yaml with every key MLflow writes, integer status and a file:// artifact URI', () => {
    const store = newStore();
    const exp = store.createExperiment('e');
    const meta = store.createRun(exp, { runName: 'my run', userId: 'alice', startTime: 1_700_000_000_123, tags: [{ key: 'mlflow.runName', value: 'my run' }] });
    expect(meta.run_id).toMatch(/^[0-9a-f]{32}$/);
    const runDir = join(store.root, exp, meta.run_id);
    const text = readFileSync(join(runDir, 'meta.yaml'), 'utf8');
    const parsed = readYaml(text);
    expect(Object.keys(parsed).sort()).toEqual(RUN_META_KEYS);
    expect(text).toContain(`experiment_id: '${exp}'`);
    expect(text).toMatch(/^status: 1$/m);
    expect(text).toMatch(/^end_time: null$/m);
    expect(text).toMatch(/^deleted_time: null$/m);
    expect(parsed).toEqual({
      artifact_uri: pathToFileURL(join(runDir, 'artifacts')).href,
      deleted_time: null,
      end_time: null,
      entry_point_name: '',
      experiment_id: exp,
      lifecycle_stage: 'active',
      run_id: meta.run_id,
      run_name: 'my run',
      run_uuid: meta.run_id,
      source_name: '',
      source_type: 4,
      source_version: '',
      start_time: 1_700_000_000_123,
      status: 1,
      tags: [],
      user_id: 'alice',
    });
    for (const sub of ['metrics', 'params', 'tags', 'artifacts']) expect(existsSync(join(runDir, sub))).toBe(true);

    store.updateRun(meta.run_id, { status: 'FINISHED', endTime: 1_700_000_100_000 });
    const done = readYaml(readFileSync(join(runDir, 'meta.yaml'), 'utf8'));
    expect(done.status).toBe(3);
    expect(done.end_time).toBe(1_700_000_100_000);
    for (const [status, code] of [['FAILED', 4], ['KILLED', 5], ['RUNNING', 1]] as const) {
      store.updateRun(meta.run_id, { status, endTime: status === 'RUNNING' ? null : 1 });
      expect(readYaml(readFileSync(join(runDir, 'meta.yaml'), 'utf8')).status).toBe(code);
    }
    expect(readYaml(readFileSync(join(runDir, 'meta.yaml'), 'utf8')).end_time).toBeNull();
  });

  it('keeps names that YAML 1.1 would turn into other types as strings', () => {
    const store = newStore();
    const exp = store.createExperiment('yes');
    const meta = store.createRun(exp, { runName: '2024-01-01', userId: 'on', startTime: 1, tags: [] });
    const [read] = readStore(store.root);
    expect(read.meta.name).toBe('yes');
    expect(read.runs[0].meta.run_name).toBe('2024-01-01');
    expect(read.runs[0].meta.user_id).toBe('on');
    expect(meta.run_name).toBe('2024-01-01');
  });

  it('appends metric lines "<ts> <value> <step>" that MLflow parses, with nan/inf/-inf and nested keys', () => {
    const store = newStore();
    const exp = store.createExperiment('e');
    const { run_id: runId } = store.createRun(exp, { runName: 'r', userId: '', startTime: 1, tags: [] });
    store.logMetrics(runId, [
      { key: 'train/loss', value: 0.5, timestamp: 1_700_000_000_001, step: 0 },
      { key: 'train/loss', value: 'NaN', timestamp: 1_700_000_000_002, step: 1 },
      { key: 'eval/x', value: 'Infinity', timestamp: 1_700_000_000_003, step: 1 },
      { key: 'eval/x', value: '-Infinity', timestamp: 1_700_000_000_004, step: 2 },
      { key: 'tiny', value: 1e-7, timestamp: 1_700_000_000_005.4, step: 3 },
    ]);
    store.logMetrics(runId, [{ key: 'train/loss', value: 0.25, timestamp: 1_700_000_000_006, step: 2 }]);
    const dir = join(store.root, exp, runId, 'metrics');
    expect(readFileSync(join(dir, 'train', 'loss'), 'utf8')).toBe('1700000000001 0.5 0\n1700000000002 nan 1\n1700000000006 0.25 2\n');
    expect(readFileSync(join(dir, 'eval', 'x'), 'utf8')).toBe('1700000000003 inf 1\n1700000000004 -inf 2\n');
    expect(readFileSync(join(dir, 'tiny'), 'utf8')).toBe('1700000000005 1e-7 3\n');
    const run = readStore(store.root)[0].runs[0];
    const loss = run.metrics.get('train/loss')!;
    expect(loss.map((m) => m.step)).toEqual([0, 1, 2]);
    expect(loss[1].value).toBeNaN();
    expect(run.metrics.get('eval/x')!.map((m) => m.value)).toEqual([Infinity, -Infinity]);
    expect(getMetricFromLine('tiny', '1700000000005 1e-7 3\n')).toEqual({ key: 'tiny', value: 1e-7, timestamp: 1700000000005, step: 3 });
    expect(() => getMetricFromLine('k', '1.5 0.1 0')).toThrow(/int\(\)/);
  });

  it('writes params and tags without a trailing newline, nested for keys with "/"', () => {
    const store = newStore();
    const exp = store.createExperiment('e');
    const { run_id: runId } = store.createRun(exp, { runName: 'r', userId: '', startTime: 1, tags: [] });
    store.logParams(runId, [
      { key: 'model.embedDim', value: '128' },
      { key: 'data/path', value: 'a b\tc' },
      { key: 'empty', value: '' },
    ]);
    store.setTags(runId, [{ key: 'dataset', value: 'synthetic' }, { key: 'team/owner', value: 'x' }, { key: 'mlflow.runName', value: 'renamed' }]);
    const runDir = join(store.root, exp, runId);
    expect(readFileSync(join(runDir, 'params', 'model.embedDim'), 'utf8')).toBe('128');
    expect(readFileSync(join(runDir, 'params', 'data', 'path'), 'utf8')).toBe('a b\tc');
    expect(readFileSync(join(runDir, 'params', 'empty'), 'utf8')).toBe('');
    expect(readFileSync(join(runDir, 'tags', 'team', 'owner'), 'utf8')).toBe('x');
    const run = readStore(store.root)[0].runs[0];
    expect(Object.fromEntries(run.params)).toEqual({ 'model.embedDim': '128', 'data/path': 'a b\tc', empty: '' });
    expect(run.tags.get('dataset')).toBe('synthetic');
    // MLflow's set_tag of mlflow.runName renames the run too.
    expect(run.meta.run_name).toBe('renamed');
    expect(filesUnder(runDir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('accepts re-logging a param with the same value and refuses a new value, as MLflow does', () => {
    const store = newStore();
    const exp = store.createExperiment('e');
    const { run_id: runId } = store.createRun(exp, { runName: 'r', userId: '', startTime: 1, tags: [] });
    store.logParams(runId, [{ key: 'train.epochs', value: '10' }]);
    store.logParams(runId, [{ key: 'train.epochs', value: '10' }]);
    const err = thrown(() => store.logParams(runId, [{ key: 'train.epochs', value: '20' }]));
    expect(err.errorCode).toBe('INVALID_PARAMETER_VALUE');
    expect(err.message).toMatch(/Changing param values is not allowed.*train\.epochs.*'10'.*'20'/);
  });

  it('rejects invalid key names with a clear message instead of writing outside the run', () => {
    const store = newStore();
    const exp = store.createExperiment('e');
    const { run_id: runId } = store.createRun(exp, { runName: 'r', userId: '', startTime: 1, tags: [] });
    for (const key of ['../escape', '/abs', 'a//b', 'bad!', 'x'.repeat(251), '']) {
      const err = thrown(() => store.logMetrics(runId, [{ key, value: 1, timestamp: 1, step: 0 }]));
      expect(err.errorCode).toBe('INVALID_PARAMETER_VALUE');
      expect(err.message).toContain('invalid metric name');
    }
    expect(thrown(() => store.logParams(runId, [{ key: '../p', value: '1' }])).message).toMatch(/invalid param name "..\/p"/);
    expect(thrown(() => store.setTags(runId, [{ key: 'a/../b', value: '1' }])).message).toMatch(/invalid tag name/);
    expect(existsSync(join(store.root, exp, 'escape'))).toBe(false);
  });

  it('copies artifacts under the run artifact directory, nested paths included', () => {
    const store = newStore();
    const exp = store.createExperiment('e');
    const { run_id: runId } = store.createRun(exp, { runName: 'r', userId: '', startTime: 1, tags: [] });
    const src = join(tempDir(), 'scores.csv');
    writeFileSync(src, 'id,score\n0,1.5\n');
    store.logArtifact(runId, src, 'scores/scores-epoch2.csv');
    store.logArtifact(runId, src, 'summary.json');
    const run = readStore(store.root)[0].runs[0];
    expect(run.artifacts).toEqual(['scores/scores-epoch2.csv', 'summary.json']);
    expect(readFileSync(join(store.root, exp, runId, 'artifacts', 'scores', 'scores-epoch2.csv'), 'utf8')).toBe('id,score\n0,1.5\n');
    expect(thrown(() => store.logArtifact(runId, src, '../x')).errorCode).toBe('INVALID_PARAMETER_VALUE');
  });

  it('finds a run by id across experiments and reports unknown runs', () => {
    const store = newStore();
    const a = store.createExperiment('a');
    const b = store.createExperiment('b');
    store.createRun(a, { runName: 'r1', userId: '', startTime: 1, tags: [] });
    const r2 = store.createRun(b, { runName: 'r2', userId: '', startTime: 1, tags: [] });
    const fresh = new MlflowFileStore(store.root);
    expect(fresh.getRun(r2.run_id)?.meta.experiment_id).toBe(b);
    expect(fresh.getRun('0'.repeat(32))).toBeNull();
    expect(thrown(() => fresh.logMetrics('f'.repeat(32), [{ key: 'k', value: 1, timestamp: 1, step: 0 }])).errorCode).toBe('RESOURCE_DOES_NOT_EXIST');
  });

  it('the sink refuses a deleted experiment with a fix, and reopens an existing run', async () => {
    const store = newStore();
    store.ensureRoot();
    mkdirSync(join(store.root, '.trash', '3'), { recursive: true });
    writeFileSync(join(store.root, '.trash', '3', 'meta.yaml'), toYaml({ experiment_id: '3', name: 'gone', artifact_location: 'file:///x', lifecycle_stage: 'deleted' }));
    const sink = new FileStoreSink(store);
    const req = { experiment: 'gone', runName: 'r', userId: 'u', startTime: 5, tags: [] };
    const err = await sink.openRun(req, null, () => {}).catch((e: TrackingError) => e);
    expect(err).toBeInstanceOf(TrackingError);
    expect((err as TrackingError).kind).toBe('fatal');
    expect((err as TrackingError).details.hint).toMatch(/mlflow experiments restore --experiment-id 3/);

    const opened = await sink.openRun({ ...req, experiment: 'live' }, null, () => {});
    await sink.endRun(opened, 'FINISHED', 10);
    const notes: string[] = [];
    const again = await sink.openRun({ ...req, experiment: 'live' }, opened, (m) => notes.push(m));
    expect(again).toMatchObject({ runId: opened.runId, resumed: true });
    expect(readYaml(readFileSync(join(store.root, opened.experimentId, opened.runId, 'meta.yaml'), 'utf8'))).toMatchObject({ status: 1, end_time: null });
    const other = await sink.openRun({ ...req, experiment: 'live' }, { ...opened, runId: 'a'.repeat(32) }, (m) => notes.push(m));
    expect(other.resumed).toBe(false);
    expect(notes.join('\n')).toMatch(/starting a new run/);
  });
});
