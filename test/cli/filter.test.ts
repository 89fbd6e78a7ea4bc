import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeNpy } from '../../src/util/npy.js';
import { Rng } from '../../src/util/rng.js';
import { requireBuilt, runCli, TINY_ARGS } from '../helpers/cli.js';
import { tempDir } from '../helpers/tiny.js';

beforeAll(requireBuilt);

const TINY_POISON = ['--poison.attack', 'badnets', '--poison.position', 'fixed', '--poison.count', '10', '--poison.target', 'red circle'];
const TINY_FILTER = ['--filter.referenceSize', '128', '--filter.referenceRepeats', '1', '--filter.k', '8', '--filter.warmupEpochs', '1', '--filter.rewindAfter', '1'];

describe('CLI: backdoor filter, score, compare, poison, demo', () => {
  it('train --backdoor-filter on a poisoned quickstart records rounds, scores and poison.json', () => {
    const out = tempDir();
    const r = runCli(['train', '--config', 'configs/quickstart.yaml', '--out', out, '--epochs', '2', ...TINY_ARGS, '--data.size', '400', ...TINY_POISON, '--backdoor-filter', ...TINY_FILTER]);
    expect(r.stderr).toMatch(/filter after epoch 1: slof k=8 on 400 samples/);
    expect(r.status).toBe(0);
    const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(s.poison).toEqual({ attack: 'badnets', target: 'red circle', rate: 10 / 400, count: 10 });
    expect(s.filter.rounds).toHaveLength(1);
    expect(Object.keys(s.filter.rounds[0])).toEqual(expect.arrayContaining(['epoch', 'seconds', 'dropped', 'meanWeight', 'auroc', 'auprc', 'fprAt95Tpr', 'poisonRecall', 'cleanDropped']));
    expect(s.eval.attackSuccessRate).toBeGreaterThanOrEqual(0);
    expect(existsSync(join(out, 'scores-epoch1.csv'))).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'poison.json'), 'utf8')).indices).toHaveLength(10);
    const cmp = runCli(['compare', out, join(out, 'summary.json'), '--format', 'json']);
    expect(cmp.status).toBe(0);
    const rows = JSON.parse(cmp.stdout);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ attack: 'badnets', poisonCount: 10, decidingEpoch: 1 });
    // the quickstart has 12 classes, each with test images: one accuracy per class
    expect(Object.keys(s.eval.accuracyByClass)).toHaveLength(12);
    const byClass = runCli(['compare', out, out, '--by-class']);
    expect(byClass.status).toBe(0);
    expect(byClass.stdout).toMatch(/^red circle\s+\d\.\d{3}\s+\d\.\d{3} \(\+0\.0\)$/m);
  });

  it('score reads .npy embeddings, prints AUROC against labels, and writes a CSV', () => {
    const dir = tempDir();
    const rng = new Rng(3);
    const n = 300;
    const d = 8;
    const emb = new Float32Array(n * d);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const poisoned = i < 5;
      labels[i] = poisoned ? 1 : 0;
      for (let j = 0; j < d; j++) emb[i * d + j] = poisoned ? 6 + 0.01 * rng.normal() + (j === i ? 3 : 0) : rng.normal();
    }
    writeNpy(join(dir, 'emb.npy'), emb, [n, d]);
    writeNpy(join(dir, 'labels.npy'), labels, [n]);
    const r = runCli(['score', '--embeddings', join(dir, 'emb.npy'), '--labels', join(dir, 'labels.npy'), '--detector', 'kdist', '--k', '8', '--reference', 'all', '--scores', join(dir, 's.csv')]);
    expect(r.status).toBe(0);
    const auroc = Number(/AUROC (\S+)/.exec(r.stdout)?.[1]);
    expect(auroc).toBeGreaterThan(0.95);
    const csv = readFileSync(join(dir, 's.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('index,score,poisoned');
    expect(csv).toHaveLength(n + 1);
  });

  it('score --anchor-embeddings also scores the displacement: poisons hidden among clean embeddings that moved together', () => {
    const dir = tempDir();
    const rng = new Rng(5);
    const n = 300;
    const d = 8;
    const emb = new Float32Array(n * d);
    const anchor = new Float32Array(n * d);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = i < 5 ? 1 : 0;
      for (let j = 0; j < d; j++) {
        emb[i * d + j] = rng.normal(); // poisons sit where clean samples do
        // clean samples barely moved since the anchor; the poisons all came from +5 along the first axis
        anchor[i * d + j] = emb[i * d + j] - (labels[i] ? (j === 0 ? 5 : 0) + 0.01 * rng.normal() : 0.05 * rng.normal());
      }
    }
    writeNpy(join(dir, 'emb.npy'), emb, [n, d]);
    writeNpy(join(dir, 'anchor.npy'), anchor, [n, d]);
    writeNpy(join(dir, 'short.npy'), anchor.subarray(0, (n - 1) * d), [n - 1, d]);
    writeNpy(join(dir, 'labels.npy'), labels, [n]);
    const score = (...extra: string[]) => runCli(['score', '--embeddings', join(dir, 'emb.npy'), '--labels', join(dir, 'labels.npy'), '--k', '8', '--reference', 'all', '--scores', join(dir, 's.csv'), ...extra]);
    const position = score();
    expect(position.status).toBe(0);
    expect(Number(/AUROC (\S+)/.exec(position.stdout)?.[1])).toBeLessThan(0.8);
    const both = score('--anchor-embeddings', join(dir, 'anchor.npy'));
    expect(both.status).toBe(0);
    expect(Number(/AUROC (\S+)/.exec(both.stdout)?.[1])).toBeGreaterThan(0.99);
    // captions join the embeddings' references, not the movement's
    writeNpy(join(dir, 'text.npy'), emb, [n, d]);
    const withText = score('--anchor-embeddings', join(dir, 'anchor.npy'), '--text-embeddings', join(dir, 'text.npy'), '--filter.embedding', 'image+text');
    expect(withText.stderr).toBe('');
    expect(withText.status).toBe(0);
    const short = score('--anchor-embeddings', join(dir, 'short.npy'));
    expect(short.status).not.toBe(0);
    expect(short.stderr).toContain('--anchor-embeddings has shape (299, 8)');
  });

  it('score rejects npy files of the wrong dtype or shape, naming the file', () => {
    const dir = tempDir();
    writeNpy(join(dir, 'ints.npy'), new Int32Array(6), [3, 2]);
    writeNpy(join(dir, 'flat.npy'), new Float32Array(6), [6]);
    for (const f of ['ints.npy', 'flat.npy']) {
      const r = runCli(['score', '--embeddings', join(dir, f), '--scores', join(dir, 'x.csv')]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(f);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('poison --preview writes the trigger grid and poison.json', () => {
    const out = tempDir();
    const r = runCli(['poison', '--config', 'configs/quickstart-poisoned.yaml', '--data.size', '200', '--out', out, '--preview', '4']);
    expect(r.status).toBe(0);
    expect(existsSync(join(out, 'poison-preview.png'))).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'poison.json'), 'utf8')).count).toBe(2);
  });

  it('demo runs clean, poisoned and filtered runs and prints the comparison', () => {
    const dir = tempDir();
    const cfg = join(dir, 'tiny.yaml');
    writeFileSync(
      cfg,
      [
        `extends: ${join(process.cwd(), 'configs/quickstart-poisoned.yaml')}`,
        'data: {size: 300, testSize: 60, imageSize: 8}',
        'model: {hidden: [32], embedDim: 16, textWidth: 16, maxTokens: 8}',
        'train: {epochs: 2, batchSize: 32, warmupSteps: 2}',
        'tracking: {enabled: false}',
        'filter: {referenceSize: 100, referenceRepeats: 1, k: 8, warmupEpochs: 1, rewindAfter: 1}',
      ].join('\n'),
    );
    const r = runCli(['demo', '--config', cfg, '--out', join(dir, 'demo'), '--backend', 'wasm', '--quiet', '--seed', '3', '--filter.k', '6', '--poison.target', 'blue cross']);
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n');
    for (const name of ['clean', 'poisoned', 'filtered']) expect(lines.some((l) => l.startsWith(name))).toBe(true);
    expect(r.stdout).toContain('ASR');
    // the overrides reach all three runs, under each run's own keys
    const config = (name: string) => JSON.parse(readFileSync(join(dir, 'demo', name, 'summary.json'), 'utf8')).config;
    for (const name of ['clean', 'poisoned', 'filtered']) {
      expect(config(name).seed).toBe(3);
      expect(config(name).poison.target).toBe('blue cross');
      expect(config(name).filter.k).toBe(6);
    }
    expect(config('clean').poison.count).toBe(0);
    expect(config('poisoned').filter.enabled).toBe(false);
    expect(config('filtered').filter).toMatchObject({ enabled: true, referenceSize: 100 });
    const bad = runCli(['demo', '--config', cfg, '--out', join(dir, 'bad'), '--quiet', '--filtr.k', '6']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('unknown option: --filtr');
    expect(existsSync(join(dir, 'bad'))).toBe(false);
  });
});
