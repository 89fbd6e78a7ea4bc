import type { Distance, NeighborGraph } from '../types.js';
import { Arena, KernelHeap } from '../../backend/wasm/heap.js';

/**
 * Exact k-NN on the WebAssembly SIMD kernels (../../backend/wasm/kernels.ts), driven
 * from JS. One `KernelHeap` is one wasm memory with the kernels
 * instantiated on it: private and growable for a single thread, or shared
 * between worker threads (./exact.ts).
 *
 * Ranking: on float32 data centred on its mean (L2) or scaled to unit rows
 * (cosine), a candidate y of query x scores bias(y) + alpha * x.y with
 * bias = |y|^2, alpha = -2 (L2: |x - y|^2 minus the row constant |x|^2) or
 * bias = 0, alpha = -1 (cosine: -cos). Each row keeps its `cc` best
 * candidates under the total order (score, index), which makes the kept set
 * independent of the order tiles are visited in, and of how they are split
 * between threads. The kept candidates are re-ranked by their exact distance
 * (float64 from the original coordinates), ties by index, and the first k
 * are the row's neighbours with their true distances.
 *
 * Over one set the Gram matrix is symmetric: only tiles (I, J >= I) are
 * computed, and each is offered to the rows of I (rowscan) and, read
 * column-wise, to the rows of J (colscan): half the multiply-adds of the
 * plain blocked search, the same neighbours.
 */

/** Candidates kept per row beyond k: the float32 ranking can misorder distances closer than its rounding error. */
export const SPARE_CANDIDATES = 4;
/** Rows per tile side; a multiple of ROW_PAD. 256 x 256 scores (256 KiB) stay in L2. */
export const DEFAULT_TILE = 256;
const INT_MAX = 0x7fffffff;

const roundUp = (v: number, m: number) => Math.ceil(v / m) * m;

/** Row padding: colscan reads 16 columns at a time. */
export const ROW_PAD = 16;

/** Where one point set lives in a heap: raw rows (for refinement), packed ranking rows, bias. */
export interface SetLayout {
  m: number;
  /** m rounded up to ROW_PAD. */
  mp: number;
  d: number;
  /** d rounded up to 4 (zero padded). */
  dp: number;
  distance: Distance;
  raw: number;
  packed: number;
  bias: number;
  center: number;
  scale: number;
  /** Float64 row norms (cosine only; 0 otherwise). */
  norms: number;
}

/** Bytes `layoutSet` allocates for m points of dimension d. */
export function setBytes(m: number, d: number, distance: Distance): number {
  const dp = roundUp(d, 4);
  const mp = roundUp(m, ROW_PAD);
  return m * dp * 4 + mp * dp * 4 + mp * 4 + dp * 4 + m * 4 + (distance === 'cosine' ? m * 8 : 0) + 6 * 64;
}

export function layoutSet(arena: Arena, m: number, d: number, distance: Distance): SetLayout {
  const dp = roundUp(d, 4);
  const mp = roundUp(m, ROW_PAD);
  return {
    m,
    mp,
    d,
    dp,
    distance,
    raw: arena.alloc(m * dp * 4),
    packed: arena.alloc(mp * dp * 4),
    bias: arena.alloc(mp * 4),
    center: arena.alloc(dp * 4),
    scale: arena.alloc(m * 4),
    norms: distance === 'cosine' ? arena.alloc(m * 8) : 0,
  };
}

/**
 * Write `points` (m x d, row-major) into the set's regions: raw rows zero
 * padded to dp, the ranking rows (centred on the column means, or on
 * `center` — queries use their reference set's — or scaled to unit length)
 * in octet panels, their bias (|y|^2 or 0; NaN for padding rows so they are
 * never kept).
 */
