import type { Rng } from '../util/rng.js';
import { normalizeRows } from '../util/rows.js';
import { gatherRows } from '../neighbors/reference.js';
import { quantileSorted } from './policy.js';

/**
 * Re-admission: after the rewind, ask the model that trains on the kept
 * samples — one that has not learned the trigger — whether it agrees with
 * the captions of the samples the filter dropped, and give back the ones it
 * agrees with as much as with a typical kept sample.
 *
 * Why: the rounds drop the atypical samples along with the poisons (16-21% of
 * Fashion-MNIST, 40% of its sandals), and that is what costs clean accuracy;
 * no density ratio tells an atypical clean sample from a poison, because both
 * are atypical. What does tell them apart is the caption. A clean sample's
 * caption describes its image, so a model trained on clean data matches the
 * two; a poison's caption names the target, not what its image shows, and a
 * model that never learned the trigger matches it poorly. The agreement is
 * the CLIP score, cos(image, own caption), the quantity web-scale datasets are
 * filtered by; its threshold is a low quantile of the same score over the
 * kept samples, so it needs no scale of its own. One blind spot is the
 * trigger probe's reason to exist: poisons whose images already look like the
 * target agree with their target captions under a clean model too, so what
 * the probe holds (its drops, and the drops it ranks like its seeds) must
 * agree at least as well as the median kept sample — with the concept hold,
 * only when its caption is like the seeds' largest caption group: a
 * targeted backdoor teaches the trigger to mean the target, so every poison
 * is captioned with the target, while a clean hold need not be (on
 * Fashion-MNIST a third of the probe's holds in a clean run are sandals
 * captioned "sandal"). When no caption group dominates the seeds, they are
 * mostly clean outliers rather than a targeted attack's poisons, the probe
 * has learned what is atypical rather than a trigger, and what it holds faces
 * the lenient bar like any drop. Some poisons pass even that bar, because to
 * a model without the trigger they are the target (Nashville-filtered
 * sneakers captioned "ankle boot"); the probe, which learned the trigger,
 * still ranks them like its seeds, and the veto keeps such holds out whatever
 * the judge says (without a dominant group, at a higher bar of its own, over
 * every hold). It fails by design for clean-label poisons, whose
 * captions do describe their images — those the density rounds do not find
 * either.
 */

/** The q-quantile of the finite values (linear interpolation between order statistics, numpy's default); NaN when there are none. */
export function quantile(values: ArrayLike<number>, q: number): number {
  return quantileSorted(Float64Array.from(values).filter(Number.isFinite).sort(), q);
}

/** Up to `count` distinct entries of `pool`, drawn without replacement (all of them, in order, when the pool is not larger). */
export function sampleRows(pool: Int32Array, count: number, rng: Rng): Int32Array {
  if (pool.length <= count) return pool;
  return rng.shuffle(Int32Array.from(pool)).subarray(0, count).sort();
}

export interface ReadmitDecision {
  /** Agreement a candidate must exceed to come back: the kept samples' `quantile`... */
  readonly threshold: number;
  /** ...or, for a held candidate, their `heldQuantile` (Infinity when held candidates never come back). */
  readonly heldThreshold: number;
  /** Positions (into the candidates) that come back, ascending. */
  readonly readmitted: Int32Array;
}

/** `held` marks: judged at the lenient bar, at the held bar, or kept out whatever the judge says. */
export const NOT_HELD = 0;
export const HELD = 1;
export const VETOED = 2;

/**
 * Which candidates come back: those whose agreement is above the q-quantile of
 * the kept samples' agreement — above the `heldQuantile`-quantile for the
 * candidates marked HELD, which carry evidence against them (`heldQuantile`
 * 1: never); VETOED ones never. Non-finite agreements (an empty image or
 * caption) never come back.
 */
export function decideReadmission(candidateAgreement: Float64Array, held: Uint8Array, keptAgreement: Float64Array, q: number, heldQuantile: number): ReadmitDecision {
  const threshold = quantile(keptAgreement, q);
  const heldThreshold = heldQuantile >= 1 ? Infinity : quantile(keptAgreement, heldQuantile);
  const rows: number[] = [];
  for (let r = 0; r < candidateAgreement.length; r++) {
    if (held[r] === VETOED) continue;
    const bar = held[r] === HELD ? heldThreshold : threshold;
    // NaN bars (no kept sample to compare with) compare false: nothing comes back.
    if (candidateAgreement[r] > bar) rows.push(r);
  }
  return { threshold, heldThreshold, readmitted: Int32Array.from(rows) };
}

