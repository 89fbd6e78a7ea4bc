import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.js';
import { auroc } from '../../src/metrics/detection.js';
import { createDetector, detectorOptionsFromConfig, DETECTOR_NAMES, type DetectorName } from '../../src/detectors/index.js';
import { filterSchema } from '../../src/config/schema.js';
import { gatherRows, sampledReferences } from '../../src/neighbors/reference.js';
import { DEFAULT_SEARCH, searchOptionsFromConfig, type NeighborSearchOptions } from '../../src/neighbors/search.js';
import { UserError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { randomPoints } from '../neighbors/brute.js';

beforeAll(async () => {
  await selectBackend('wasm');
});

type Kind = 'kdist' | 'slof' | 'lof' | 'lid' | 'dao';

/**
 * Brute-force textbook scores over a point set where `excluded(i, j)` says
 * whether j may not be a neighbour of i (self, and in image+text mode the
 * partner). Straight from the formulas, with the documented eps floor.
 */
function brute(all: Float32Array, N: number, d: number, k: number, kind: Kind, excluded: (i: number, j: number) => boolean): number[] {
  const dist = (a: number, b: number) => Math.sqrt(Array.from({ length: d }, (_, f) => (all[a * d + f] - all[b * d + f]) ** 2).reduce((s, v) => s + v, 0));
  const N_: number[][] = [];
  const D: number[][] = [];
  for (let i = 0; i < N; i++) {
    const row = [...Array(N).keys()].filter((j) => !excluded(i, j)).map((j) => [dist(i, j), j]);
    row.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    N_.push(row.slice(0, k).map((r) => r[1]));
    D.push(row.slice(0, k).map((r) => r[0]));
  }
  const pos = D.map((r) => r[k - 1]).filter((v) => v > 0).sort((a, b) => a - b);
  const eps = pos.length === 0 ? 1e-12 : 1e-6 * (pos.length % 2 ? pos[(pos.length - 1) / 2] : (pos[pos.length / 2 - 1] + pos[pos.length / 2]) / 2);
  const dd = (i: number, t: number) => Math.max(D[i][t], eps);
  const dk = (i: number) => dd(i, k - 1);
  const lid = (i: number) => {
    let s = 0;
    for (let t = 0; t < k - 1; t++) s += Math.log(dd(i, t) / dk(i));
    return s === 0 ? d : -k / s;
  };
  const meanReach = (i: number) => N_[i].reduce((s, o, t) => s + Math.max(dk(o), dd(i, t)), 0) / k;
  return [...Array(N).keys()].map((i) => {
    switch (kind) {
      case 'kdist':
        return D[i][k - 1];
      case 'slof':
        return N_[i].reduce((s, o) => s + dk(i) / dk(o), 0) / k;
      case 'lof':
        return N_[i].reduce((s, o) => s + meanReach(i) / meanReach(o), 0) / k;
      case 'lid':
        return lid(i);
      case 'dao':
        return N_[i].reduce((s, o) => s + lid(o) * Math.log(dk(i) / dk(o)), 0) / k;
    }
  });
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel = 1e-5) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Number.isFinite(expected[i])) expect(actual[i]).toBe(expected[i]);
    else expect(Math.abs(actual[i] - expected[i])).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(expected[i])));
  }
}

const sampled = (over: Partial<NeighborSearchOptions> = {}) => ({ search: { ...DEFAULT_SEARCH, reference: 'sampled' as const, referenceRepeats: 1, ...over } });
const kinds: Kind[] = ['kdist', 'slof', 'lof', 'lid', 'dao'];

