import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.js';
import { filterSchema } from '../../src/config/schema.js';
import { gatherRows, neighborsWithin, sampledReferences } from '../../src/neighbors/reference.js';
import { buildGraph, referencePlan, searchOptionsFromConfig, DEFAULT_SEARCH } from '../../src/neighbors/search.js';
import { UserError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { bruteKnn, randomPoints } from './brute.js';

beforeAll(async () => {
  await selectBackend('wasm');
});

function expectPartition(chunks: Int32Array[], n: number) {
  const seen = new Uint8Array(n);
  for (const c of chunks) for (const i of c) seen[i]++;
  expect(Array.from(seen).every((v) => v === 1)).toBe(true);
}

describe('sampledReferences', () => {
  it('partitions all indices into chunks of R and merges a last chunk of <= k points', () => {
    const chunks = sampledReferences(1005, 100, 16, new Rng(1));
    expectPartition(chunks, 1005);
    expect(chunks.map((c) => c.length)).toEqual([100, 100, 100, 100, 100, 100, 100, 100, 100, 105]);
  });

  it('keeps a last chunk of more than k points', () => {
    const chunks = sampledReferences(1017, 100, 16, new Rng(1));
    expectPartition(chunks, 1017);
    expect(chunks.map((c) => c.length)).toEqual([100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 17]);
    // exactly k points is merged
    expect(sampledReferences(1016, 100, 16, new Rng(1)).map((c) => c.length).at(-1)).toBe(116);
  });

  it('is one chunk when R >= n, is random, and reproducible from the seed', () => {
    expect(sampledReferences(50, 2048, 16, new Rng(2)).map((c) => c.length)).toEqual([50]);
    const a = sampledReferences(200, 64, 4, new Rng(3));
    const b = sampledReferences(200, 64, 4, new Rng(3));
    const c = sampledReferences(200, 64, 4, new Rng(4));
    expect(a.map((x) => Array.from(x))).toEqual(b.map((x) => Array.from(x)));
    expect(a.map((x) => Array.from(x))).not.toEqual(c.map((x) => Array.from(x)));
    expect(Array.from(a[0])).not.toEqual([...Array(64).keys()]);
  });
});

describe('neighborsWithin', () => {
  it('is the exact kNN among the members only, in chunk-local positions', () => {
    const n = 100, d = 4, k = 3;
    const pts = randomPoints(n, d, 21);
    const members = Int32Array.from([5, 17, 33, 2, 90, 64, 41, 8, 77, 12]);
    const { graph, members: map } = neighborsWithin(pts, d, members, k, 'l2');
    expect(map).toBe(members);
    const ref = bruteKnn(gatherRows(pts, d, members), members.length, d, k);
    for (let t = 0; t < members.length; t++) {
      expect(Array.from(graph.indices.subarray(t * k, t * k + k))).toEqual(ref.indices[t]);
    }
  });
});

describe('search options', () => {
  it('come from the filter config section', () => {
    const filter = filterSchema.parse({ neighbors: 'hnsw', reference: 'all', referenceSize: 512, referenceRepeats: 3, hnsw: { M: 8 } });
    expect(searchOptionsFromConfig(filter)).toEqual({
      method: 'hnsw',
      reference: 'all',
      referenceSize: 512,
      referenceRepeats: 3,
      distance: 'l2',
      blockSize: 2048,
      hnsw: { M: 8, efConstruction: 200, efSearch: 64 },
      ivf: { probes: 16 },
    });
    expect(searchOptionsFromConfig(filterSchema.parse({ neighbors: 'ivf', ivf: { lists: 300, probes: 12 } }))).toMatchObject({ method: 'ivf', ivf: { lists: 300, probes: 12 } });
    expect(searchOptionsFromConfig(filterSchema.parse({}))).toEqual(DEFAULT_SEARCH);
  });

  it('buildGraph dispatches to exact or HNSW', () => {
    const pts = randomPoints(200, 6, 22);
    const exact = buildGraph(pts, 200, 6, 4, { ...DEFAULT_SEARCH, method: 'exact' });
    const hnsw = buildGraph(pts, 200, 6, 4, { ...DEFAULT_SEARCH, method: 'hnsw' }, 5);
    const ref = bruteKnn(pts, 200, 6, 4);
    expect(Array.from(exact.indices.subarray(0, 4))).toEqual(ref.indices[0]);
    let hits = 0;
    for (let i = 0; i < 200; i++) for (let t = 0; t < 4; t++) if (ref.indices[i].includes(hnsw.indices[i * 4 + t])) hits++;
    expect(hits / 800).toBeGreaterThan(0.95);
  });

  it('referencePlan draws one partition per repeat and rejects sets too small for k', () => {
    const plan = referencePlan(300, 16, 17, { referenceSize: 100, referenceRepeats: 3 }, new Rng(5));
    expect(plan.length).toBe(3);
    for (const chunks of plan) expectPartition(chunks, 300);
    expect(Array.from(plan[0][0])).not.toEqual(Array.from(plan[1][0]));
    expect(() => referencePlan(300, 16, 17, { referenceSize: 16, referenceRepeats: 1 }, new Rng(5))).toThrow(UserError);
    expect(() => referencePlan(300, 16, 17, { referenceSize: 16, referenceRepeats: 1 }, new Rng(5))).toThrow(/filter.referenceSize = 16/);
    expect(() => referencePlan(10, 16, 17, { referenceSize: 100, referenceRepeats: 1 }, new Rng(5))).toThrow(/only 10 samples/);
  });
});
