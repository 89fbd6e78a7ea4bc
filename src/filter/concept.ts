import { gatherRows } from '../neighbors/reference.js';
import { normalizeRows } from '../util/rows.js';

/**
 * The caption concept of the filter's confident detections. A targeted
 * backdoor teaches its trigger to mean one caption, so every poison is
 * captioned like the target; when the confident detections are mostly a
 * targeted attack's poisons, one caption group dominates them, and when they
 * are mostly clean outliers, the groups are the atypical clean concepts, of
 * comparable sizes. The trigger probe fits on the dominant group alone, and
 * the re-admission holds what is captioned like it.
 */

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

/**
 * Which pairs of the m unit rows are within `similarity`: an m x m byte matrix, each cosine computed once.
 * The groups below read it several times; computing the cosines there (as before) took 0.49 s for 900
 * captions of 128 dimensions, a tenth of a filter round.
 */
function closeness(unit: Float32Array, d: number, m: number, similarity: number): Uint8Array {
  const close = new Uint8Array(m * m);
  for (let a = 0; a < m; a++) {
    const oa = a * d;
    for (let b = a; b < m; b++) {
      const ob = b * d;
      let s = 0;
      for (let f = 0; f < d; f++) s += unit[oa + f] * unit[ob + f];
      if (s >= similarity) close[a * m + b] = close[b * m + a] = 1;
    }
  }
  return close;
}

/** Among the rows marked in `among`, the one with the most marked rows close to it (itself included), ties to the first; -1 when none is marked. */
function largestGroup(close: Uint8Array, among: Uint8Array): { anchor: number; size: number } {
  const m = among.length;
  let anchor = -1;
  let size = 0;
  for (let a = 0; a < m; a++) {
    if (!among[a]) continue;
    let count = 0;
    for (let b = 0, o = a * m; b < m; b++) count += among[b] & close[o + b];
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
  const m = seedRows.length;
  const close = closeness(normalizeRows(gatherRows(captions, d, seedRows), d), d, m, similarity);
  const among = new Uint8Array(m).fill(1);
  // zero caption vectors are within no positive similarity, not even of themselves: the first seed anchors then
  const anchor = Math.max(0, largestGroup(close, among).anchor);
  const group: number[] = [];
  for (let b = 0; b < m; b++) if (close[anchor * m + b]) group.push(b);
  // The runner-up is formed from the seeds outside the concept — captioned unlike every caption of the group,
  // the holds' own test — so that one concept split by the similarity (the quickstart's bag-of-words captions
  // of "red circle": groups of 5 and 3 among 10 seeds) does not count as two.
  for (let b = 0; b < m; b++) if (group.some((t) => close[t * m + b])) among[b] = 0;
  return { anchor: seedRows[anchor], seeds: Int32Array.from(group, (b) => seedRows[b]), runnerUp: largestGroup(close, among).size };
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
