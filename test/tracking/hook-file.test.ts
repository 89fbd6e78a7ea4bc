import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { flattenConfig } from '../../src/config/load.js';
import type { RawConfig } from '../../src/config/schema.js';
import { mlflowTracking, type MlflowTrackingOptions } from '../../src/tracking/index.js';
import { gitCommit } from '../../src/tracking/system.js';
import type { TrainHook } from '../../src/train/hooks.js';
import type { RunStatus } from '../../src/train/summary.js';
import { fakeContext, tempDir, writeSummary, type FakeContext } from './fakeContext.js';
import { readStore, readYaml } from './mlflowReader.js';

/** What the trainer does, reduced to what the hook sees: begin, metrics and artifacts per epoch, summary.json, end. */
async function train(hook: TrainHook, ctx: FakeContext, epochs: number[], status: RunStatus = 'finished'): Promise<void> {
  mkdirSync(ctx.outDir, { recursive: true });
  await hook.onTrainBegin!(ctx);
  for (const epoch of epochs) {
    ctx.recorder.log(
      {
        'train/loss': 1 / epoch,
        'train/temperature': 0.07,
        'eval/clean_accuracy': epoch === 2 ? NaN : 0.5 + epoch / 100,
        'eval/attack_success_rate': null,
        'filter/auroc': epoch === 3 ? Infinity : 0.9,
      },
      epoch,
    );
    const scores = join(ctx.outDir, `scores-epoch${epoch}.csv`);
    writeFileSync(scores, `index,score\n0,${epoch}\n`);
    ctx.recorder.addArtifact(scores, `scores/scores-epoch${epoch}.csv`);
  }
  writeSummary(ctx, status);
  await hook.onTrainEnd!(ctx, { status });
}

function setup(config: RawConfig = {}, options: MlflowTrackingOptions = {}) {
  const root = tempDir();
  const outDir = join(root, 'out', 'run-a');
  const store = join(root, 'mlruns');
  const ctx = fakeContext({ outDir, config: { ...config, tracking: { uri: store, ...(config.tracking ?? {}) } } });
  const hook = mlflowTracking({ env: {}, ...options });
  return { root, outDir, store, ctx, hook };
}

