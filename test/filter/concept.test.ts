import { describe, expect, it } from 'vitest';
import { dominates, inConcept, seedConcept } from '../../src/filter/concept.js';
import { Rng } from '../../src/util/rng.js';

/** The grouping written out: every cosine computed where it is needed, from the definition. */
function conceptByDefinition(captions: Float32Array, d: number, rows: number[], similarity: number) {
  const unit = rows.map((i) => {
    const row = Array.from(captions.subarray(i * d, i * d + d));
    const norm = Math.hypot(...row);
    return row.map((v) => (norm > 0 ? v / norm : 0));
  });
  const close = (a: number, b: number) => unit[a].reduce((s, v, f) => s + v * unit[b][f], 0) >= similarity;
  const largest = (among: number[]) => {
    let best = { anchor: -1, size: 0 };
    for (const a of among) {
      const size = among.filter((b) => close(a, b)).length;
      if (size > best.size) best = { anchor: a, size };
    }
    return best;
  };
  const all = rows.map((_, r) => r);
  const anchor = Math.max(0, largest(all).anchor);
  const group = all.filter((b) => close(anchor, b));
  const outside = all.filter((b) => !group.some((t) => close(t, b)));
  return { anchor: rows[anchor], seeds: group.map((r) => rows[r]), runnerUp: largest(outside).size };
}

describe('caption concept', () => {
  it('seedConcept: the seed whose caption has the most seed captions within the similarity, and that group', () => {
    // 2-d captions by angle: three seeds near 0 degrees (the target's captions), two near 90, one at 45
    const deg = (a: number) => [Math.cos((a * Math.PI) / 180), Math.sin((a * Math.PI) / 180)];
    const angles = [0, 5, 90, -5, 85, 45, 10];
    const captions = Float32Array.from(angles.flatMap((a, i) => deg(a).map((v) => v * (i + 1)))); // lengths do not matter
    const seeds = Int32Array.of(0, 1, 2, 3, 4, 5);
    const concept = seedConcept(captions, 2, seeds, Math.cos((12 * Math.PI) / 180))!;
    // 0 degrees has 0, 5, -5 within 12 degrees (3 with itself); 5 has 0, 5, -5 (10 apart): a tie, the first wins
    expect(concept.anchor).toBe(0);
    expect(Array.from(concept.seeds)).toEqual([0, 1, 3]);
    // the next group from the seeds left (90, 85, 45): 90 and 85 are 5 degrees apart
    expect(concept.runnerUp).toBe(2);
    expect(dominates(concept, 1.5)).toBe(true);
    expect(dominates(concept, 1.6)).toBe(false);
    expect(dominates(concept, 0)).toBe(true);
    // one concept split by the similarity: 25 and 30 are outside the anchor's (10) reach but within 12 degrees
    // of the group's 20, so they are the concept's, not a runner-up; the runner-up is 90 alone
    const split = [0, 5, 10, 20, 25, 30, 90];
    const splitCaptions = Float32Array.from(split.flatMap(deg));
    const splitConcept = seedConcept(splitCaptions, 2, Int32Array.from(split, (_, i) => i), Math.cos((12 * Math.PI) / 180))!;
    expect(splitConcept.anchor).toBe(2);
    expect(Array.from(splitConcept.seeds)).toEqual([0, 1, 2, 3]);
    expect(splitConcept.runnerUp).toBe(1);
    // every seed in one group: no runner-up, dominant at any dominance
    const all = seedConcept(captions, 2, seeds, -1)!;
    expect(all.runnerUp).toBe(0);
    expect(dominates(all, 1e9)).toBe(true);
    expect(seedConcept(captions, 2, new Int32Array(0), 0.5)).toBeNull();
    // members: within 12 degrees of some caption of the group — 10 (5 from seed 1), not 45 or 85
    expect(Array.from(inConcept(captions, 2, Int32Array.of(6, 5, 4, 2), concept, Math.cos((12 * Math.PI) / 180)))).toEqual([1, 0, 0, 0]);
    // a similarity of -1 takes everything in
    expect(Array.from(inConcept(captions, 2, Int32Array.of(2, 4), seedConcept(captions, 2, seeds, -1)!, -1))).toEqual([1, 1]);
  });

  it('seedConcept agrees with the definition on random caption clusters (property)', () => {
    const rng = new Rng(7, 'test/concept');
    for (let trial = 0; trial < 40; trial++) {
      const d = 2 + Math.floor(rng.float() * 7);
      const n = 10 + Math.floor(rng.float() * 50);
      const concepts = 1 + Math.floor(rng.float() * 5);
      const centres = Array.from({ length: concepts }, () => Array.from({ length: d }, () => rng.float() - 0.5));
      const spread = rng.float();
      const captions = new Float32Array(n * d);
      for (let i = 0; i < n; i++) {
        // now and then a zero caption vector: within no positive similarity, not even of itself
        if (rng.float() < 0.05) continue;
        const centre = centres[Math.floor(rng.float() * concepts)];
        for (let f = 0; f < d; f++) captions[i * d + f] = centre[f] + spread * (rng.float() - 0.5);
      }
      const rows = Array.from({ length: n }, (_, i) => i).filter(() => rng.float() < 0.7);
      const similarity = rng.float() * 1.6 - 0.6;
      const got = seedConcept(captions, d, Int32Array.from(rows), similarity);
      if (rows.length === 0) {
        expect(got).toBeNull();
        continue;
      }
      const want = conceptByDefinition(captions, d, rows, similarity);
      expect({ anchor: got!.anchor, seeds: Array.from(got!.seeds), runnerUp: got!.runnerUp }).toEqual(want);
    }
  });
});