export function fillSet(heap: KernelHeap, set: SetLayout, points: Float32Array, center?: Float32Array): void {
  const { m, mp, d, dp, distance } = set;
  const f32 = heap.f32;
  const raw = set.raw >> 2;
  if (dp === d) f32.set(points.subarray(0, m * d), raw);
  else {
    f32.fill(0, raw, raw + m * dp);
    for (let i = 0; i < m; i++) f32.set(points.subarray(i * d, i * d + d), raw + i * dp);
  }
  f32.fill(0, set.packed >> 2, (set.packed >> 2) + mp * dp);
  const centerAt = set.center >> 2;
  const scale = set.scale >> 2;
  f32.fill(0, centerAt, centerAt + dp);
  f32.fill(1, scale, scale + m);
  if (distance === 'l2' && center) f32.set(center.subarray(0, d), set.center >> 2);
  else if (distance === 'l2') {
    // float64 column sums in the kernel, into the (not yet used) packed region
    heap.k.colsum(set.raw, dp, m, set.packed);
    const f64 = heap.f64;
    for (let f = 0; f < d; f++) f32[centerAt + f] = f64[(set.packed >> 3) + f] / m;
    f32.fill(0, set.packed >> 2, (set.packed >> 2) + 2 * dp);
  } else {
    const f64 = heap.f64;
    for (let i = 0; i < m; i++) {
      let s = 0;
      const o = i * d;
      for (let f = 0; f < d; f++) s += points[o + f] * points[o + f];
      const norm = Math.sqrt(s);
      f64[(set.norms >> 3) + i] = norm;
      f32[scale + i] = norm > 0 ? 1 / norm : 0;
    }
  }
  heap.k.pack(set.raw, dp, m, set.center, set.scale, set.packed, set.bias, distance === 'l2' ? 1 : 0);
  const bias = set.bias >> 2;
  if (distance === 'cosine') f32.fill(0, bias, bias + m);
  f32.fill(NaN, bias + m, bias + mp);
}

/**
 * Per-row candidate buffers of a range of rows: `cap` entries each (score,
 * id), a count, and the threshold a candidate must beat (+inf until the
 * buffer first fills; then the cc-th best so far).
 */
export interface Lists {
  rows: number;
  cap: number;
  cc: number;
  ls: number;
  li: number;
  cnt: number;
  thrS: number;
  thrI: number;
}

/** Buffer capacity for cc kept candidates: appends are cheap, a full buffer is cut back to cc by quickselect. */
export const bufferCapacity = (cc: number) => Math.ceil((2 * cc + 16) / 4) * 4;

export function listBytes(rows: number, cc: number): number {
  return rows * bufferCapacity(cc) * 8 + rows * 12 + 5 * 64;
}

export function layoutLists(arena: Arena, rows: number, cc: number): Lists {
  const cap = bufferCapacity(cc);
  return { rows, cap, cc, ls: arena.alloc(rows * cap * 4), li: arena.alloc(rows * cap * 4), cnt: arena.alloc(rows * 4), thrS: arena.alloc(rows * 4), thrI: arena.alloc(rows * 4) };
}

export function resetLists(heap: KernelHeap, l: Lists): void {
  heap.i32.fill(0, l.cnt >> 2, (l.cnt >> 2) + l.rows);
  heap.f32.fill(Infinity, l.thrS >> 2, (l.thrS >> 2) + l.rows);
  heap.i32.fill(INT_MAX, l.thrI >> 2, (l.thrI >> 2) + l.rows);
}

/** Cut every buffer back to its cc best (the rows' final candidates, unordered). */
export function finishLists(heap: KernelHeap, l: Lists, row0 = 0, rows = l.rows): void {
  heap.k.finish(l.ls + row0 * l.cap * 4, l.li + row0 * l.cap * 4, l.cnt + row0 * 4, l.thrS + row0 * 4, l.thrI + row0 * 4, rows, l.cap, l.cc);
}

/** Scratch of one thread: a tile of scores and the self index of each tile row. */
export interface TileScratch {
  tile: number;
  c: number;
  self: number;
  /** One row of scores (threshold seeding). */
  row: number;
}

export function scratchBytes(tile: number): number {
  return tile * tile * 4 + 2 * tile * 4 + 3 * 64;
}

export function layoutScratch(arena: Arena, tile: number): TileScratch {
  return { tile, c: arena.alloc(tile * tile * 4), self: arena.alloc(tile * 4), row: arena.alloc(tile * 4) };
}

/** Seeding stops once a threshold admits at most this many candidates beyond cc. */
const SEED_SLACK = 8;

