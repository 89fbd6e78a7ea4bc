import type { NeighborGraph } from '../neighbors/types.js';

export interface DuplicateGroups {
  /** Groups of two or more rows with identical embeddings. */
  groups: number;
  /** Rows that belong to such a group. */
  rows: number;
  /** Size of the largest group (1 when there are no duplicates, 0 for no rows). */
  largest: number;
  /**
   * Rows in groups of at least `massSize` identical rows. With massSize = k + 1
   * these are the rows whose whole-set k-distance is 0 (every neighbour is a copy).
   */
  massRows: number;
}

/**
 * Exact duplicate rows (value equality: 0 and -0 are equal, a row with NaN
 * equals nothing). Mass duplicates matter because a group larger than k
 * forms its own dense neighbourhood (the CC3M natural backdoor is 798
 * near-duplicates). Hashes each row once, then compares rows within a bucket.
 */
export function countDuplicateGroups(embeddings: Float32Array, n: number, d: number, massSize = Infinity): DuplicateGroups {
  if (embeddings.length !== n * d) throw new RangeError(`countDuplicateGroups: expected ${n * d} values, got ${embeddings.length}`);
  const bits = new Uint32Array(embeddings.buffer, embeddings.byteOffset, embeddings.length);
  // Chained buckets in typed arrays: head[hash slot] -> first row, next[row] -> next row.
  const slots = 1 << Math.max(4, Math.ceil(Math.log2(Math.max(2, n) * 2)));
  const head = new Int32Array(slots).fill(-1);
  const next = new Int32Array(n).fill(-1);
  const groupOf = new Int32Array(n).fill(-1); // representative row of each row's group
  const size = new Int32Array(n);
  let groups = 0;
  let rows = 0;
  let largest = n > 0 ? 1 : 0;
  outer: for (let i = 0; i < n; i++) {
    const o = i * d;
    let h = 0x811c9dc5;
    let finite = true;
    for (let f = 0; f < d; f++) {
      const v = embeddings[o + f];
      if (v !== v) finite = false;
      const b = v === 0 ? 0 : bits[o + f]; // -0 hashes like 0
      h = Math.imul(h ^ b, 0x01000193) >>> 0;
    }
    const slot = h & (slots - 1);
    if (finite) {
      for (let j = head[slot]; j >= 0; j = next[j]) {
        if (groupOf[j] !== j) continue; // only compare against representatives
        const p = j * d;
        let same = true;
        for (let f = 0; f < d; f++) {
          if (embeddings[o + f] !== embeddings[p + f]) {
            same = false;
            break;
          }
        }
        if (!same) continue;
        groupOf[i] = j;
        size[j]++;
        if (size[j] === 2) {
          groups++;
          rows += 2;
        } else rows++;
        if (size[j] > largest) largest = size[j];
        continue outer;
      }
    }
    groupOf[i] = i;
    size[i] = 1;
    next[i] = head[slot];
    head[slot] = i;
  }
  let massRows = 0;
  for (let i = 0; i < n; i++) if (groupOf[i] === i && size[i] >= massSize) massRows += size[i];
  return { groups, rows, largest, massRows };
}

/**
 * Rows whose k-distance is at most `tolerance` (default 0): points with at
 * least k exact duplicates in their reference set, i.e. where every
 * density ratio would be 0/0 without the distance floor.
 */
export function zeroKDistanceCount(graph: NeighborGraph, tolerance = 0): number {
  const { n, k, distances } = graph;
  let count = 0;
  for (let i = 0; i < n; i++) if (distances[i * k + k - 1] <= tolerance) count++;
  return count;
}
