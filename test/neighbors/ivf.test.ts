import { afterAll, describe, expect, it } from 'vitest';
import { ivfNeighbors, ivfPlan, listMembers } from '../../src/neighbors/ivf.js';
import { kernelExactNeighbors } from '../../src/neighbors/kernelSearch.js';
import { parallelIvfNeighbors } from '../../src/neighbors/parallel/ivf.js';
import { closeKnnPool } from '../../src/neighbors/parallel/pool.js';
import { buildGraph, DEFAULT_SEARCH } from '../../src/neighbors/search.js';
import { Rng } from '../../src/util/rng.js';
import { bruteDistance, randomPoints } from './brute.js';

afterAll(async () => {
  await closeKnnPool();
});

/** 20 Gaussian clusters in d dimensions. */
function clustered(n: number, d: number, seed: number): Float32Array {
  const rng = new Rng(seed, 'ivf-test');
  const centres = Array.from({ length: 20 }, () => Array.from({ length: d }, () => 4 * rng.normal()));
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (let f = 0; f < d; f++) x[i * d + f] = centres[i % 20][f] + rng.normal();
  return x;
}

function recall(found: Int32Array, truth: Int32Array, n: number, k: number): number {
  let hit = 0;
  for (let i = 0; i < n; i++) {
    const want = new Set(truth.subarray(i * k, i * k + k));
    for (let t = 0; t < k; t++) if (want.has(found[i * k + t])) hit++;
  }
  return hit / (n * k);
}

describe('ivfNeighbors', () => {
  it('reaches recall@10 >= 0.95 on clustered data, with exact sorted distances and no self', () => {
    const n = 3000, d = 24, k = 10;
    const pts = clustered(n, d, 1);
    const g = ivfNeighbors(pts, n, d, k, { probes: 4 });
    expect(recall(g.indices, kernelExactNeighbors(pts, n, d, k).indices, n, k)).toBeGreaterThanOrEqual(0.95);
    for (let i = 0; i < n; i += 97) {
      for (let t = 0; t < k; t++) {
        expect(g.indices[i * k + t]).not.toBe(i);
        expect(g.distances[i * k + t]).toBeCloseTo(bruteDistance(pts, d, i, g.indices[i * k + t], 'l2'), 5);
        if (t > 0) expect(g.distances[i * k + t]).toBeGreaterThanOrEqual(g.distances[i * k + t - 1]);
      }
    }
  });

  it('probing every list is the exact search', () => {
    const n = 900, d = 8, k = 6;
    const pts = randomPoints(n, d, 2);
    const plan = ivfPlan(n, k, { lists: 12 });
    const g = ivfNeighbors(pts, n, d, k, { lists: 12, probes: plan.lists });
    const exact = kernelExactNeighbors(pts, n, d, k);
    expect(Array.from(g.indices)).toEqual(Array.from(exact.indices));
    expect(Array.from(g.distances)).toEqual(Array.from(exact.distances));
  });

  it('cosine distance, and exact duplicates ordered by index', () => {
    const n = 1200, d = 10, k = 5;
    const pts = clustered(n, d, 3);
    for (let r = 1000; r < 1012; r++) pts.set(pts.subarray(0, d), r * d); // 12 copies of row 0
    const g = ivfNeighbors(pts, n, d, k, { distance: 'cosine', probes: 6 });
    expect(recall(g.indices, kernelExactNeighbors(pts, n, d, k, { distance: 'cosine' }).indices, n, k)).toBeGreaterThanOrEqual(0.95);
    const l2 = ivfNeighbors(pts, n, d, k, { probes: 6 });
    expect(Array.from(l2.indices.subarray(1005 * k, 1006 * k))).toEqual([0, 1000, 1001, 1002, 1003]);
  });

  it('plans lists within bounds and groups members by list', () => {
    expect(ivfPlan(1_000_000, 16)).toEqual({ lists: 1000, probes: 8, iterations: 10, sample: 40000 });
    expect(ivfPlan(100, 16).lists).toBe(2); // each list averages at least 2 (k + 1) points
    const { order, start } = listMembers(Int32Array.of(2, 0, 2, 1, 0), 3);
    expect(Array.from(start)).toEqual([0, 2, 3, 5]);
    expect(Array.from(order)).toEqual([1, 4, 3, 0, 2]);
  });

  it('on threads gives exactly the single-thread graph; buildGraph dispatches method ivf', async () => {
    const n = 5000, d = 12, k = 8;
    const pts = clustered(n, d, 4);
    const single = ivfNeighbors(pts, n, d, k, { probes: 3, seed: 9 });
    const par = await parallelIvfNeighbors(pts, n, d, k, { probes: 3, seed: 9, threads: 2 });
    expect(Array.from(par.indices)).toEqual(Array.from(single.indices));
    expect(Array.from(par.distances)).toEqual(Array.from(single.distances));
    const viaSearch = buildGraph(pts, n, d, k, { ...DEFAULT_SEARCH, method: 'ivf', ivf: { probes: 3 } }, 9);
    expect(Array.from(viaSearch.indices)).toEqual(Array.from(single.indices));
  });
});
