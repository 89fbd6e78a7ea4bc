import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.js';
import { createDetector } from '../../src/detectors/index.js';
import { spearman } from '../../src/metrics/detection.js';
import { DEFAULT_SEARCH } from '../../src/neighbors/search.js';
import { readNpy, writeNpy } from '../../src/util/npy.js';
import { Rng } from '../../src/util/rng.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, '..', '..', 'examples', 'check-lof-sklearn.py');

describe('lof matches scikit-learn LocalOutlierFactor', () => {
  let dir: string;
  beforeAll(async () => {
    await selectBackend('wasm');
    dir = mkdtempSync(join(tmpdir(), 'lof-sklearn-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('Spearman >= 0.999 and values within 1e-5 on clustered data (exact neighbours, k = 12)', (ctx) => {
    const n = 800, d = 16, k = 12;
    // Five Gaussian clusters plus wider-spread points, no exact duplicates.
    const rng = new Rng(5, 'lof-sklearn');
    const centres = Array.from({ length: 5 }, () => Array.from({ length: d }, () => rng.normal() * 3));
    const x = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      const spread = i % 50 === 0 ? 4 : 1;
      for (let f = 0; f < d; f++) x[i * d + f] = centres[i % 5][f] + spread * rng.normal();
    }
    const ours = createDetector('lof', { search: { ...DEFAULT_SEARCH, reference: 'all' } }).score({ embeddings: x, n, d, k });
    const input = join(dir, 'x.npy');
    const output = join(dir, 'sklearn.npy');
    const oursPath = join(dir, 'ours.npy');
    writeNpy(input, x, [n, d]);
    writeNpy(oursPath, ours, [n]);

    // One interpreter start (about 1 s): the script computes scikit-learn's LOF and compares.
    const r = spawnSync(PYTHON, [SCRIPT, input, String(k), output, oursPath], { encoding: 'utf8' });
    if (r.error || /ModuleNotFoundError|No module named/.test(r.stderr)) {
      console.warn(`skipping the scikit-learn LOF comparison: ${PYTHON} with numpy, scipy and scikit-learn is not available (${r.error?.message ?? r.stderr.trim().split('\n').pop()}); install python3-sklearn`);
      ctx.skip();
    }
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^spearman 1\.000000/);

    const ref = readNpy(output);
    expect(ref.dtype).toBe('f8');
    expect(ref.shape).toEqual([n]);
    expect(spearman(ours, ref.data)).toBeGreaterThanOrEqual(0.999);
    for (let i = 0; i < n; i++) expect(Math.abs(ours[i] - ref.data[i])).toBeLessThanOrEqual(1e-5 * Math.max(1, ref.data[i]));
  });
});
