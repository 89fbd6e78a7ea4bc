import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { tempDir } from '../helpers/tiny.js';

describe('configs/', () => {
  const files = readdirSync('configs').filter((f) => /\.(ya?ml|json)$/.test(f));

  it.each(files)('%s is a valid config', (file) => {
    const config = loadConfig({ file: join('configs', file) });
    expect(config.train.epochs).toBeGreaterThan(0);
  });

  it('has a config for every attack on Fashion-MNIST and a quickstart', () => {
    for (const attack of ['badnets', 'blended', 'sig', 'wanet', 'nashville', 'clean-label', 'multi-trigger']) {
      expect(loadConfig({ file: `configs/fashion-mnist-${attack}.yaml` }).poison?.attack).toBe(attack);
    }
    expect(loadConfig({ file: 'configs/quickstart.yaml' }).data.kind).toBe('synthetic');
  });

  it('lets a command-line poison.count replace the file\'s poison.rate (and the reverse)', () => {
    const p = loadConfig({ file: 'configs/quickstart-poisoned.yaml', overrides: { poison: { count: 3 } } }).poison;
    expect(p?.count).toBe(3);
    expect(p?.rate).toBeUndefined();
    expect(loadConfig({ file: 'configs/quickstart-poisoned.yaml', overrides: { poison: { rate: 0.02 } } }).poison?.rate).toBe(0.02);
  });

  it('resolves extends relative to the file and merges the child over the base', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'base.yaml'), 'model:\n  embedDim: 32\n  hidden: [8]\ntrain:\n  epochs: 3\n');
    writeFileSync(join(dir, 'child.yaml'), 'extends: base.yaml\nmodel:\n  embedDim: 16\n');
    const c = loadConfig({ file: join(dir, 'child.yaml'), overrides: { train: { epochs: 5 } } });
    expect(c.model.embedDim).toBe(16);
    expect(c.model.hidden).toEqual([8]);
    expect(c.train.epochs).toBe(5);
    writeFileSync(join(dir, 'a.yaml'), 'extends: b.yaml\n');
    writeFileSync(join(dir, 'b.yaml'), 'extends: a.yaml\n');
    expect(() => loadConfig({ file: join(dir, 'a.yaml') })).toThrow(/cycle/);
  });
});