const alphaOf = (distance: Distance) => (distance === 'l2' ? -2 : -1);

function tileShape(a: SetLayout, r0: number, b: SetLayout, c0: number, T: number): { rows: number; cols: number; ldc: number } {
  const rows = Math.min(T, a.mp - r0);
  const cols = Math.min(T, b.mp - c0);
  return { rows, cols, ldc: cols * 4 };
}

/** Scores of rows [r0, r0 + T) of `a` against rows [c0, c0 + T) of `b` into the scratch tile. */
function gemmTile(heap: KernelHeap, a: SetLayout, r0: number, b: SetLayout, c0: number, scratch: TileScratch): { rows: number; cols: number; ldc: number } {
  const shape = tileShape(a, r0, b, c0, scratch.tile);
  heap.k.gemm(a.packed + r0 * a.dp * 4, b.packed + c0 * b.dp * 4, shape.rows >> 2, shape.cols >> 3, a.dp, scratch.c, shape.ldc);
  return shape;
}

/** self[r] = r0 + r for the tile's rows (symmetric search: a row's own index). */
function selfRows(heap: KernelHeap, scratch: TileScratch, r0: number, rows: number): number {
  const i32 = heap.i32;
  const at = scratch.self >> 2;
  for (let r = 0; r < rows; r++) i32[at + r] = r0 + r;
  return scratch.self;
}

/**
 * Seed the thresholds of rows [r0, r0 + T) (list rows listRow0 + r0 + r)
 * from their scores against rows [c0, c0 + T) of `b` (see the `seed`
 * kernel). `self` points at the rows' excluded indices.
 */
export function seedTile(heap: KernelHeap, a: SetLayout, r0: number, b: SetLayout, c0: number, self: number, lists: Lists, listRow0: number, scratch: TileScratch): void {
  const { rows, cols, ldc } = gemmTile(heap, a, r0, b, c0, scratch);
  const at = listRow0 + r0;
  heap.k.seed(scratch.c, ldc, rows, cols >> 4, b.bias + c0 * 4, alphaOf(b.distance), c0, self, lists.thrS + at * 4, lists.thrI + at * 4, lists.cc, SEED_SLACK, scratch.row);
}

/** Seed block I of a set from its diagonal tile. */
export function seedDiagonal(heap: KernelHeap, set: SetLayout, lists: Lists, scratch: TileScratch, I: number): void {
  const r0 = I * scratch.tile;
  const self = selfRows(heap, scratch, r0, Math.min(scratch.tile, set.mp - r0));
  seedTile(heap, set, r0, set, r0, self, lists, 0, scratch);
}

/**
 * Offer tile (I, J >= I) of the set to the lists (rows of I, and for J != I
 * the rows of J). `lists` covers all mp rows of the set (row r at list r).
 * A diagonal tile also seeds its rows' thresholds (a no-op when
 * seedDiagonal already did): process diagonal tiles first.
 */
export function symmetricTile(heap: KernelHeap, set: SetLayout, lists: Lists, scratch: TileScratch, I: number, J: number): void {
  const T = scratch.tile;
  const r0 = I * T;
  const c0 = J * T;
  const { rows, cols, ldc } = gemmTile(heap, set, r0, set, c0, scratch);
  const self = selfRows(heap, scratch, r0, rows);
  const alpha = alphaOf(set.distance);
  const { cc, cap } = lists;
  const k = heap.k;
  if (J === I) k.seed(scratch.c, ldc, rows, cols >> 4, set.bias + c0 * 4, alpha, c0, self, lists.thrS + r0 * 4, lists.thrI + r0 * 4, cc, SEED_SLACK, scratch.row);
  k.rowscan(scratch.c, ldc, rows, cols >> 4, set.bias + c0 * 4, alpha, c0, self, lists.ls + r0 * cap * 4, lists.li + r0 * cap * 4, lists.cnt + r0 * 4, lists.thrS + r0 * 4, lists.thrI + r0 * 4, cap, cc);
  if (J !== I) {
    k.colscan(scratch.c, ldc, rows, cols >> 4, set.bias + r0 * 4, alpha, r0, lists.ls + c0 * cap * 4, lists.li + c0 * cap * 4, lists.cnt + c0 * 4, lists.thrS + c0 * 4, lists.thrI + c0 * 4, cap, cc);
  }
}