describe('sampled references', () => {
  it.each(kinds)('%s: each sample is scored inside its own chunk (neighbours and their k-distances too)', (kind) => {
    const n = 250, d = 4, k = 6, R = 60;
    const pts = randomPoints(n, d, 201);
    const got = createDetector(kind, sampled({ referenceSize: R })).score({ embeddings: pts, n, d, k, rng: new Rng(11) });
    const expected = new Float64Array(n);
    for (const members of sampledReferences(n, R, k, new Rng(11))) {
      const s = brute(gatherRows(pts, d, members), members.length, d, k, kind, (i, j) => i === j);
      members.forEach((row, t) => (expected[row] = s[t]));
    }
    expectClose(got, expected);
  });

  it('referenceRepeats averages the scores of independent permutations', () => {
    const n = 150, d = 3, k = 4, R = 40;
    const pts = randomPoints(n, d, 202);
    const got = createDetector('slof', sampled({ referenceSize: R, referenceRepeats: 3 })).score({ embeddings: pts, n, d, k, rng: new Rng(12) });
    const rng = new Rng(12);
    const expected = new Float64Array(n);
    for (let r = 0; r < 3; r++) {
      for (const members of sampledReferences(n, R, k, rng)) {
        const s = brute(gatherRows(pts, d, members), members.length, d, k, 'slof', (i, j) => i === j);
        members.forEach((row, t) => (expected[row] += s[t] / 3));
      }
    }
    expectClose(got, expected);
  });

  it('referenceSize >= n equals whole-set references', () => {
    const n = 80, d = 3, k = 5;
    const pts = randomPoints(n, d, 203);
    const a = createDetector('lof', sampled({ referenceSize: 2048 })).score({ embeddings: pts, n, d, k });
    const b = createDetector('lof', { search: { ...DEFAULT_SEARCH, reference: 'all' } }).score({ embeddings: pts, n, d, k });
    expectClose(a, b, 1e-12);
  });

  it('rejects a reference size too small for k with a UserError naming the key', () => {
    const pts = randomPoints(100, 2, 204);
    expect(() => createDetector('slof', sampled({ referenceSize: 10 })).score({ embeddings: pts, n: 100, d: 2, k: 16 })).toThrow(/filter.referenceSize = 10/);
  });
});

describe('image+text reference (captions join, partner excluded)', () => {
  it.each(kinds)('%s matches brute force over [images; captions]', (kind) => {
    const m = 45, d = 3, k = 5;
    const images = randomPoints(m, d, 205);
    const noise = randomPoints(m, d, 206, 0.2);
    const captions = images.map((v, i) => v + noise[i]);
    const all = new Float32Array(2 * m * d);
    all.set(images);
    all.set(captions, m * d);
    const partner = (i: number) => (i < m ? i + m : i - m);
    const expected = brute(all, 2 * m, d, k, kind, (i, j) => i === j || j === partner(i)).slice(0, m);
    const det = createDetector(kind, { embedding: 'image+text', search: { ...DEFAULT_SEARCH, reference: 'all' } });
    expect(det.needsText).toBe(true);
    expectClose(det.score({ embeddings: images, textEmbeddings: captions, n: m, d, k }), expected);
  });
});

describe('non-finite embeddings', () => {
  const n = 60, d = 3, k = 4;
  const base = randomPoints(n, d, 207);
  const bad = base.slice();
  bad[3 * d + 1] = NaN;
  bad[7 * d] = Infinity;
  bad[20 * d + 2] = -Infinity;
  const keep = [...Array(n).keys()].filter((i) => ![3, 7, 20].includes(i));
  const clean = gatherRows(base, d, Int32Array.from(keep));
  const text = randomPoints(n, d, 208);

  it.each(DETECTOR_NAMES as DetectorName[])('%s: rows with NaN/Inf score +Infinity, the others as if those rows were absent', (name) => {
    const opts = { search: { ...DEFAULT_SEARCH, reference: 'all' as const } };
    const det = createDetector(name, opts);
    const got = det.score({ embeddings: bad, textEmbeddings: text, n, d, k, rng: new Rng(1) });
    const ref = det.score({ embeddings: clean, textEmbeddings: gatherRows(text, d, Int32Array.from(keep)), n: keep.length, d, k, rng: new Rng(1) });
    for (const i of [3, 7, 20]) expect(got[i]).toBe(Infinity);
    keep.forEach((row, t) => expect(got[row]).toBe(ref[t]));
    expect(got.every((v) => !Number.isNaN(v))).toBe(true);
  });

  it('a non-finite caption makes its sample unscorable in image+text mode', () => {
    const t2 = text.slice();
    t2[5 * d] = NaN;
    const got = createDetector('slof', { embedding: 'image+text', search: { ...DEFAULT_SEARCH, reference: 'all' } }).score({ embeddings: base, textEmbeddings: t2, n, d, k });
    expect(got[5]).toBe(Infinity);
    expect(got.filter((v) => v === Infinity).length).toBe(1);
  });

  it('with a supplied graph, non-finite rows get +Infinity and nothing is NaN', () => {
    const graphPts = base.slice();
    const det = createDetector('slof');
    const graph = { n, k, indices: new Int32Array(n * k), distances: new Float32Array(n * k) };
    for (let i = 0; i < n; i++) for (let t = 0; t < k; t++) {
      graph.indices[i * k + t] = (i + t + 1) % n;
      graph.distances[i * k + t] = t + 1;
    }
    graphPts[2 * d] = NaN;
    graph.distances[9 * k + k - 1] = NaN;
    const got = det.score({ embeddings: graphPts, n, d, k, graph });
    expect(got[2]).toBe(Infinity);
    expect(got.every((v) => !Number.isNaN(v))).toBe(true);
  });
});

