import { KernelHeap } from '../../backend/wasm/heap.js';
import {
  finishLists,
  queryBlock,
  refineRows,
  REFINE_ROWS,
  resetLists,
  seedDiagonal,
  symmetricTile,
  type Lists,
} from './engine.js';
import type { ExactPlan } from './protocol.js';
import type { WasmMemory } from '../../backend/wasm/kernels.js';

/**
 * The thread side of the shared-memory exact search (./exact.ts). Every
 * thread attaches the same shared heap and claims work with an atomic
 * counter, so the split follows the threads' actual speed.
 *
 * Symmetric mode, phase `tiles`: each thread seeds its own candidate buffers
 * of every row from the diagonal tiles, then claims tiles (I, J >= I),
 * diagonal ones first, offering each to its buffers. Phase `refine`: row
 * blocks are claimed; a row's candidates are the cc best of the union of
 * all threads' buffers (each holds the best of what that thread was
 * offered, so the union holds the overall best), re-ranked exactly. The
 * result does not depend on the split.
 */

interface Job {
  heap: KernelHeap;
  plan: ExactPlan;
}

const jobs = new Map<number, Job>();

function job(id: number): Job {
  const j = jobs.get(id);
  if (!j) throw new Error(`exact search job ${id} is not attached in this thread`);
  return j;
}

export function exactAttach(memory: WasmMemory, fma: boolean, plan: ExactPlan): void {
  jobs.set(plan.job, { heap: KernelHeap.attach(memory, fma), plan });
}

export function exactRelease(id: number): void {
  jobs.delete(id);
}

const TILE_COUNTER = 0;
const REFINE_COUNTER = 1;

/** Phase 1 of the symmetric search in thread `w`. */
export function exactTiles(id: number, w: number): void {
  const { heap, plan } = job(id);
  const { set } = plan;
  const mine = plan.perWorker[w];
  const lists = mine.lists!;
  resetLists(heap, lists);
  const blocks = Math.ceil(set.mp / plan.tile);
  for (let I = 0; I < blocks; I++) seedDiagonal(heap, set, lists, mine.scratch, I);
  const control = new Int32Array(heap.memory.buffer, plan.control, 2);
  const total = blocks + (blocks * (blocks - 1)) / 2;
  // Cursor over the off-diagonal pairs in row-major order: claims only increase.
  let rowI = 0;
  let rowStart = 0;
  for (;;) {
    const t = Atomics.add(control, TILE_COUNTER, 1);
    if (t >= total) break;
    if (t < blocks) {
      symmetricTile(heap, set, lists, mine.scratch, t, t);
      continue;
    }
    const u = t - blocks;
    while (u >= rowStart + (blocks - 1 - rowI)) {
      rowStart += blocks - 1 - rowI;
      rowI++;
    }
    symmetricTile(heap, set, lists, mine.scratch, rowI, rowI + 1 + (u - rowStart));
  }
  finishLists(heap, lists);
}

/** Phase 2 of the symmetric search in thread `w`: merge every thread's buffers row by row, refine. */
export function exactRefine(id: number, w: number): void {
  const { heap, plan } = job(id);
  const { set, k, cc } = plan;
  const mine = plan.perWorker[w];
  const all = plan.perWorker.map((p) => p.lists!) as Lists[];
  const control = new Int32Array(heap.memory.buffer, plan.control, 2);
  const outIdx = new Int32Array(heap.memory.buffer, plan.outIdx, plan.rows * k);
  const outDist = new Float32Array(heap.memory.buffer, plan.outDist, plan.rows * k);
  const f32 = heap.f32;
  const i32 = heap.i32;
  const bestS = new Float32Array(cc);
  const bestI = new Int32Array(cc);
  const merged = mine.merged >> 2;
  for (;;) {
    const r0 = Atomics.add(control, REFINE_COUNTER, 1) * REFINE_ROWS;
    if (r0 >= set.m) break;
    const rows = Math.min(REFINE_ROWS, set.m - r0);
    for (let r = 0; r < rows; r++) {
      const row = r0 + r;
      let kept = 0;
      for (const l of all) {
        const count = i32[(l.cnt >> 2) + row];
        const base = row * l.cap;
        for (let t = 0; t < count; t++) {
          const s = f32[(l.ls >> 2) + base + t];
          const j = i32[(l.li >> 2) + base + t];
          let p: number;
          if (kept === cc) {
            if (s > bestS[cc - 1] || (s === bestS[cc - 1] && j > bestI[cc - 1])) continue;
            p = cc - 1;
          } else p = kept++;
          while (p > 0 && (bestS[p - 1] > s || (bestS[p - 1] === s && bestI[p - 1] > j))) {
            bestS[p] = bestS[p - 1];
            bestI[p] = bestI[p - 1];
            p--;
          }
          bestS[p] = s;
          bestI[p] = j;
        }
      }
      if (kept < cc) throw new Error(`exact search: row ${row} kept ${kept} candidates, expected ${cc}`);
      i32.set(bestI, merged + r * cc);
    }
    refineRows(heap, set, set, mine.merged, cc, cc, r0, rows, k, mine.out, outIdx, outDist, r0);
  }
}

/** Queries mode in thread `w`: claim blocks of query rows and search each against the whole set. */
export function exactQueries(id: number, w: number): void {
  const { heap, plan } = job(id);
  const queries = plan.queries!;
  const lists = plan.queryLists!;
  const mine = plan.perWorker[w];
  const control = new Int32Array(heap.memory.buffer, plan.control, 2);
  const outIdx = new Int32Array(heap.memory.buffer, plan.outIdx, plan.rows * plan.k);
  const outDist = new Float32Array(heap.memory.buffer, plan.outDist, plan.rows * plan.k);
  for (;;) {
    const r0 = Atomics.add(control, TILE_COUNTER, 1) * plan.tile;
    if (r0 >= queries.mp) break;
    queryBlock(heap, queries, plan.set, plan.querySelf, lists, mine.scratch, mine.out, r0, plan.k, outIdx, outDist);
  }
}