/**
 * Offer reference rows [c0, c0 + T) of `refs` to query rows [r0, r0 + T)
 * of `queries` (asymmetric search: rowscan only). `self` points at the
 * query rows' excluded reference indices (-1: none); lists row r0 + r.
 */
export function queryTile(heap: KernelHeap, queries: SetLayout, refs: SetLayout, lists: Lists, scratch: TileScratch, r0: number, c0: number, self: number, inScratch = false): void {
  const { rows, cols, ldc } = inScratch ? tileShape(queries, r0, refs, c0, scratch.tile) : gemmTile(heap, queries, r0, refs, c0, scratch);
  const { cc, cap } = lists;
  heap.k.rowscan(scratch.c, ldc, rows, cols >> 4, refs.bias + c0 * 4, alphaOf(refs.distance), c0, self, lists.ls + r0 * cap * 4, lists.li + r0 * cap * 4, lists.cnt + r0 * 4, lists.thrS + r0 * 4, lists.thrI + r0 * 4, cap, cc);
}

/** Scratch for `refineRows`: `rows` x cc float64 distances. */
export function refineBytes(rows: number, cc: number): number {
  return rows * cc * 8 + 64;
}

/**
 * Exact distances of the cc candidates of query rows [r0, r0 + rows) (ids
 * at li, row stride lstride), the k best by (distance, index) written to
 * outIdx/outDist rows outRow0 + r. Candidate ids index `refs`.
 */
export function refineRows(
  heap: KernelHeap,
  queries: SetLayout,
  refs: SetLayout,
  li: number,
  lstride: number,
  cc: number,
  r0: number,
  rows: number,
  k: number,
  out: number,
  outIdx: Int32Array,
  outDist: Float32Array,
  outRow0: number,
): void {
  if (queries.distance === 'l2') heap.k.sqdist(queries.raw + r0 * queries.dp * 4, refs.raw, queries.dp, rows, li, lstride, cc, out);
  else heap.k.dot(queries.raw + r0 * queries.dp * 4, refs.raw, queries.dp, rows, li, lstride, cc, out);
  const f64 = heap.f64;
  const i32 = heap.i32;
  const o64 = out >> 3;
  const l32 = li >> 2;
  const bestD = new Float64Array(k);
  const bestI = new Int32Array(k);
  const qn = queries.norms >> 3;
  const rn = refs.norms >> 3;
  for (let r = 0; r < rows; r++) {
    let kept = 0;
    for (let t = 0; t < cc; t++) {
      const j = i32[l32 + r * lstride + t];
      let dist: number;
      const v = f64[o64 + r * cc + t];
      if (queries.distance === 'l2') dist = Math.sqrt(v);
      else {
        const denom = f64[qn + r0 + r] * f64[rn + j];
        dist = denom === 0 ? 1 : 1 - v / denom;
        dist = dist < 0 ? 0 : dist > 2 ? 2 : dist;
      }
      let p: number;
      if (kept === k) {
        if (dist > bestD[k - 1] || (dist === bestD[k - 1] && j > bestI[k - 1])) continue;
        p = k - 1;
      } else p = kept++;
      while (p > 0 && (bestD[p - 1] > dist || (bestD[p - 1] === dist && bestI[p - 1] > j))) {
        bestD[p] = bestD[p - 1];
        bestI[p] = bestI[p - 1];
        p--;
      }
      bestD[p] = dist;
      bestI[p] = j;
    }
    const o = (outRow0 + r) * k;
    for (let t = 0; t < k; t++) {
      outIdx[o + t] = bestI[t];
      outDist[o + t] = bestD[t];
    }
  }
}

/** Rows refined per kernel call. */
export const REFINE_ROWS = 256;

/** Candidate list length for k neighbours among m points. */
export function candidateCount(m: number, k: number): number {
  return Math.min(m - 1, k + SPARE_CANDIDATES);
}

