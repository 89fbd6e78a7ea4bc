/**
 * Straightforward O(n^2) references for the neighbour tests (float64, full
 * sort per row). Not a test file itself.
 */
import { Rng } from '../../src/util/rng.js';

export function bruteDistance(points: ArrayLike<number>, d: number, i: number, j: number, distance: 'l2' | 'cosine'): number {
  let s = 0;
  let dot = 0;
  let ni = 0;
  let nj = 0;
  for (let f = 0; f < d; f++) {
    const a = points[i * d + f];
    const b = points[j * d + f];
    s += (a - b) * (a - b);
    dot += a * b;
    ni += a * a;
    nj += b * b;
  }
  if (distance === 'l2') return Math.sqrt(s);
  if (ni === 0 || nj === 0) return 1;
  return Math.min(2, Math.max(0, 1 - dot / Math.sqrt(ni * nj)));
}

/** Row i: the k nearest other points sorted by (distance, index). */
export function bruteKnn(points: ArrayLike<number>, n: number, d: number, k: number, distance: 'l2' | 'cosine' = 'l2'): { indices: number[][]; distances: number[][] } {
  const indices: number[][] = [];
  const distances: number[][] = [];
  for (let i = 0; i < n; i++) {
    const row: [number, number][] = [];
    for (let j = 0; j < n; j++) if (j !== i) row.push([bruteDistance(points, d, i, j, distance), j]);
    row.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    indices.push(row.slice(0, k).map((r) => r[1]));
    distances.push(row.slice(0, k).map((r) => r[0]));
  }
  return { indices, distances };
}

export function randomPoints(n: number, d: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed, 'points');
  const out = new Float32Array(n * d);
  for (let i = 0; i < out.length; i++) out[i] = rng.normal() * scale;
  return out;
}
