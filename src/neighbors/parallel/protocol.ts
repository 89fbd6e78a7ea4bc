import type { SetScoreSpec } from '../../detectors/setScore.js';
import type { IvfPlan } from '../ivf.js';
import type { Distance } from '../types.js';
import type { WasmMemory } from '../../backend/wasm/kernels.js';
import type { Lists, SetLayout, TileScratch } from './engine.js';

/** Messages between the pool (./pool.ts) and its threads (./worker.ts). Every task gets exactly one reply. */

/** Health check of a thread; `throw` and `exit` exercise the failure paths (tests). */
export interface SelftestTask {
  type: 'selftest';
  mode: 'echo' | 'throw' | 'exit';
  value?: number;
}

/** Score one reference set (a sampled chunk) with exact kernel neighbours; replies the m scores. */
export interface ScoreChunkTask {
  type: 'score-chunk';
  embeddings: Float32Array;
  text?: Float32Array;
  m: number;
  d: number;
  k: number;
  distance: Distance;
  spec: SetScoreSpec;
}

/**
 * Layout of a shared-memory exact search (all numbers: byte offsets into the
 * shared heap). `symmetric`: every row of `set` against the others, each
 * thread with its own candidate buffers, merged at the end; `queries`: the
 * rows of `queries` against `set`, query blocks claimed by the threads.
 */
export interface ExactPlan {
  job: number;
  mode: 'symmetric' | 'queries';
  workers: number;
  k: number;
  cc: number;
  tile: number;
  set: SetLayout;
  queries: SetLayout | null;
  /** Query rows' excluded reference index (queries mode), i32 per query row. */
  querySelf: number;
  /** Candidate buffers of the query rows (queries mode). */
  queryLists: Lists | null;
  /** Two i32 work counters (tiles, refinement blocks). */
  control: number;
  /** Result rows: i32 indices and f32 distances, rows x k. */
  outIdx: number;
  outDist: number;
  rows: number;
  perWorker: { lists: Lists | null; scratch: TileScratch; out: number; merged: number }[];
}

export interface ExactAttachTask {
  type: 'exact-attach';
  memory: WasmMemory;
  fma: boolean;
  plan: ExactPlan;
}

export interface ExactPhaseTask {
  type: 'exact-tiles' | 'exact-refine' | 'exact-queries' | 'exact-release';
  job: number;
  worker: number;
}

/** Build an HNSW index over rows [from, to) of the shared points (labels = row indices). */
export interface HnswBuildTask {
  type: 'hnsw-build';
  job: number;
  points: SharedArrayBuffer;
  n: number;
  d: number;
  from: number;
  to: number;
  distance: Distance;
  M: number;
  efConstruction: number;
  seed: number;
}

/** Query every point against this thread's index; write `want` labels per point into slot `slot` of `candidates` (-1 padded). */
export interface HnswQueryTask {
  type: 'hnsw-query';
  job: number;
  efSearch: number;
  want: number;
  candidates: SharedArrayBuffer;
  slots: number;
  slot: number;
}

/** Exact re-rank of rows [from, to): the k best candidates of all slots into `indices`/`distances`. */
export interface HnswRefineTask {
  type: 'hnsw-refine';
  job: number;
  points: SharedArrayBuffer;
  n: number;
  d: number;
  k: number;
  distance: Distance;
  candidates: SharedArrayBuffer;
  width: number;
  from: number;
  to: number;
  indices: SharedArrayBuffer;
  distances: SharedArrayBuffer;
}

export interface HnswReleaseTask {
  type: 'hnsw-release';
  job: number;
}

/** k-means of the IVF search on the shared points; replies the centroids (lists x d). */
export interface IvfTrainTask {
  type: 'ivf-train';
  points: SharedArrayBuffer;
  n: number;
  d: number;
  plan: IvfPlan;
  distance: Distance;
  seed: number;
}

/** The `probes` nearest centroids of points [from, to) into rows of `probeOf` (n x probes). */
export interface IvfProbeTask {
  type: 'ivf-probe';
  points: SharedArrayBuffer;
  n: number;
  d: number;
  from: number;
  to: number;
  centroids: Float32Array;
  lists: number;
  probes: number;
  distance: Distance;
  probeOf: SharedArrayBuffer;
}

/** Search every list for the points this thread owns (every `threads`-th from `thread`); their rows into `indices`/`distances`. */
export interface IvfListsTask {
  type: 'ivf-lists';
  points: SharedArrayBuffer;
  n: number;
  d: number;
  k: number;
  distance: Distance;
  probeOf: SharedArrayBuffer;
  probes: number;
  lists: number;
  thread: number;
  threads: number;
  indices: SharedArrayBuffer;
  distances: SharedArrayBuffer;
}

export type Task = IvfTrainTask | IvfProbeTask | IvfListsTask | SelftestTask | ScoreChunkTask | ExactAttachTask | ExactPhaseTask | HnswBuildTask | HnswQueryTask | HnswRefineTask | HnswReleaseTask;
export type TaskMessage = Task & { id: number };

export type TaskReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; message: string; stack?: string };