/** Bytes a single-thread `kernelNeighbors` over m x d needs. */
export function symmetricBytes(m: number, d: number, k: number, distance: Distance, tile = DEFAULT_TILE): number {
  const cc = candidateCount(m, k);
  return setBytes(m, d, distance) + listBytes(roundUp(m, 8), cc) + scratchBytes(tile) + refineBytes(REFINE_ROWS, cc) + 1024;
}

/**
 * Exact k-NN of every row among the rows of `points` (m x d) on one heap,
 * this thread. Input checks are the caller's (checkSearchInput).
 */
export function symmetricNeighbors(heap: KernelHeap, points: Float32Array, m: number, d: number, k: number, distance: Distance, tile = DEFAULT_TILE): NeighborGraph {
  heap.ensure(symmetricBytes(m, d, k, distance, tile));
  const arena = new Arena(64);
  const set = layoutSet(arena, m, d, distance);
  const cc = candidateCount(m, k);
  const lists = layoutLists(arena, set.mp, cc);
  const scratch = layoutScratch(arena, tile);
  const out = arena.alloc(REFINE_ROWS * cc * 8);
  fillSet(heap, set, points);
  resetLists(heap, lists);
  const blocks = Math.ceil(set.mp / tile);
  for (let I = 0; I < blocks; I++) symmetricTile(heap, set, lists, scratch, I, I);
  for (let I = 0; I < blocks; I++) for (let J = I + 1; J < blocks; J++) symmetricTile(heap, set, lists, scratch, I, J);
  finishLists(heap, lists);
  const indices = new Int32Array(m * k);
  const distances = new Float32Array(m * k);
  for (let r0 = 0; r0 < m; r0 += REFINE_ROWS) {
    refineRows(heap, set, set, lists.li + r0 * lists.cap * 4, lists.cap, cc, r0, Math.min(REFINE_ROWS, m - r0), k, out, indices, distances, r0);
  }
  return { n: m, k, indices, distances };
}

let threadHeap: KernelHeap | null = null;

/** This thread's private kernel heap (created on first use, grown as needed, kept for reuse). */
export function localHeap(): KernelHeap {
  if (!threadHeap) threadHeap = KernelHeap.private(1 << 20);
  return threadHeap;
}

/** Bytes `queryNeighbors` needs for q queries against n points. */
export function queryBytes(n: number, q: number, d: number, k: number, distance: Distance, tile = DEFAULT_TILE): number {
  const cc = candidateCount(n, k);
  const qp = roundUp(q, ROW_PAD);
  return setBytes(n, d, distance) + setBytes(q, d, distance) + listBytes(qp, cc) + qp * 4 + scratchBytes(tile) + refineBytes(REFINE_ROWS, cc) + 1024;
}

/** The reference set's centre as written by fillSet (queries are centred on it too). */
export function setCenter(heap: KernelHeap, set: SetLayout): Float32Array {
  return heap.f32.slice(set.center >> 2, (set.center >> 2) + set.d);
}

/** Rows `rows` of a row-major matrix. */
export function gatherPoints(points: Float32Array, d: number, rows: Int32Array): Float32Array {
  const out = new Float32Array(rows.length * d);
  for (let t = 0; t < rows.length; t++) out.set(points.subarray(rows[t] * d, rows[t] * d + d), t * d);
  return out;
}

/** Write the query rows' excluded index: the query's own row (padding: -1). */
export function fillQuerySelf(heap: KernelHeap, at: number, queries: Int32Array, rows: number): void {
  const i32 = heap.i32;
  i32.set(queries, at >> 2);
  i32.fill(-1, (at >> 2) + queries.length, (at >> 2) + rows);
}

/**
 * Query rows [r0, r0 + T) of `queries` against every row of `refs`: seed,
 * scan all reference tiles, cut the buffers back, refine into rows r0.. of
 * outIdx/outDist.
 */
