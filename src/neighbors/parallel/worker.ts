/**
 * Worker thread of the neighbour search and scoring pool (./pool.ts). Loads
 * no tfjs: the wasm kernels, the detectors' graph scores and hnswlib only.
 * Every task gets exactly one reply; a task that throws replies with the
 * error instead of taking the thread down.
 */
import { parentPort } from 'node:worker_threads';
import { scoreSetWith, type ReferenceSet } from '../../detectors/setScore.js';
import { kernelExactNeighbors } from '../kernelSearch.js';
import { exactAttach, exactQueries, exactRefine, exactRelease, exactTiles } from './exactWorker.js';
import { hnswBuild, hnswQuery, hnswRefine, hnswRelease } from './hnswWorker.js';
import { ivfLists, ivfProbe, ivfTrain } from './ivfWorker.js';
import type { ScoreChunkTask, TaskMessage, TaskReply } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('neighbors/parallel/worker.js must run as a worker thread');

function scoreChunk(task: ScoreChunkTask): Float64Array {
  const set: ReferenceSet = {
    embeddings: task.embeddings,
    text: task.text,
    m: task.m,
    d: task.d,
    k: task.k,
    search: { method: 'exact', distance: task.distance, blockSize: 2048, hnsw: { M: 16, efConstruction: 200, efSearch: 64 } },
    seed: 0,
  };
  return scoreSetWith(task.spec, set, (points, n, d, k, search) => kernelExactNeighbors(points, n, d, k, { distance: search.distance }));
}

function handle(task: TaskMessage): { result: unknown; transfer: ArrayBuffer[] } {
  switch (task.type) {
    case 'selftest':
      if (task.mode === 'throw') throw new Error('selftest failure requested');
      if (task.mode === 'exit') process.exit(3);
      return { result: task.value ?? null, transfer: [] };
    case 'score-chunk': {
      const scores = scoreChunk(task);
      return { result: scores, transfer: [scores.buffer as ArrayBuffer] };
    }
    case 'exact-attach':
      exactAttach(task.memory, task.fma, task.plan);
      return { result: null, transfer: [] };
    case 'exact-tiles':
      exactTiles(task.job, task.worker);
      return { result: null, transfer: [] };
    case 'exact-refine':
      exactRefine(task.job, task.worker);
      return { result: null, transfer: [] };
    case 'exact-queries':
      exactQueries(task.job, task.worker);
      return { result: null, transfer: [] };
    case 'exact-release':
      exactRelease(task.job);
      return { result: null, transfer: [] };
    case 'hnsw-build':
      hnswBuild(task);
      return { result: null, transfer: [] };
    case 'hnsw-query':
      hnswQuery(task);
      return { result: null, transfer: [] };
    case 'hnsw-refine':
      hnswRefine(task);
      return { result: null, transfer: [] };
    case 'ivf-train': {
      const centroids = ivfTrain(task);
      return { result: centroids, transfer: [centroids.buffer as ArrayBuffer] };
    }
    case 'ivf-probe':
      ivfProbe(task);
      return { result: null, transfer: [] };
    case 'ivf-lists':
      ivfLists(task);
      return { result: null, transfer: [] };
    case 'hnsw-release':
      hnswRelease(task.job);
      return { result: null, transfer: [] };
  }
}

port.on('message', (task: TaskMessage) => {
  let reply: TaskReply;
  let transfer: ArrayBuffer[] = [];
  try {
    const out = handle(task);
    reply = { id: task.id, ok: true, result: out.result };
    transfer = out.transfer;
  } catch (e) {
    const err = e as Error;
    reply = { id: task.id, ok: false, message: err?.message ?? String(e), stack: err?.stack };
  }
  port.postMessage(reply, transfer);
});
