import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireBuilt, runCli, TINY_ARGS } from '../helpers/cli.js';
import { tempDir } from '../helpers/tiny.js';
import { readStore } from '../tracking/mlflowReader.js';

beforeAll(requireBuilt);

describe('CLI runs land in ./mlruns by default', () => {
  it('a poisoned, filtered quickstart leaves a store MLflow reads: params, metric histories, tags, artifacts, FINISHED', () => {
    const cwd = tempDir();
    const args = TINY_ARGS.filter((a, i, all) => !(a === '--tracking.enabled' || all[i - 1] === '--tracking.enabled'));
    const r = runCli(
      ['train', '--config', join(process.cwd(), 'configs/quickstart-poisoned.yaml'), '--out', 'runs/a', '--epochs', '2', ...args, '--data.size', '300', '--poison.count', '6', '--backdoor-filter', '--filter.referenceSize', '100', '--filter.referenceRepeats', '1', '--filter.k', '8', '--filter.warmupEpochs', '1', '--filter.rewindAfter', '1'],
      { cwd },
    );
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('FINISHED');
    const experiments = readStore(join(cwd, 'mlruns'));
    expect(experiments.map((e) => e.meta.name)).toEqual(['clip-backdoor-filter']);
    const [run] = experiments[0].runs;
    expect(run.meta.status).toBe(3);
    expect(run.meta.run_name).toBe('a');
    expect(run.params.get('model.embedDim')).toBe('16');
    expect(run.params.get('filter.enabled')).toBe('true');
    expect(run.tags.get('attack')).toBe('badnets');
    expect(run.tags.get('detector')).toBe('slof');
    expect(run.tags.get('backend')).toBe('wasm');
    expect(run.metrics.get('train/loss')!.map((m) => m.step)).toEqual([1, 2, 3]);
    expect(run.metrics.get('filter/auroc')).toHaveLength(1);
    expect(run.artifacts).toEqual(expect.arrayContaining(['summary.json', 'config.json', 'poison.json', 'scores/scores-epoch1.csv']));
  });
});