describe('mlflowTracking with the local file store', () => {
  it('records a run completely: params, metrics with steps, tags, artifacts, status', async () => {
    const config: RawConfig = {
      poison: { attack: 'badnets', rate: 0.1, target: 'a' },
      filter: { enabled: true, detector: 'kdist' },
      tracking: { experiment: 'exp-a', tags: { owner: 'me', 'bad key!': 'v' }, logModel: true },
    };
    const { outDir, store, ctx, hook } = setup(config);
    mkdirSync(join(outDir, 'checkpoints', 'last', 'model'), { recursive: true });
    writeFileSync(join(outDir, 'checkpoints', 'last', 'model', 'weights.bin'), Buffer.from([1, 2, 3]));
    writeFileSync(join(outDir, 'checkpoints', 'last', 'state.json'), '{}');
    await train(hook, ctx, [1, 2, 3]);

    const experiments = readStore(store);
    expect(experiments).toHaveLength(1);
    const [exp] = experiments;
    expect(exp.meta.name).toBe('exp-a');
    expect(exp.runs).toHaveLength(1);
    const run = exp.runs[0];
    expect(run.meta).toMatchObject({ status: 3, run_name: 'run-a', lifecycle_stage: 'active', user_id: expect.any(String) });
    expect(Number.isInteger(run.meta.end_time)).toBe(true);
    expect(run.meta.artifact_uri).toBe(pathToFileURL(join(run.dir, 'artifacts')).href);

    // Params: the whole resolved config, flattened.
    const expected = Object.fromEntries(flattenConfig(ctx.config).map(([k, v]) => [k.replace('bad key!', 'bad key_'), v]));
    expect(Object.fromEntries(run.params)).toEqual(expected);
    expect(run.params.get('model.embedDim')).toBe('128');
    expect(run.params.get('filter.k')).toBe('16');

    // Metrics: every key as given, one line per epoch, NaN/inf kept, null skipped.
    expect([...run.metrics.keys()].sort()).toEqual(['eval/clean_accuracy', 'filter/auroc', 'train/loss', 'train/temperature']);
    expect(run.metrics.get('train/loss')!.map((m) => [m.step, m.value])).toEqual([
      [1, 1],
      [2, 0.5],
      [3, 1 / 3],
    ]);
    expect(run.metrics.get('eval/clean_accuracy')![1].value).toBeNaN();
    expect(run.metrics.get('filter/auroc')![2].value).toBe(Infinity);
    expect(readFileSync(join(run.dir, 'metrics', 'eval', 'clean_accuracy'), 'utf8').split('\n')[1]).toMatch(/^\d+ nan 2$/);

    // Tags.
    expect(run.tags.get('dataset')).toBe('synthetic');
    expect(run.tags.get('attack')).toBe('badnets');
    expect(run.tags.get('detector')).toBe('kdist');
    expect(run.tags.get('backend')).toBe('cpu');
    expect(run.tags.get('owner')).toBe('me');
    expect(run.tags.get('bad key_')).toBe('v');
    expect(run.tags.get('mlflow.runName')).toBe('run-a');
    expect(run.tags.get('mlflow.source.type')).toBe('LOCAL');
    expect(run.tags.get('mlflow.source.name')).toBeTruthy();
    expect(run.tags.has('mlflow.user')).toBe(true);
    expect(ctx.logs.filter((l) => l.includes('"bad key!"'))).toHaveLength(1);

    // Artifacts: registered files, summary.json, config.json, the checkpoint.
    expect(run.artifacts).toEqual([
      'checkpoints/last/model/weights.bin',
      'checkpoints/last/state.json',
      'config.json',
      'scores/scores-epoch1.csv',
      'scores/scores-epoch2.csv',
      'scores/scores-epoch3.csv',
      'summary.json',
    ]);
    const artifacts = join(run.dir, 'artifacts');
    expect(JSON.parse(readFileSync(join(artifacts, 'summary.json'), 'utf8')).status).toBe('finished');
    expect(JSON.parse(readFileSync(join(artifacts, 'config.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(ctx.config)));

    expect(JSON.parse(readFileSync(join(outDir, 'mlflow-run.json'), 'utf8'))).toEqual({ uri: pathToFileURL(store).href, experimentId: exp.id, runId: run.id });
    expect(existsSync(join(outDir, 'mlflow-spool.jsonl'))).toBe(false);
    const last = ctx.logs[ctx.logs.length - 1];
    expect(last).toMatch(/^mlflow: run "run-a" \([0-9a-f]{32}\) FINISHED/);
    expect(last).toContain(`mlflow ui --backend-store-uri ${pathToFileURL(store).href}`);
  });

  it('a resumed run continues the same MLflow run: RUNNING again, metrics appended', async () => {
    const { outDir, store, ctx, hook } = setup({ tracking: { experiment: 'resume' } });
    await train(hook, ctx, [1, 2], 'killed');
    let run = readStore(store)[0].runs[0];
    expect(run.meta.status).toBe(5);

    const ctx2 = fakeContext({ outDir, config: { tracking: { uri: store, experiment: 'resume' } } });
    const hook2 = mlflowTracking({ env: {} });
    await hook2.onTrainBegin!(ctx2);
    run = readStore(store)[0].runs[0];
    expect(run.meta).toMatchObject({ status: 1, end_time: null });
    for (const epoch of [3, 4]) ctx2.recorder.log({ 'train/loss': 1 / epoch }, epoch);
    writeSummary(ctx2, 'finished');
    await hook2.onTrainEnd!(ctx2, { status: 'finished' });

    const experiments = readStore(store);
    expect(experiments[0].runs).toHaveLength(1);
    run = experiments[0].runs[0];
    expect(run.meta.status).toBe(3);
    expect(run.metrics.get('train/loss')!.map((m) => m.step)).toEqual([1, 2, 3, 4]);
    expect(ctx2.logs.some((l) => l.includes(`continuing run "run-a" (${run.id})`))).toBe(true);
  });

  it('the same hook and recorder used for a second training (retrain mode) log each point once', async () => {
    const { store, ctx, hook } = setup();
    // Logged by a hook that ran before this one in onTrainBegin, and between the two trainings.
    ctx.recorder.log({ 'filter/warmup': 1 }, 0);
    await train(hook, ctx, [1, 2]);
    ctx.recorder.log({ 'filter/warmup': 2 }, 2);
    await train(hook, ctx, [3]);
    const run = readStore(store)[0].runs[0];
    expect(run.metrics.get('train/loss')!.map((m) => m.step)).toEqual([1, 2, 3]);
    expect(run.metrics.get('filter/warmup')!.map((m) => m.value)).toEqual([1, 2]);
  });

  it('ends FAILED or KILLED as the trainer says', async () => {
    for (const [status, code] of [['failed', 4], ['killed', 5]] as const) {
      const { store, ctx, hook } = setup();
      await train(hook, ctx, [1], status);
      expect(readStore(store)[0].runs[0].meta.status).toBe(code);
    }
  });

  it('puts a second run of another output directory into the same experiment', async () => {
    const { root, store, ctx, hook } = setup({ tracking: { experiment: 'shared' } });
    await train(hook, ctx, [1]);
    const ctx2 = fakeContext({ outDir: join(root, 'out', 'run-b'), config: { tracking: { uri: store, experiment: 'shared' } } });
    await train(mlflowTracking({ env: {} }), ctx2, [1]);
    const experiments = readStore(store);
    expect(experiments).toHaveLength(1);
    expect(experiments[0].runs.map((r) => r.meta.run_name).sort()).toEqual(['run-a', 'run-b']);
  });

  it('truncates values over MLflow limits with a marker and warns once', async () => {
    const long = `a photo of a {} ${'x'.repeat(7000)}`;
    const { store, ctx, hook } = setup({ data: { captionTemplates: [long] }, eval: { promptTemplates: [long] }, tracking: { tags: { note: 'y'.repeat(6000) } } });
    await train(hook, ctx, [1]);
    const run = readStore(store)[0].runs[0];
    const param = run.params.get('data.captionTemplates')!;
    expect(param).toHaveLength(6000);
    expect(param.endsWith('...[truncated]')).toBe(true);
    expect(run.tags.get('note')).toHaveLength(5000);
    const warnings = ctx.logs.filter((l) => l.includes('exceed MLflow'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('data.captionTemplates');
  });

  it('logs invalid metric names under a sanitised name, warning once per name', async () => {
    const { store, ctx, hook } = setup();
    await hook.onTrainBegin!(ctx);
    ctx.recorder.log({ 'acc@1': 0.5 }, 1);
    ctx.recorder.log({ 'acc@1': 0.6 }, 2);
    await hook.onTrainEnd!(ctx, { status: 'finished' });
    const run = readStore(store)[0].runs[0];
    expect(run.metrics.get('acc_1')!.map((m) => m.value)).toEqual([0.5, 0.6]);
    expect(ctx.logs.filter((l) => l.includes('"acc@1"'))).toHaveLength(1);
  });

  it('takes the URI from options, then tracking.uri, then MLFLOW_TRACKING_URI', async () => {
    const root = tempDir();
    const fromEnv = join(root, 'env-store');
    const fromConfig = join(root, 'config-store');
    const fromOption = join(root, 'option-store');
    await train(mlflowTracking({ env: { MLFLOW_TRACKING_URI: fromEnv } }), fakeContext({ outDir: join(root, 'a') }), [1]);
    await train(mlflowTracking({ env: { MLFLOW_TRACKING_URI: fromEnv } }), fakeContext({ outDir: join(root, 'b'), config: { tracking: { uri: fromConfig } } }), [1]);
    await train(mlflowTracking({ env: { MLFLOW_TRACKING_URI: fromEnv }, uri: `file://${fromOption}` }), fakeContext({ outDir: join(root, 'c'), config: { tracking: { uri: fromConfig } } }), [1]);
    expect(readStore(fromEnv)[0].runs.map((r) => r.meta.run_name)).toEqual(['a']);
    expect(readStore(fromConfig)[0].runs.map((r) => r.meta.run_name)).toEqual(['b']);
    expect(readStore(fromOption)[0].runs.map((r) => r.meta.run_name)).toEqual(['c']);
  });

  it('does nothing when tracking is off', async () => {
    const { store, ctx, hook } = setup({ tracking: { enabled: false } });
    await train(hook, ctx, [1]);
    expect(existsSync(store)).toBe(false);
    expect(ctx.logs).toEqual([]);
  });

  it('fails before training, with a fix, when the experiment is deleted', async () => {
    const { store, ctx, hook } = setup({ tracking: { experiment: 'gone' } });
    mkdirSync(join(store, '.trash', '4'), { recursive: true });
    writeFileSync(join(store, '.trash', '4', 'meta.yaml'), "artifact_location: 'file:///x'\nexperiment_id: '4'\nlifecycle_stage: 'deleted'\nname: 'gone'\n");
    await expect(hook.onTrainBegin!(ctx)).rejects.toMatchObject({ name: 'UserError', code: 'TRACKING_FAILED', hint: expect.stringContaining('restore') });
  });

  it('writes the git commit tag inside a repository only', () => {
    expect(gitCommit(tempDir())).toBeNull();
    const head = gitCommit(join(import.meta.dirname, '..', '..'));
    if (head !== null) expect(head).toMatch(/^[0-9a-f]{40}$/);
  });

  it('start time, end time and status in meta.yaml are integers', async () => {
    const { store, ctx, hook } = setup();
    await train(hook, ctx, [1]);
    const text = readStore(store)[0].runs[0].metaText;
    const meta = readYaml(text);
    for (const k of ['start_time', 'end_time', 'status', 'source_type']) expect(Number.isInteger(meta[k]), k).toBe(true);
    expect((meta.end_time as number) >= (meta.start_time as number)).toBe(true);
  });
});
