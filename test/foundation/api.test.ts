import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import * as library from '../../src/index.js';
import { requireBuilt } from '../helpers/cli.js';
import { tempDir } from '../helpers/tiny.js';

/** The README's example under "Programmatic API and hooks", as written there. */
function readmeApiExample(): string {
  const readme = readFileSync(resolve('README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Programmatic API and hooks'));
  const block = /```ts\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error('README: no ts example under "Programmatic API and hooks"');
  return block[1];
}

describe('the library entry point', () => {
  it('exports what the README and the CLI build on: the filter hook, the pipeline, detectors, neighbours, metrics, attacks, tracking, compare', () => {
    for (const name of [
      'runTraining',
      'runPipeline',
      'backdoorFilter',
      'BackdoorFilter',
      'decideWeights',
      'scoreEmbeddings',
      'createDetector',
      'buildGraph',
      'auroc',
      'poisonDataset',
      'mlflowTracking',
      'compareRun',
    ]) {
      expect(typeof (library as Record<string, unknown>)[name], name).toBe('function');
    }
  });

  it('runs the README\'s programmatic example against the built package', () => {
    requireBuilt();
    const example = readmeApiExample();
    // every name the example imports from the package must exist (a missing one fails the ESM link below too)
    const imported = /import \{([^}]*)\} from 'clip-backdoor-filter'/.exec(example)![1].split(',').map((s) => s.trim()).filter((s) => s && !s.startsWith('type '));
    expect(imported.length).toBeGreaterThan(0);
    for (const name of imported) expect(Object.keys(library), name).toContain(name);
    const js = ts.transpileModule(example, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    const entry = pathToFileURL(resolve('dist/src/index.js')).href;
    const dir = tempDir('cbf-api-');
    writeFileSync(join(dir, 'example.mjs'), js.replace(`'clip-backdoor-filter'`, `'${entry}'`));
    const run = spawnSync(process.execPath, ['example.mjs'], { cwd: dir, encoding: 'utf8', timeout: 300_000 });
    expect(run.stderr).not.toMatch(/Error/);
    expect(run.status).toBe(0);
    // runPipeline, "exactly what the CLI does", tracks to ./mlruns by default
    expect(existsSync(join(dir, 'mlruns'))).toBe(true);
    expect(readdirSync(join(dir, 'mlruns')).length).toBeGreaterThan(0);
  }, 300_000);
});
