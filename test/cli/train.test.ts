import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireBuilt, runCli, startCli, TINY_ARGS } from '../helpers/cli.js';
import { tempDir } from '../helpers/tiny.js';

beforeAll(requireBuilt);

const readSummary = (dir: string) => JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));

describe('clip-backdoor-filter train', () => {
  it('runs one epoch end to end and writes the summary contract', () => {
    const out = tempDir();
    const r = runCli(['train', '--config', 'configs/quickstart.yaml', '--out', out, '--epochs', '1', ...TINY_ARGS]);
    expect(r.stderr).toContain('backend: wasm');
    expect(r.status).toBe(0);
    const s = readSummary(out);
    expect(s.backend).toBe('wasm');
    expect(s.status).toBe('finished');
    expect(s.dataset).toEqual({ name: 'synthetic', trainSize: 256, testSize: 96 });
    expect(s.epochs).toHaveLength(1);
    expect(Object.keys(s.epochs[0])).toEqual(expect.arrayContaining(['epoch', 'loss', 'temperature', 'samplesPerSecond', 'activeSamples']));
    expect(s.eval.cleanAccuracy).toBeGreaterThanOrEqual(0);
    expect(s.eval.attackSuccessRate).toBeNull();
    expect(s.poison).toBeNull();
    expect(s.filter).toBeNull();
    expect(s.timings.totalSeconds).toBeGreaterThan(0);
    expect(s.config.model.embedDim).toBe(16);
    expect(existsSync(join(out, 'checkpoints', 'last', 'model.json'))).toBe(true);
  });

  it('rejects an unknown config key, naming it, before doing any work', () => {
    const out = tempDir();
    const r = runCli(['train', '--config', 'configs/quickstart.yaml', '--epochs', '2', '--model.nope', '3', '--out', out]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('model.nope');
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace for bad input
    expect(existsSync(join(out, 'summary.json'))).toBe(false);
  });

  it('rejects a wrong type and a missing config file clearly', () => {
    const bad = runCli(['train', '--train.epochs', 'many']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('"train.epochs" has value "many"');
    const missing = runCli(['train', '--config', 'configs/nope.yaml']);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('configs/nope.yaml');
  });

  it('names the Debian package when Fashion-MNIST is missing', () => {
    const r = runCli(['train', '--config', 'configs/fashion-mnist.yaml', '--data.dir', '/nonexistent', '--out', tempDir(), '--backend', 'wasm', '--tracking.enabled', 'false']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('apt-get install dataset-fashion-mnist');
    expect(r.stderr).toContain('data.dir');
  });

  it('survives SIGKILL mid-run: --resume finishes with the same epochs and summary as an uninterrupted run', async () => {
    const args = ['train', '--config', 'configs/quickstart.yaml', ...TINY_ARGS, '--data.size', '1024', '--epochs', '5'];
    const straight = tempDir();
    expect(runCli([...args, '--out', straight]).status).toBe(0);
    const killed = tempDir();
    const child = startCli([...args, '--out', killed]);
    const state = join(killed, 'checkpoints', 'last', 'state.json');
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        try {
          if (existsSync(state) && JSON.parse(readFileSync(state, 'utf8')).epoch >= 2) {
            clearInterval(timer);
            child.kill('SIGKILL');
            resolve();
          }
        } catch {
          /* state.json is replaced atomically; a read can race the rename */
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(timer);
        resolve();
      });
      setTimeout(() => reject(new Error('no checkpoint appeared')), 60_000);
    });
    const resumed = runCli(['train', '--resume', killed, '--quiet']);
    expect(resumed.status).toBe(0);
    const a = readSummary(straight);
    const b = readSummary(killed);
    expect(b.status).toBe('finished');
    expect(b.epochs).toHaveLength(5);
    const strip = (s: { epochs: { loss: number; cleanAccuracy: number; activeSamples: number }[] }) => s.epochs.map(({ loss, cleanAccuracy, activeSamples }) => ({ loss, cleanAccuracy, activeSamples }));
    expect(strip(b)).toEqual(strip(a));
    expect(b.eval).toEqual(a.eval);
  });

  it('documents every command and the config override syntax in --help', () => {
    const r = runCli(['train', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('--backdoor-filter');
    expect(r.stdout).toContain('--resume');
    expect(r.stdout).toContain('dot notation');
  });
});