describe('registry', () => {
  it('creates every configured detector with its name', () => {
    for (const name of DETECTOR_NAMES) expect(createDetector(name).name).toBe(name);
    expect(DETECTOR_NAMES).toEqual(filterSchema.removeDefault().shape.detector.removeDefault().options);
    expect(() => createDetector('nope' as DetectorName)).toThrow(UserError);
  });

  it('builds options from the filter config', () => {
    const opts = detectorOptionsFromConfig(filterSchema.parse({ detector: 'lof', reference: 'all', neighbors: 'hnsw', embedding: 'image+text', iforestTrees: 7 }));
    expect(opts.search.reference).toBe('all');
    expect(opts.search.method).toBe('hnsw');
    expect(opts.embedding).toBe('image+text');
    expect(opts.iforestTrees).toBe(7);
    expect(opts.iforestSampleSize).toBe(256);
  });

  it('whole-set HNSW references give nearly the exact scores', () => {
    const n = 400, d = 8, k = 8;
    const pts = randomPoints(n, d, 209);
    const exact = createDetector('slof', { search: { ...DEFAULT_SEARCH, reference: 'all', method: 'exact' } }).score({ embeddings: pts, n, d, k });
    const hnsw = createDetector('slof', { search: { ...DEFAULT_SEARCH, reference: 'all', method: 'hnsw' } }).score({ embeddings: pts, n, d, k, rng: new Rng(2) });
    let same = 0;
    for (let i = 0; i < n; i++) if (Math.abs(exact[i] - hnsw[i]) < 1e-9) same++;
    expect(same / n).toBeGreaterThan(0.9);
  });

  it('whole-set IVF references (filter.neighbors: ivf) give nearly the exact scores, the same in threads', async () => {
    const n = 5000, d = 8, k = 8;
    const pts = randomPoints(n, d, 210);
    const search = (method: 'exact' | 'ivf') => ({ ...searchOptionsFromConfig(filterSchema.parse({ reference: 'all', neighbors: method, ivf: { probes: 24 } })), threads: 2 });
    const exact = createDetector('slof', { search: search('exact') }).score({ embeddings: pts, n, d, k });
    const ivf = createDetector('slof', { search: search('ivf') }).score({ embeddings: pts, n, d, k, rng: new Rng(2) });
    const threaded = await createDetector('slof', { search: search('ivf') }).scoreAsync({ embeddings: pts, n, d, k, rng: new Rng(2) });
    let same = 0;
    for (let i = 0; i < n; i++) if (Math.abs(exact[i] - ivf[i]) < 1e-9) same++;
    expect(same / n).toBeGreaterThan(0.9);
    expect(same / n).toBeLessThan(1); // 24 of 71 lists: approximate, or the test would not tell the methods apart
    expect(Array.from(threaded)).toEqual(Array.from(ivf));
  });
});

describe('planted poison', () => {
  it('sampled SLOF and k-distance find 10 tight poisons far from 10 Gaussian clusters (AUROC >= 0.99)', () => {
    const clean = 2000, poison = 10, d = 32, k = 16;
    const n = clean + poison;
    const rng = new Rng(42, 'planted');
    const centres = Array.from({ length: 10 }, () => Array.from({ length: d }, () => rng.normal() * 4));
    const pts = new Float32Array(n * d);
    const labels = new Uint8Array(n);
    for (let i = 0; i < clean; i++) {
      const c = centres[i % 10];
      for (let f = 0; f < d; f++) pts[i * d + f] = c[f] + rng.normal();
    }
    const target = Array.from({ length: d }, () => 12 + rng.normal());
    for (let i = clean; i < n; i++) {
      labels[i] = 1;
      for (let f = 0; f < d; f++) pts[i * d + f] = target[f] + 0.05 * rng.normal();
    }
    for (const name of ['slof', 'kdist'] as const) {
      const scores = createDetector(name, sampled({ referenceSize: 500 })).score({ embeddings: pts, n, d, k, rng: new Rng(3) });
      expect(auroc(scores, labels)).toBeGreaterThanOrEqual(0.99);
    }
  });
});
