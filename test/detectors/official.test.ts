import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.js';
import { createDetector } from '../../src/detectors/index.js';
import { OFFICIAL_MAX_SCORE, officialBatchScores, officialMinBatch, type OfficialKind } from '../../src/detectors/official.js';
import { gatherRows, sampledReferences } from '../../src/neighbors/reference.js';
import { DEFAULT_SEARCH } from '../../src/neighbors/search.js';
import { UserError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { randomPoints } from '../neighbors/brute.js';

beforeAll(async () => {
  await selectBackend('wasm');
});

/**
 * Literal transcription of the official semantics in RESEARCH.md, on full
 * distance matrices: masked row, its argsort (stable), the row-sorted full
 * matrix F with self, the off-by-one row read F[idx[t]], log(. + 1e-4) in LID,
 * NaN/+inf -> 1000 and -inf -> 0.
 */
function officialLiteral(images: Float32Array, m: number, d: number, k: number, kind: OfficialKind, captions?: Float32Array): number[] {
  const N = captions ? 2 * m : m;
  const all = new Float32Array(N * d);
  all.set(images.subarray(0, m * d));
  if (captions) all.set(captions.subarray(0, m * d), m * d);
  const dist = (a: number, b: number) => {
    let s = 0;
    for (let f = 0; f < d; f++) s += (all[a * d + f] - all[b * d + f]) ** 2;
    return Math.sqrt(s);
  };
  const F: number[][] = [];
  for (let o = 0; o < N; o++) {
    const row: number[] = [];
    for (let j = 0; j < N; j++) row.push(dist(o, j));
    F.push(row.sort((x, y) => x - y));
  }
  const LIDF = F.map((row) => {
    let s = 0;
    for (let t = 0; t < k; t++) s += Math.log(row[t] / row[k] + 1e-4);
    return -k / s;
  });
  const map = (v: number) => (Number.isNaN(v) || v === Infinity ? 1000 : v === -Infinity ? 0 : v);
  const out: number[] = [];
  for (let i = 0; i < m; i++) {
    const masked: number[] = [];
    for (let j = 0; j < m; j++) if (j !== i) masked.push(dist(i, j));
    if (captions) for (let j = 0; j < m; j++) if (j !== i) masked.push(dist(i, m + j));
    const idx = masked.map((_, p) => p).sort((p, q) => masked[p] - masked[q] || p - q);
    const a = idx.map((p) => masked[p]);
    if (kind === 'kdist') {
      out.push(a[k]);
      continue;
    }
    let s = 0;
    for (let t = 0; t < k; t++) {
      const row = F[idx[t]];
      s += kind === 'slof' ? a[k] / row[k] : LIDF[idx[t]] * Math.log(a[k] / row[k]);
    }
    out.push(map(s / k));
  }
  return out;
}

// Graph distances are stored as float32 (NeighborGraph), the transcription works in float64.
function expectClose(actual: ArrayLike<number>, expected: number[], rel = 2e-6) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Number.isFinite(expected[i])) expect(actual[i]).toBe(expected[i]);
    else expect(Math.abs(actual[i] - expected[i])).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(expected[i])));
  }
}

const kinds: OfficialKind[] = ['kdist', 'slof', 'dao'];

