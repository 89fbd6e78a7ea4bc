import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.js';
import { createDetector, DETECTOR_NAMES, type DetectorName } from '../../src/detectors/index.js';
import { closeKnnPool } from '../../src/neighbors/parallel/pool.js';
import { DEFAULT_SEARCH, type NeighborSearchOptions } from '../../src/neighbors/search.js';
import { Rng } from '../../src/util/rng.js';
import { randomPoints } from '../neighbors/brute.js';

// scoreAsync runs the compiled worker (npm run build); score() is the single-thread reference.
beforeAll(async () => {
  await selectBackend('wasm');
});
afterAll(async () => {
  await closeKnnPool();
});

const search = (over: Partial<NeighborSearchOptions>): NeighborSearchOptions => ({ ...DEFAULT_SEARCH, ...over });
const neighbourDetectors = DETECTOR_NAMES.filter((n) => n !== 'iforest' && n !== 'clipscore');

describe('scoreAsync', () => {
  it.each(neighbourDetectors)('%s: sampled references on threads give exactly the single-thread scores', async (name) => {
    const n = 420, d = 8, k = 6;
    const pts = randomPoints(n, d, 301);
    const det = createDetector(name as DetectorName, { search: search({ reference: 'sampled', referenceSize: 90, referenceRepeats: 3 }) });
    const sync = det.score({ embeddings: pts, n, d, k, rng: new Rng(5) });
    const par = await det.scoreAsync({ embeddings: pts, n, d, k, rng: new Rng(5) }, { threads: 2 });
    expect(Array.from(par)).toEqual(Array.from(sync));
  });

  it('does not depend on the thread count', async () => {
    const n = 500, d = 5, k = 4;
    const pts = randomPoints(n, d, 308);
    const det = createDetector('slof', { search: search({ reference: 'sampled', referenceSize: 64, referenceRepeats: 2 }) });
    const one = await det.scoreAsync({ embeddings: pts, n, d, k, rng: new Rng(7) }, { threads: 1 });
    const three = await det.scoreAsync({ embeddings: pts, n, d, k, rng: new Rng(7) }, { threads: 3 });
    expect(Array.from(three)).toEqual(Array.from(one));
  });

  it('image+text mode over sampled chunks, and non-finite rows (+Infinity, left out of every reference)', async () => {
    const n = 400, d = 6, k = 5;
    const images = randomPoints(n, d, 302);
    const captions = randomPoints(n, d, 303);
    images[17 * d + 2] = NaN;
    captions[230 * d] = Infinity;
    for (const name of ['slof', 'dao-official'] as const) {
      const det = createDetector(name, { embedding: 'image+text', search: search({ reference: 'sampled', referenceSize: 64, referenceRepeats: 2 }) });
      const input = { embeddings: images, textEmbeddings: captions, n, d, k };
      const sync = det.score({ ...input, rng: new Rng(6) });
      const par = await det.scoreAsync({ ...input, rng: new Rng(6) }, { threads: 2 });
      expect(Array.from(par)).toEqual(Array.from(sync));
      expect(par[17]).toBe(Infinity);
      expect(par[230]).toBe(Infinity);
    }
  });

  it('whole-set exact references: the parallel graph gives exactly the single-thread scores', async () => {
    const n = 4300, d = 5, k = 8; // above the size where the search moves to threads
    const pts = randomPoints(n, d, 304);
    for (const name of ['slof', 'lof', 'kdist-official'] as const) {
      const det = createDetector(name, { search: search({ reference: 'all', method: 'exact', threads: 2 }) });
      const sync = det.score({ embeddings: pts, n, d, k });
      expect(Array.from(await det.scoreAsync({ embeddings: pts, n, d, k }))).toEqual(Array.from(sync));
    }
  });

  it('whole-set HNSW references on threads give nearly the exact scores', async () => {
    const n = 4200, d = 6, k = 8;
    const pts = randomPoints(n, d, 305);
    const exact = createDetector('slof', { search: search({ reference: 'all', method: 'exact' }) }).score({ embeddings: pts, n, d, k });
    const hnsw = await createDetector('slof', { search: search({ reference: 'all', method: 'hnsw' }) }).scoreAsync({ embeddings: pts, n, d, k, rng: new Rng(2) }, { threads: 2 });
    let same = 0;
    for (let i = 0; i < n; i++) if (Math.abs(exact[i] - hnsw[i]) < 1e-9) same++;
    expect(same / n).toBeGreaterThan(0.9);
  });

  it('baselines without neighbours return their in-thread scores', async () => {
    const n = 120, d = 4;
    const pts = randomPoints(n, d, 306);
    const text = randomPoints(n, d, 307);
    for (const name of ['iforest', 'clipscore'] as const) {
      const det = createDetector(name);
      const input = { embeddings: pts, textEmbeddings: text, n, d, k: 5, rng: new Rng(1) };
      expect(Array.from(await det.scoreAsync({ ...input, rng: new Rng(1) }))).toEqual(Array.from(det.score({ ...input, rng: new Rng(1) })));
    }
  });
});
