import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hnswNeighbors } from '../../src/neighbors/hnsw.js';
import { kernelExactNeighbors } from '../../src/neighbors/kernelSearch.js';
import { parallelExactNeighbors, parallelQueryNeighbors } from '../../src/neighbors/parallel/exact.js';
import { parallelHnswNeighbors } from '../../src/neighbors/parallel/hnsw.js';
import { closeKnnPool, knnPool, KnnPool } from '../../src/neighbors/parallel/pool.js';
import { bruteDistance, bruteKnn, randomPoints } from './brute.js';

// The worker threads run the compiled dist/ (npm run build).
afterAll(async () => {
  await closeKnnPool();
});

function same(a: { indices: Int32Array; distances: Float32Array }, b: { indices: Int32Array; distances: Float32Array }) {
  expect(Array.from(a.indices)).toEqual(Array.from(b.indices));
  expect(Array.from(a.distances)).toEqual(Array.from(b.distances));
}

describe('parallelExactNeighbors', () => {
  it('is identical to the single-thread kernel search for any thread count (L2, cosine, duplicates)', async () => {
    const n = 900, d = 19, k = 10;
    const pts = randomPoints(n, d, 31);
    for (let r = 800; r < 830; r++) pts.set(pts.subarray(5 * d, 6 * d), r * d); // 31 copies of row 5
    for (const distance of ['l2', 'cosine'] as const) {
      const single = kernelExactNeighbors(pts, n, d, k, { distance, tile: 64 });
      for (const threads of [1, 2, 3]) same(await parallelExactNeighbors(pts, n, d, k, { distance, threads, tile: 64, inThreadBelow: 0 }), single);
    }
  });

  it('matches brute force', async () => {
    const n = 260, d = 6, k = 7;
    const pts = randomPoints(n, d, 32);
    const g = await parallelExactNeighbors(pts, n, d, k, { threads: 2, tile: 32, inThreadBelow: 0 });
    const ref = bruteKnn(pts, n, d, k);
    for (let i = 0; i < n; i++) expect(Array.from(g.indices.subarray(i * k, i * k + k))).toEqual(ref.indices[i]);
  });

  it('answers queries with the rows of the full graph', async () => {
    const n = 600, d = 9, k = 6;
    const pts = randomPoints(n, d, 33);
    const full = kernelExactNeighbors(pts, n, d, k);
    const queries = Int32Array.from({ length: 70 }, (_, t) => (t * 53) % n);
    const q = await parallelQueryNeighbors(pts, n, d, queries, k, { threads: 2, tile: 32, inThreadBelow: 0 });
    queries.forEach((row, t) => expect(Array.from(q.indices.subarray(t * k, t * k + k))).toEqual(Array.from(full.indices.subarray(row * k, row * k + k))));
  });
});

describe('parallelHnswNeighbors', () => {
  it('one index per thread: recall@10 >= 0.95, true sorted distances, no self, deterministic', async () => {
    const n = 2000, d = 16, k = 10;
    const pts = randomPoints(n, d, 34);
    const g = await parallelHnswNeighbors(pts, n, d, k, { threads: 2, seed: 3, inThreadBelow: 0 });
    const truth = kernelExactNeighbors(pts, n, d, k);
    let hit = 0;
    for (let i = 0; i < n; i++) {
      const set = new Set(truth.indices.subarray(i * k, i * k + k));
      for (let t = 0; t < k; t++) {
        const j = g.indices[i * k + t];
        if (set.has(j)) hit++;
        expect(j).not.toBe(i);
        if (t > 0) expect(g.distances[i * k + t]).toBeGreaterThanOrEqual(g.distances[i * k + t - 1]);
      }
    }
    expect(hit / (n * k)).toBeGreaterThanOrEqual(0.95);
    expect(g.distances[3 * k + 2]).toBeCloseTo(bruteDistance(pts, d, 3, g.indices[3 * k + 2], 'l2'), 5);
    same(await parallelHnswNeighbors(pts, n, d, k, { threads: 2, seed: 3, inThreadBelow: 0 }), g);
  });

  it('cosine, and in-thread below the size threshold (one index, as hnswNeighbors)', async () => {
    const n = 600, d = 8, k = 5;
    const pts = randomPoints(n, d, 35);
    const g = await parallelHnswNeighbors(pts, n, d, k, { distance: 'cosine', threads: 2, inThreadBelow: 0 });
    const truth = bruteKnn(pts, n, d, k, 'cosine');
    let hit = 0;
    for (let i = 0; i < n; i++) for (let t = 0; t < k; t++) if (truth.indices[i].includes(g.indices[i * k + t])) hit++;
    expect(hit / (n * k)).toBeGreaterThanOrEqual(0.95);
    same(await parallelHnswNeighbors(pts, n, d, k, { seed: 4 }), hnswNeighbors(pts, n, d, k, { seed: 4 }));
  });
});

describe('worker pool', () => {
  it('a task that throws rejects with the worker error; the pool stays usable', async () => {
    const pool = knnPool(2);
    await expect(pool.run({ type: 'selftest', mode: 'throw' })).rejects.toThrow(/selftest failure requested/);
    await expect(pool.run({ type: 'selftest', mode: 'echo', value: 7 })).resolves.toBe(7);
    expect(pool.usable).toBe(true);
  });

  it('a thread that exits rejects its pending tasks instead of hanging, and the next pool starts fresh', async () => {
    const pool = new KnnPool(2);
    const slow = pool.runOn(1, { type: 'selftest', mode: 'echo', value: 1 });
    await expect(pool.runOn(0, { type: 'selftest', mode: 'exit' })).rejects.toThrow(/exited unexpectedly|closed/);
    await slow.catch(() => undefined);
    expect(pool.usable).toBe(false);
    await expect(pool.run({ type: 'selftest', mode: 'echo', value: 2 })).rejects.toThrow();
    const fresh = knnPool(2);
    await expect(fresh.run({ type: 'selftest', mode: 'echo', value: 3 })).resolves.toBe(3);
  });

  it('idle threads do not keep the process alive (no explicit close)', () => {
    const dist = join(import.meta.dirname, '..', '..', 'dist', 'src', 'neighbors', 'parallel', 'exact.js');
    const script = `
      const { parallelExactNeighbors } = await import(${JSON.stringify(dist)});
      const pts = Float32Array.from({ length: 300 * 4 }, (_, i) => Math.sin(i * 12.9898) * 43758.5453 % 1);
      const g = await parallelExactNeighbors(pts, 300, 4, 3, { threads: 2, inThreadBelow: 0 });
      console.log('done', g.n);
    `;
    const t0 = Date.now();
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('done 300');
    expect(r.status).toBe(0);
    expect(Date.now() - t0).toBeLessThan(30_000);
  });
});
