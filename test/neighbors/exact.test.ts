import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.js';
import { exactNeighbors } from '../../src/neighbors/exact.js';
import { truncateGraph } from '../../src/neighbors/types.js';
import { UserError } from '../../src/util/errors.js';
import { bruteKnn, randomPoints } from './brute.js';

beforeAll(async () => {
  await selectBackend('wasm');
});

function expectMatchesBrute(points: Float32Array, n: number, d: number, k: number, distance: 'l2' | 'cosine', graph: ReturnType<typeof exactNeighbors>, tol = 1e-6) {
  const ref = bruteKnn(points, n, d, k, distance);
  expect(graph.n).toBe(n);
  expect(graph.k).toBe(k);
  for (let i = 0; i < n; i++) {
    expect(Array.from(graph.indices.subarray(i * k, (i + 1) * k))).toEqual(ref.indices[i]);
    for (let t = 0; t < k; t++) expect(graph.distances[i * k + t]).toBeCloseTo(ref.distances[i][t], -Math.log10(tol));
  }
}

describe('exactNeighbors', () => {
  it('matches brute force (L2) with several query blocks and a single reference block', () => {
    const n = 300, d = 8, k = 5;
    const pts = randomPoints(n, d, 1);
    expectMatchesBrute(pts, n, d, k, 'l2', exactNeighbors(pts, n, d, k, { blockSize: 64 }));
  });

  it('matches brute force (L2) when the reference is split into blocks (merge path)', () => {
    const n = 257, d = 6, k = 7;
    const pts = randomPoints(n, d, 2);
    expectMatchesBrute(pts, n, d, k, 'l2', exactNeighbors(pts, n, d, k, { blockSize: 50, referenceBlockSize: 23 }));
    // reference blocks smaller than the candidate count
    expectMatchesBrute(pts, n, d, k, 'l2', exactNeighbors(pts, n, d, k, { blockSize: 100, referenceBlockSize: 5 }));
  });

  it('matches brute force for cosine distance, zero vector included (cos 0 -> distance 1)', () => {
    const n = 120, d = 5, k = 4;
    const pts = randomPoints(n, d, 3);
    pts.fill(0, 7 * d, 8 * d);
    const g = exactNeighbors(pts, n, d, k, { distance: 'cosine', blockSize: 32 });
    expectMatchesBrute(pts, n, d, k, 'cosine', g);
    for (let t = 0; t < k; t++) expect(g.distances[7 * k + t]).toBe(1);
  });

  it('never returns the point itself, but exact duplicates are each other\'s neighbours at distance 0', () => {
    const d = 3, k = 3;
    const base = randomPoints(20, d, 4);
    const pts = new Float32Array(25 * d);
    pts.set(base);
    for (let r = 20; r < 25; r++) pts.set([5, 5, 5], r * d); // 5 identical rows 20..24
    const g = exactNeighbors(pts, 25, d, k);
    for (let r = 20; r < 25; r++) {
      const row = Array.from(g.indices.subarray(r * k, r * k + k));
      expect(row).not.toContain(r);
      for (const j of row) expect(j).toBeGreaterThanOrEqual(20);
      expect(Array.from(g.distances.subarray(r * k, r * k + k))).toEqual([0, 0, 0]);
      // ties at distance 0 are ordered by index
      expect(row).toEqual([20, 21, 22, 23, 24].filter((j) => j !== r).slice(0, 3));
    }
  });

  it('handles an all-identical set (every other point is a neighbour)', () => {
    const n = 10, d = 4, k = 9;
    const pts = new Float32Array(n * d).fill(1.5);
    const g = exactNeighbors(pts, n, d, k);
    for (let i = 0; i < n; i++) {
      const row = Array.from(g.indices.subarray(i * k, i * k + k)).sort((a, b) => a - b);
      expect(row).toEqual([...Array(n).keys()].filter((j) => j !== i));
      expect(Array.from(g.distances.subarray(i * k, i * k + k)).every((v) => v === 0)).toBe(true);
    }
  });

  it('reports exact distances for near-duplicates far from the origin (precision of the matMul form)', () => {
    const n = 60, d = 16, k = 5;
    const noise = randomPoints(n, d, 5, 1e-3);
    const pts = new Float32Array(n * d);
    for (let i = 0; i < pts.length; i++) pts[i] = 1000 + noise[i];
    expectMatchesBrute(pts, n, d, k, 'l2', exactNeighbors(pts, n, d, k), 1e-7);
  });

  it('handles k = n - 1 and tiny sets', () => {
    const pts = new Float32Array([0, 1, 3]);
    const g = exactNeighbors(pts, 3, 1, 2);
    expect(Array.from(g.indices)).toEqual([1, 2, 0, 2, 1, 0]);
    expect(Array.from(g.distances)).toEqual([1, 3, 1, 2, 2, 3]);
  });

  it('rejects k >= n with a UserError and non-finite rows with a clear error', () => {
    const pts = randomPoints(5, 2, 6);
    expect(() => exactNeighbors(pts, 5, 2, 5)).toThrow(UserError);
    expect(() => exactNeighbors(pts, 5, 2, 5)).toThrow(/k \+ 1 = 6 points/);
    pts[3] = NaN;
    expect(() => exactNeighbors(pts, 5, 2, 2)).toThrow(/row 1 has a non-finite coordinate/);
  });

  it('reports progress per query block', () => {
    const pts = randomPoints(50, 3, 7);
    const seen: number[] = [];
    exactNeighbors(pts, 50, 3, 3, { blockSize: 20, onProgress: (done, total) => seen.push(done / total) });
    expect(seen).toEqual([0.4, 0.8, 1]);
  });

  it('truncateGraph keeps the first columns', () => {
    const pts = randomPoints(40, 3, 8);
    const g5 = exactNeighbors(pts, 40, 3, 5);
    const g2 = truncateGraph(g5, 2);
    expectMatchesBrute(pts, 40, 3, 2, 'l2', g2);
  });
});