describe('officialBatchScores against the literal transcription', () => {
  it.each(kinds)('%s, image mode, random batch', (kind) => {
    const m = 40, d = 5, k = 4;
    const batch = randomPoints(m, d, 101);
    expectClose(officialBatchScores(batch, m, d, k, kind), officialLiteral(batch, m, d, k, kind));
  });

  it.each(kinds)('%s, image+text mode (captions join the reference, own caption excluded)', (kind) => {
    const m = 30, d = 4, k = 5;
    const images = randomPoints(m, d, 102);
    const noise = randomPoints(m, d, 103, 0.5);
    const captions = images.map((v, i) => v + noise[i]); // captions near their images, so the own caption is often the nearest
    expectClose(officialBatchScores(images, m, d, k, kind, captions), officialLiteral(images, m, d, k, kind, captions));
  });

  it.each(kinds)('%s with duplicates: 0/0 and x/0 give the official 1000 / 0 sentinels', (kind) => {
    const m = 30, d = 3, k = 4;
    const batch = randomPoints(m, d, 104);
    for (const r of [3, 9, 14, 20, 27, 29]) batch.set([2, 2, 2], r * d); // 6 identical rows spread over the batch
    const got = officialBatchScores(batch, m, d, k, kind);
    const expected = officialLiteral(batch, m, d, k, kind);
    expectClose(got, expected);
    expect(got.every((v) => !Number.isNaN(v))).toBe(true);
    if (kind !== 'kdist') expect(Array.from(got)).toContain(OFFICIAL_MAX_SCORE);
  });

  it('reads neighbour rows one early after the query (differs from the corrected reading)', () => {
    const m = 40, d = 5, k = 4;
    const batch = randomPoints(m, d, 105);
    const official = officialBatchScores(batch, m, d, k, 'slof');
    // corrected SLOF with the off-by-one (k+1)-th neighbour convention but the right rows
    const dist = (a: number, b: number) => Math.hypot(...Array.from({ length: d }, (_, f) => batch[a * d + f] - batch[b * d + f]));
    const sortedOthers = (i: number) => [...Array(m).keys()].filter((j) => j !== i).sort((p, q) => dist(i, p) - dist(i, q));
    let differ = 0;
    for (let i = 0; i < m; i++) {
      const nb = sortedOthers(i);
      const ak = dist(i, nb[k]);
      const corrected = nb.slice(0, k).reduce((s, j) => s + ak / dist(j, sortedOthers(j)[k - 1]), 0) / k;
      if (Math.abs(corrected - official[i]) > 1e-9) differ++;
    }
    expect(differ).toBeGreaterThan(m / 2);
  });

  it('needs k + 2 images (image mode)', () => {
    expect(officialMinBatch(16, false)).toBe(18);
    expect(officialMinBatch(16, true)).toBe(10);
    expect(() => officialBatchScores(randomPoints(5, 2, 1), 5, 2, 4, 'slof')).toThrow(UserError);
  });
});

describe('official detectors over reference chunks', () => {
  it.each(['slof-official', 'kdist-official', 'dao-official'] as const)('%s applies the batch scores to every sampled chunk', (name) => {
    const n = 230, d = 4, k = 5, R = 50;
    const pts = randomPoints(n, d, 106);
    const det = createDetector(name, { search: { ...DEFAULT_SEARCH, reference: 'sampled', referenceSize: R, referenceRepeats: 1 } });
    const got = det.score({ embeddings: pts, n, d, k, rng: new Rng(8) });
    const expected = new Array<number>(n);
    // same permutation draw; chunks with <= k + 1 points merge (the official scores need k + 2)
    const chunks = sampledReferences(n, R, k + 1, new Rng(8));
    for (const members of chunks) {
      const s = officialLiteral(gatherRows(pts, d, members), members.length, d, k, name.replace('-official', '') as OfficialKind);
      members.forEach((row, t) => (expected[row] = s[t]));
    }
    expectClose(got, expected);
  });

  it('image+text mode over chunks, and reference all = one batch', () => {
    const n = 90, d = 3, k = 4;
    const images = randomPoints(n, d, 107);
    const captions = randomPoints(n, d, 108);
    const det = createDetector('dao-official', { embedding: 'image+text', search: { ...DEFAULT_SEARCH, reference: 'sampled', referenceSize: 40, referenceRepeats: 1 } });
    const got = det.score({ embeddings: images, textEmbeddings: captions, n, d, k, rng: new Rng(9) });
    const expected = new Array<number>(n);
    for (const members of sampledReferences(n, 40, officialMinBatch(k, true) - 1, new Rng(9))) {
      const s = officialLiteral(gatherRows(images, d, members), members.length, d, k, 'dao', gatherRows(captions, d, members));
      members.forEach((row, t) => (expected[row] = s[t]));
    }
    expectClose(got, expected);

    const all = createDetector('slof-official', { search: { ...DEFAULT_SEARCH, reference: 'all' } }).score({ embeddings: images, n, d, k });
    expectClose(all, officialLiteral(images, n, d, k, 'slof'));
  });

  it('refuses cosine distance and missing captions in image+text mode', () => {
    expect(() => createDetector('slof-official', { search: { ...DEFAULT_SEARCH, distance: 'cosine' } })).toThrow(UserError);
    const det = createDetector('slof-official', { embedding: 'image+text' });
    expect(() => det.score({ embeddings: randomPoints(50, 2, 1), n: 50, d: 2, k: 4 })).toThrow(/needs caption embeddings/);
  });
});