export function queryBlock(heap: KernelHeap, queries: SetLayout, refs: SetLayout, self: number, lists: Lists, scratch: TileScratch, out: number, r0: number, k: number, outIdx: Int32Array, outDist: Float32Array): void {
  const T = scratch.tile;
  seedTile(heap, queries, r0, refs, 0, self + r0 * 4, lists, 0, scratch);
  // the seed left the first tile's scores in the scratch: scanned without a second product
  // (a third of the arithmetic when the references are one or two tiles, as in IVF lists)
  for (let c0 = 0; c0 < refs.mp; c0 += T) queryTile(heap, queries, refs, lists, scratch, r0, c0, self + r0 * 4, c0 === 0);
  const rows = Math.min(T, queries.mp - r0);
  finishLists(heap, lists, r0, rows);
  const real = Math.min(rows, queries.m - r0);
  for (let b = 0; b < real; b += REFINE_ROWS) {
    const at = r0 + b;
    refineRows(heap, queries, refs, lists.li + at * lists.cap * 4, lists.cap, lists.cc, at, Math.min(REFINE_ROWS, real - b), k, out, outIdx, outDist, at);
  }
}

/** Exact k-NN of the points `queries` (rows of `points`) among all n points, this thread. */
export function queryNeighbors(heap: KernelHeap, points: Float32Array, n: number, d: number, queries: Int32Array, k: number, distance: Distance, tile = DEFAULT_TILE): NeighborGraph {
  const q = queries.length;
  heap.ensure(queryBytes(n, q, d, k, distance, tile));
  const arena = new Arena(64);
  const refs = layoutSet(arena, n, d, distance);
  const qs = layoutSet(arena, q, d, distance);
  const cc = candidateCount(n, k);
  const lists = layoutLists(arena, qs.mp, cc);
  const self = arena.alloc(qs.mp * 4);
  const scratch = layoutScratch(arena, tile);
  const out = arena.alloc(REFINE_ROWS * cc * 8);
  fillSet(heap, refs, points);
  fillSet(heap, qs, gatherPoints(points, d, queries), setCenter(heap, refs));
  fillQuerySelf(heap, self, queries, qs.mp);
  resetLists(heap, lists);
  const indices = new Int32Array(q * k);
  const distances = new Float32Array(q * k);
  for (let r0 = 0; r0 < qs.mp; r0 += tile) queryBlock(heap, qs, refs, self, lists, scratch, out, r0, k, indices, distances);
  return { n: q, k, indices, distances };
}

/** Bytes `searchSets` needs for q queries against r reference points. */
export function searchSetsBytes(q: number, r: number, d: number, k: number, distance: Distance, tile = DEFAULT_TILE): number {
  return queryBytes(r, q, d, k, distance, tile);
}

/**
 * Exact k-NN of q query points (their own coordinates, `queries`, q x d)
 * among r reference points (`refs`, r x d), this thread. `self[t]` is the
 * reference index query t must not take (-1 or absent: none). Result
 * indices are reference positions. Queries are centred on the references'
 * centre, as in every search here.
 */
export function searchSets(heap: KernelHeap, queries: Float32Array, q: number, refs: Float32Array, r: number, d: number, k: number, distance: Distance, self: Int32Array | null, tile = DEFAULT_TILE): NeighborGraph {
  heap.ensure(searchSetsBytes(q, r, d, k, distance, tile));
  const arena = new Arena(64);
  const rs = layoutSet(arena, r, d, distance);
  const qs = layoutSet(arena, q, d, distance);
  const cc = candidateCount(r + (self ? 0 : 1), k);
  const lists = layoutLists(arena, qs.mp, cc);
  const selfAt = arena.alloc(qs.mp * 4);
  const scratch = layoutScratch(arena, tile);
  const out = arena.alloc(REFINE_ROWS * cc * 8);
  fillSet(heap, rs, refs);
  fillSet(heap, qs, queries, setCenter(heap, rs));
  if (self) fillQuerySelf(heap, selfAt, self, qs.mp);
  else heap.i32.fill(-1, selfAt >> 2, (selfAt >> 2) + qs.mp);
  resetLists(heap, lists);
  const indices = new Int32Array(q * k);
  const distances = new Float32Array(q * k);
  for (let r0 = 0; r0 < qs.mp; r0 += tile) queryBlock(heap, qs, rs, selfAt, lists, scratch, out, r0, k, indices, distances);
  return { n: q, k, indices, distances };
}