function dot(a: Float32Array, i: number, b: Float32Array, j: number, d: number): number {
  let s = 0;
  for (let f = 0; f < d; f++) s += a[i * d + f] * b[j * d + f];
  return s;
}

export interface SeedConcept {
  /** The seed (a row of the captions) whose caption has the most seed captions within the similarity, ties to the first. */
  readonly anchor: number;
  /** The seeds within the similarity of the anchor's caption: the group, ascending rows. */
  readonly seeds: Int32Array;
  /** Seeds in the largest group formed the same way from the seeds outside the concept (within the similarity of none of the group's captions; 0 when none are left). */
  readonly runnerUp: number;
}

/** Among the unit rows marked in `among`, the one with the most marked rows within `similarity` (itself included), ties to the first; -1 when none is marked. */
function largestGroup(unit: Float32Array, d: number, among: Uint8Array, similarity: number): { anchor: number; size: number } {
  let anchor = -1;
  let size = 0;
  for (let a = 0; a < among.length; a++) {
    if (!among[a]) continue;
    let count = 0;
    for (let b = 0; b < among.length; b++) if (among[b] && dot(unit, a, unit, b, d) >= similarity) count++;
    if (count > size) {
      size = count;
      anchor = a;
    }
  }
  return { anchor, size };
}

/**
 * The largest group of seed captions: the seed whose caption is within cosine
 * `similarity` of the most other seed captions, and those seeds; and the size
 * of the next group formed the same way from the seeds outside the concept,
 * which says whether one caption dominates the seeds. When the seeds are
 * mostly poisons of a targeted attack, it does, and the group is the target's (Fashion-MNIST
 * at 1%: 276-378 seeds against a runner-up of 84-90); when clean outliers
 * outnumber the detected poisons, the groups are the atypical clean concepts,
 * of comparable sizes (at 0.1%: sandals 105 against 72). Null without seeds.
 */
export function seedConcept(captions: Float32Array, d: number, seedRows: Int32Array, similarity: number): SeedConcept | null {
  if (seedRows.length === 0) return null;
  const unit = normalizeRows(gatherRows(captions, d, seedRows), d);
  const among = new Uint8Array(seedRows.length).fill(1);
  // zero caption vectors are within no positive similarity, not even of themselves: the first seed anchors then
  const anchor = Math.max(0, largestGroup(unit, d, among, similarity).anchor);
  const group: number[] = [];
  for (let b = 0; b < seedRows.length; b++) if (dot(unit, anchor, unit, b, d) >= similarity) group.push(b);
  // The runner-up is formed from the seeds outside the concept — captioned unlike every caption of the group,
  // the holds' own test — so that one concept split by the similarity (the quickstart's bag-of-words captions
  // of "red circle": groups of 5 and 3 among 10 seeds) does not count as two.
  for (let b = 0; b < seedRows.length; b++) if (group.some((t) => dot(unit, t, unit, b, d) >= similarity)) among[b] = 0;
  return { anchor: seedRows[anchor], seeds: Int32Array.from(group, (b) => seedRows[b]), runnerUp: largestGroup(unit, d, among, similarity).size };
}

/** Whether the concept's group holds at least `dominance` times the seeds of the runner-up group (a dominance of 0 or less: always). */
export function dominates(concept: SeedConcept, dominance: number): boolean {
  return concept.seeds.length >= dominance * concept.runnerUp;
}

/** 1 for each of `rows` whose caption is within cosine `similarity` of a caption of the concept's seeds. */
export function inConcept(captions: Float32Array, d: number, rows: Int32Array, concept: SeedConcept, similarity: number): Uint8Array {
  const a = normalizeRows(gatherRows(captions, d, rows), d);
  const b = normalizeRows(gatherRows(captions, d, concept.seeds), d);
  return Uint8Array.from(rows, (_, r) => {
    for (let t = 0; t < concept.seeds.length; t++) if (dot(a, r, b, t, d) >= similarity) return 1;
    return 0;
  });
}
