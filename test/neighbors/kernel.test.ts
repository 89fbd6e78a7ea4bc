import { describe, expect, it } from 'vitest';
import { kernelExactNeighbors, kernelQueryNeighbors } from '../../src/neighbors/kernelSearch.js';
import { KernelHeap } from '../../src/backend/wasm/heap.js';
import { symmetricNeighbors } from '../../src/neighbors/parallel/engine.js';
import { fmaAvailable, kernelModuleBytes, WA } from '../../src/backend/wasm/kernels.js';
import { UserError } from '../../src/util/errors.js';
import { bruteKnn, randomPoints } from './brute.js';

function expectBrute(points: Float32Array, n: number, d: number, k: number, distance: 'l2' | 'cosine', g: { indices: Int32Array; distances: Float32Array }, digits = 6) {
  const ref = bruteKnn(points, n, d, k, distance);
  for (let i = 0; i < n; i++) {
    expect(Array.from(g.indices.subarray(i * k, i * k + k))).toEqual(ref.indices[i]);
    for (let t = 0; t < k; t++) expect(g.distances[i * k + t]).toBeCloseTo(ref.distances[i][t], digits);
  }
}

describe('wasm kernels', () => {
  it('assemble into valid modules, with and without fused multiply-add, shared or not', () => {
    for (const shared of [false, true]) {
      expect(WA.validate(kernelModuleBytes(shared, false))).toBe(true);
      // relaxed SIMD: on by default from Node 22, switched on by fmaAvailable() on Node 20
      if (fmaAvailable()) expect(WA.validate(kernelModuleBytes(shared, true))).toBe(true);
    }
  });
});

describe('kernelExactNeighbors', () => {
  it('matches brute force (L2) for dimensions that are not multiples of 4 and sets smaller than a tile', () => {
    for (const [n, d, k] of [
      [40, 1, 3],
      [75, 3, 5],
      [130, 6, 7],
      [300, 33, 10],
    ]) {
      const pts = randomPoints(n, d, n + d);
      expectBrute(pts, n, d, k, 'l2', kernelExactNeighbors(pts, n, d, k));
    }
  });

  it('matches brute force across many tiles (symmetric tiles, column scans, seeding)', () => {
    const n = 700, d = 20, k = 12;
    const pts = randomPoints(n, d, 5);
    expectBrute(pts, n, d, k, 'l2', kernelExactNeighbors(pts, n, d, k, { tile: 64 }));
  });

  it('gives the same graph for every tile size and with or without fused multiply-add', () => {
    const n = 530, d = 24, k = 9;
    const pts = randomPoints(n, d, 6);
    const a = kernelExactNeighbors(pts, n, d, k, { tile: 16 });
    const b = kernelExactNeighbors(pts, n, d, k, { tile: 256 });
    expect(Array.from(b.indices)).toEqual(Array.from(a.indices));
    expect(Array.from(b.distances)).toEqual(Array.from(a.distances));
    const plain = symmetricNeighbors(KernelHeap.private(1 << 16, false), pts, n, d, k, 'l2', 64);
    expect(Array.from(plain.indices)).toEqual(Array.from(a.indices));
  });

  it('matches brute force for cosine distance, zero vector included (distance 1 to everything)', () => {
    const n = 150, d = 7, k = 5;
    const pts = randomPoints(n, d, 7);
    pts.fill(0, 9 * d, 10 * d);
    const g = kernelExactNeighbors(pts, n, d, k, { distance: 'cosine', tile: 32 });
    expectBrute(pts, n, d, k, 'cosine', g);
    for (let t = 0; t < k; t++) expect(g.distances[9 * k + t]).toBe(1);
  });

  it('excludes self by index: exact duplicates are neighbours at distance 0, ordered by index', () => {
    const d = 5, k = 4;
    const pts = new Float32Array(60 * d);
    pts.set(randomPoints(40, d, 8));
    for (let r = 40; r < 60; r++) pts.set([3, -1, 2, 0.5, 7], r * d); // 20 identical rows
    const g = kernelExactNeighbors(pts, 60, d, k, { tile: 16 });
    for (let r = 40; r < 60; r++) {
      const row = Array.from(g.indices.subarray(r * k, r * k + k));
      expect(row).toEqual([40, 41, 42, 43, 44].filter((j) => j !== r).slice(0, k));
      expect(Array.from(g.distances.subarray(r * k, r * k + k))).toEqual([0, 0, 0, 0]);
    }
  });

  it('handles an all-identical set and k = n - 1', () => {
    const n = 18, d = 3, k = 17;
    const g = kernelExactNeighbors(new Float32Array(n * d).fill(-2.5), n, d, k);
    for (let i = 0; i < n; i++) expect(Array.from(g.indices.subarray(i * k, i * k + k))).toEqual([...Array(n).keys()].filter((j) => j !== i));
  });

  it('reports true distances for near-duplicates far from the origin (centring keeps the ranking precise)', () => {
    const n = 80, d = 16, k = 6;
    const noise = randomPoints(n, d, 9, 1e-3);
    const pts = noise.map((v) => 1000 + v);
    expectBrute(pts, n, d, k, 'l2', kernelExactNeighbors(pts, n, d, k), 7);
  });

  it('rejects what the other searches reject', () => {
    expect(() => kernelExactNeighbors(new Float32Array(10), 5, 2, 5)).toThrow(UserError);
    expect(() => kernelExactNeighbors(Float32Array.of(0, NaN, 1, 2), 2, 2, 1)).toThrow(/non-finite/);
    expect(() => kernelExactNeighbors(new Float32Array(40), 20, 2, 3, { tile: 24 })).toThrow(/multiple of 16/);
  });
});

describe('kernelQueryNeighbors', () => {
  it('gives exactly the rows of the full graph for the queried points', () => {
    for (const distance of ['l2', 'cosine'] as const) {
      const n = 400, d = 13, k = 8;
      const pts = randomPoints(n, d, 10);
      const full = kernelExactNeighbors(pts, n, d, k, { distance, tile: 48 });
      const queries = Int32Array.from([0, 399, 17, 17, 250, 123]);
      const q = kernelQueryNeighbors(pts, n, d, queries, k, { distance, tile: 48 });
      expect(q.n).toBe(queries.length);
      queries.forEach((row, t) => {
        expect(Array.from(q.indices.subarray(t * k, t * k + k))).toEqual(Array.from(full.indices.subarray(row * k, row * k + k)));
        expect(Array.from(q.distances.subarray(t * k, t * k + k))).toEqual(Array.from(full.distances.subarray(row * k, row * k + k)));
      });
    }
    expect(() => kernelQueryNeighbors(randomPoints(10, 2, 1), 10, 2, Int32Array.of(10), 3)).toThrow(/outside/);
  });
});
