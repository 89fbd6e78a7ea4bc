import { afterAll, describe, expect, it } from 'vitest';
import { ivfNeighbors, ivfPlan, listMembers, listProbers, mergeRow, nearestLists, ownedPoints, trainCentroids } from '../../src/neighbors/ivf.js';
import { localHeap } from '../../src/neighbors/parallel/engine.js';
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
    expect(ivfPlan(1_000_000, 16)).toEqual({ lists: 1000, probes: 16, iterations: 10, sample: 40000 });
    expect(ivfPlan(100, 16).lists).toBe(2); // each list averages at least 2 (k + 1) points
    const { order, start } = listMembers(Int32Array.of(2, 0, 2, 1, 0), 3);
    expect(Array.from(start)).toEqual([0, 2, 3, 5]);
    expect(Array.from(order)).toEqual([1, 4, 3, 0, 2]);
    // rows of a (points x probes) table: the own list is the first column
    const strided = listMembers(Int32Array.of(2, 0, 0, 1, 2, 1), 3, 2);
    expect(Array.from(strided.order)).toEqual([1, 0, 2]);
  });

  it('inverts the probe table for the points a thread owns', () => {
    // 4 points, 2 probes each, 3 lists
    const probeOf = Int32Array.of(0, 1, 1, 2, 2, 0, 0, 2);
    const all = listProbers(probeOf, 2, 3, ownedPoints(4, 0, 1));
    expect(Array.from(all.start)).toEqual([0, 3, 5, 8]);
    expect(Array.from(all.queries)).toEqual([0, 2, 3, 0, 1, 1, 2, 3]);
    expect(Array.from(ownedPoints(5, 1, 2))).toEqual([1, 3]);
    const odd = listProbers(probeOf, 2, 3, ownedPoints(4, 1, 2));
    expect(Array.from(odd.queries)).toEqual([3, 1, 1, 3]);
  });

  it('merges sorted candidates into a running row, ties by index, empty slots last', () => {
    const k = 3;
    const idx = Int32Array.of(-1, -1, -1);
    const dist = Float32Array.of(Infinity, Infinity, Infinity);
    mergeRow(idx, dist, 0, k, Int32Array.of(7, 4), Float32Array.of(1, 2), 0, 2);
    expect(Array.from(idx)).toEqual([7, 4, -1]);
    mergeRow(idx, dist, 0, k, Int32Array.of(9, 5, 3, 8), Float32Array.of(0.5, 1, 2, 2.5), 0, 4);
    expect(Array.from(idx)).toEqual([9, 5, 7]); // 5 before 7 at distance 1: lower index
    expect(Array.from(dist)).toEqual([0.5, 1, 1]);
    mergeRow(idx, dist, 0, k, Int32Array.of(1, 2), Float32Array.of(1, 0.1), 0, 1);
    expect(Array.from(idx)).toEqual([9, 1, 5]);
  });

  it('equals a brute-force per-point IVF: each point\'s k nearest among the members of its probed lists', () => {
    const n = 1500, d = 6, k = 5, lists = 20;
    const pts = clustered(n, d, 5);
    const reference = (probes: number) => {
      // the lists from the same steps (same seed), then every point's candidates by brute force
      const plan = ivfPlan(n, k, { lists, probes });
      const centroids = trainCentroids(localHeap(), pts, n, d, plan, 'l2', 3);
      const probeOf = new Int32Array(n * probes);
      nearestLists(localHeap(), pts, d, 0, n, centroids, lists, probes, 'l2', probeOf);
      const probed = new Set<number>();
      const own = Array.from({ length: lists }, () => [] as number[]);
      for (let i = 0; i < n; i++) own[probeOf[i * probes]].push(i);
      const rows: number[] = [];
      for (let i = 0; i < n; i++) {
        probed.clear();
        for (let t = 0; t < probes; t++) probed.add(probeOf[i * probes + t]);
        const cand = [...probed].flatMap((c) => own[c]).filter((j) => j !== i);
        cand.sort((x, y) => bruteDistance(pts, d, i, x, 'l2') - bruteDistance(pts, d, i, y, 'l2') || x - y);
        rows.push(...cand.slice(0, k));
      }
      return rows;
    };
    for (const probes of [1, 3]) {
      const g = ivfNeighbors(pts, n, d, k, { lists, probes, seed: 3 });
      expect(Array.from(g.indices)).toEqual(reference(probes));
      for (let i = 0; i < n; i += 13) for (let t = 0; t < k; t++) expect(g.distances[i * k + t]).toBeCloseTo(bruteDistance(pts, d, i, g.indices[i * k + t], 'l2'), 4);
    }
  });

  it('searches exactly the points whose probed lists hold fewer than k others', () => {
    // one far-away pair: whatever list it lands in, its probes cannot hold k others near it
    const n = 400, d = 4, k = 6;
    const pts = randomPoints(n, d, 6);
    for (const r of [0, 1]) for (let f = 0; f < d; f++) pts[r * d + f] = 1000 + r;
    const g = ivfNeighbors(pts, n, d, k, { lists: 16, probes: 1, seed: 2 });
    const exact = kernelExactNeighbors(pts, n, d, k);
    for (const r of [0, 1]) expect(Array.from(g.indices.subarray(r * k, r * k + k))).toEqual(Array.from(exact.indices.subarray(r * k, r * k + k)));
    expect(g.indices.every((v) => v >= 0)).toBe(true);
    expect(g.distances.every((v) => Number.isFinite(v))).toBe(true);
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
