import { describe, expect, it } from 'vitest';
import { hnswNeighbors, loadHnswlib } from '../../src/neighbors/hnsw.js';
import { UserError } from '../../src/util/errors.js';
import { bruteDistance, bruteKnn, randomPoints } from './brute.js';

function recall(found: Int32Array, truth: number[][], k: number): number {
  let hit = 0;
  for (let i = 0; i < truth.length; i++) {
    const set = new Set(truth[i]);
    for (let t = 0; t < k; t++) if (set.has(found[i * k + t])) hit++;
  }
  return hit / (truth.length * k);
}

describe('hnswNeighbors', () => {
  it('reaches recall@10 >= 0.95 on 2000 x 32 random points (L2), with true sorted distances and no self', () => {
    const n = 2000, d = 32, k = 10;
    const pts = randomPoints(n, d, 11);
    const g = hnswNeighbors(pts, n, d, k, { seed: 1 });
    const truth = bruteKnn(pts, n, d, k);
    expect(recall(g.indices, truth.indices, k)).toBeGreaterThanOrEqual(0.95);
    for (let i = 0; i < n; i += 37) {
      for (let t = 0; t < k; t++) {
        const j = g.indices[i * k + t];
        expect(j).not.toBe(i);
        // hnswlib's l2 space is squared; the graph must hold the true distance
        expect(g.distances[i * k + t]).toBeCloseTo(bruteDistance(pts, d, i, j, 'l2'), 5);
        if (t > 0) expect(g.distances[i * k + t]).toBeGreaterThanOrEqual(g.distances[i * k + t - 1]);
      }
    }
  });

  it('reaches recall >= 0.95 for cosine distance', () => {
    const n = 800, d = 16, k = 8;
    const pts = randomPoints(n, d, 12);
    const g = hnswNeighbors(pts, n, d, k, { distance: 'cosine', seed: 2 });
    const truth = bruteKnn(pts, n, d, k, 'cosine');
    expect(recall(g.indices, truth.indices, k)).toBeGreaterThanOrEqual(0.95);
    for (let t = 0; t < k; t++) expect(g.distances[t]).toBeCloseTo(bruteDistance(pts, d, 0, g.indices[t], 'cosine'), 5);
  });

  it('drops self by label among many duplicates (self may not even be returned)', () => {
    const d = 4, k = 3, dup = 12;
    const base = randomPoints(30, d, 13);
    const pts = new Float32Array((30 + dup) * d);
    pts.set(base);
    for (let r = 30; r < 30 + dup; r++) pts.set([9, 9, 9, 9], r * d);
    const g = hnswNeighbors(pts, 30 + dup, d, k, { seed: 3 });
    for (let r = 30; r < 30 + dup; r++) {
      const row = Array.from(g.indices.subarray(r * k, r * k + k));
      expect(row).not.toContain(r);
      expect(new Set(row).size).toBe(k);
      for (const j of row) expect(j).toBeGreaterThanOrEqual(30);
      expect(Array.from(g.distances.subarray(r * k, r * k + k))).toEqual([0, 0, 0]);
    }
  });

  it('is deterministic for a fixed seed', () => {
    const pts = randomPoints(300, 8, 14);
    const a = hnswNeighbors(pts, 300, 8, 5, { seed: 9 });
    const b = hnswNeighbors(pts, 300, 8, 5, { seed: 9 });
    expect(Array.from(a.indices)).toEqual(Array.from(b.indices));
  });

  it('turns a missing native build into a UserError naming the fix', () => {
    const broken = () => {
      throw new Error('Could not locate the bindings file. Tried: build/Release/addon.node');
    };
    let err: unknown;
    try {
      loadHnswlib(broken);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    const u = err as UserError;
    expect(u.code).toBe('HNSW_UNAVAILABLE');
    expect(u.message).toMatch(/hnswlib-node/);
    expect(u.message).toMatch(/Could not locate the bindings file/);
    expect(u.hint).toMatch(/npm rebuild hnswlib-node/);
    expect(u.hint).toMatch(/python3, make and g\+\+/);
    expect(() => loadHnswlib(() => ({}))).toThrow(UserError);
    // the real binding still loads afterwards
    expect(typeof loadHnswlib().HierarchicalNSW).toBe('function');
  });
});
