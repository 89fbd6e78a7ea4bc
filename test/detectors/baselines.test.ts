import { describe, expect, it } from 'vitest';
import { countDuplicateGroups, createDetector, zeroKDistanceCount } from '../../src/detectors/index.js';
import { averagePathLength, isolationForestScores } from '../../src/detectors/iforest.js';
import { UserError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { randomPoints } from '../neighbors/brute.js';

describe('isolation forest', () => {
  it('c(n), the average unsuccessful-search path length, by hand', () => {
    const gamma = 0.5772156649015329;
    expect(averagePathLength(0)).toBe(0);
    expect(averagePathLength(1)).toBe(0);
    expect(averagePathLength(2)).toBe(1);
    // c(3) = 2 (ln 2 + gamma) - 2 * 2 / 3
    expect(averagePathLength(3)).toBeCloseTo(2 * (Math.log(2) + gamma) - 4 / 3, 14);
    // c(256) = 2 (ln 255 + gamma) - 2 * 255 / 256 ~ 10.2448
    expect(averagePathLength(256)).toBeCloseTo(2 * (Math.log(255) + gamma) - 510 / 256, 14);
    expect(averagePathLength(256)).toBeCloseTo(10.2448, 3);
  });

  it('psi = 2: every tree is one split at depth 1 with single-point leaves, so every score is 2^(-1/c(2)) = 0.5', () => {
    const pts = randomPoints(50, 3, 301);
    const s = isolationForestScores(pts, 50, 3, { trees: 20, sampleSize: 2, rng: new Rng(1) });
    expect(Array.from(s)).toEqual(Array(50).fill(0.5));
  });

  it('ranks a far outlier highest, scores lie in (0, 1), and is reproducible from the seed', () => {
    const n = 300, d = 4;
    const pts = randomPoints(n, d, 302);
    pts.set([15, -15, 15, -15], 123 * d);
    const a = isolationForestScores(pts, n, d, { trees: 100, sampleSize: 256, rng: new Rng(5) });
    const b = isolationForestScores(pts, n, d, { trees: 100, sampleSize: 256, rng: new Rng(5) });
    const c = isolationForestScores(pts, n, d, { trees: 100, sampleSize: 256, rng: new Rng(6) });
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    let argmax = 0;
    for (let i = 0; i < n; i++) if (a[i] > a[argmax]) argmax = i;
    expect(argmax).toBe(123);
    expect(a[123]).toBeGreaterThan(0.7);
    expect(a.every((v) => v > 0 && v < 1)).toBe(true);
  });

  it('constant features are never split on; an all-constant set is one leaf', () => {
    // feature 0 varies, feature 1 is constant: the outlier is found through feature 0 only
    const n = 200;
    const pts = new Float32Array(n * 2);
    const rng = new Rng(7);
    for (let i = 0; i < n; i++) pts.set([rng.normal(), 3], i * 2);
    pts[0] = 40;
    const s = isolationForestScores(pts, n, 2, { trees: 50, sampleSize: 64, rng: new Rng(8) });
    expect(s[0]).toBe(Math.max(...s));
    const same = isolationForestScores(new Float32Array(20).fill(1), 10, 2, { trees: 5, sampleSize: 8, rng: new Rng(9) });
    // root leaf of 8 points: h = c(8), score = 2^(-c(8)/c(8)) = 0.5
    expect(Array.from(same)).toEqual(Array(10).fill(0.5));
  });

  it('the detector reads trees and sample size from its options', () => {
    const pts = randomPoints(100, 3, 303);
    const det = createDetector('iforest', { iforestTrees: 10, iforestSampleSize: 2 });
    expect(Array.from(det.score({ embeddings: pts, n: 100, d: 3, k: 16, rng: new Rng(1) }))).toEqual(Array(100).fill(0.5));
  });
});

describe('clipscore', () => {
  it('is -cos(image, own caption), 0 for a zero vector', () => {
    const images = new Float32Array([1, 0, 1, 1, 1, 0, 3, 4, 0, 0]);
    const captions = new Float32Array([0, 1, 2, 2, -1, 0, 4, 3, 1, 1]);
    const s = createDetector('clipscore').score({ embeddings: images, textEmbeddings: captions, n: 5, d: 2, k: 1 });
    // orthogonal -> 0; parallel -> -1; opposite -> +1; (3,4).(4,3) = 24 / 25 -> -0.96; zero image -> 0
    expect(Array.from(s).map((v) => Number(v.toFixed(12)) + 0)).toEqual([0, -1, 1, -0.96, 0]);
  });

  it('needs caption embeddings', () => {
    const det = createDetector('clipscore');
    expect(det.needsText).toBe(true);
    expect(() => det.score({ embeddings: new Float32Array(4), n: 2, d: 2, k: 1 })).toThrow(UserError);
  });
});

describe('duplicate reporting', () => {
  it('countDuplicateGroups counts identical rows by value (-0 = 0, NaN equals nothing)', () => {
    const rows = [
      [1, 2], [3, 4], [1, 2], [5, 6], [3, 4], [1, 2], // group {0,2,5}, group {1,4}
      [NaN, 1], [NaN, 1], // NaN rows: no group
      [0, -0], [-0, 0], // one group
      [7, 8],
    ];
    const emb = Float32Array.from(rows.flat());
    expect(countDuplicateGroups(emb, rows.length, 2)).toEqual({ groups: 3, rows: 7, largest: 3, massRows: 0 });
    // groups of at least 2 rows: 3 + 2 + 2; of at least 3 rows: 3
    expect(countDuplicateGroups(emb, rows.length, 2, 2).massRows).toBe(7);
    expect(countDuplicateGroups(emb, rows.length, 2, 3).massRows).toBe(3);
    expect(countDuplicateGroups(new Float32Array(0), 0, 2)).toEqual({ groups: 0, rows: 0, largest: 0, massRows: 0 });
    expect(countDuplicateGroups(Float32Array.from([1, 2, 3]), 3, 1)).toEqual({ groups: 0, rows: 0, largest: 1, massRows: 0 });
  });

  it('finds a mass-duplicate group among many random rows', () => {
    const n = 5000, d = 8;
    const emb = randomPoints(n, d, 304);
    for (let r = 1000; r < 1798; r++) emb.set(emb.subarray(0, d), r * d); // 798 copies of row 0
    expect(countDuplicateGroups(emb, n, d, 17)).toEqual({ groups: 1, rows: 799, largest: 799, massRows: 799 });
  });

  it('massRows with massSize k + 1 equals the zero k-distance count of the whole-set graph', async () => {
    const { selectBackend } = await import('../../src/backend/select.js');
    const { exactNeighbors } = await import('../../src/neighbors/exact.js');
    await selectBackend('wasm');
    const n = 300, d = 3, k = 4;
    const emb = randomPoints(n, d, 305);
    for (let r = 10; r < 15; r++) emb.set(emb.subarray(0, d), r * d); // group of 6 (>= k + 1)
    for (let r = 20; r < 23; r++) emb.set(emb.subarray(d, 2 * d), r * d); // group of 4 (< k + 1)
    const groups = countDuplicateGroups(emb, n, d, k + 1);
    expect(groups.massRows).toBe(6);
    expect(zeroKDistanceCount(exactNeighbors(emb, n, d, k))).toBe(6);
  });

  it('zeroKDistanceCount counts points with at least k exact duplicates', () => {
    const graph = { n: 4, k: 2, indices: new Int32Array(8), distances: Float32Array.from([0, 0, 0, 0.5, 0, 0, 1, 2]) };
    expect(zeroKDistanceCount(graph)).toBe(2);
    expect(zeroKDistanceCount(graph, 0.5)).toBe(3);
  });
});
