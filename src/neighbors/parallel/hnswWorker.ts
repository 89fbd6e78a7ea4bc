import { loadHnswlib } from '../hnsw.js';
import { CandidateRefiner, rowNorms, type Distance } from '../types.js';
import type { HnswBuildTask, HnswQueryTask, HnswRefineTask } from './protocol.js';

/**
 * The thread side of the partitioned HNSW search (./hnsw.ts): each thread
 * builds an hnswlib index over its partition, then answers every point's
 * query against it; the candidates of all partitions are re-ranked exactly.
 */

type Index = InstanceType<ReturnType<typeof loadHnswlib>['HierarchicalNSW']>;

interface Job {
  index: Index;
  points: Float32Array;
  d: number;
  n: number;
  size: number;
  distance: Distance;
  norms: Float64Array | null;
}

const jobs = new Map<number, Job>();

/** A reusable number[] row (hnswlib-node takes plain arrays only), scaled to unit length for cosine. */
function rowFiller(job: Pick<Job, 'points' | 'd' | 'distance' | 'norms'>): { row: number[]; fill: (i: number) => number[] } {
  const { points, d, norms } = job;
  const row = new Array<number>(d).fill(0);
  return {
    row,
    fill: (i: number) => {
      const o = i * d;
      const scale = norms ? (norms[i] > 0 ? 1 / norms[i] : 0) : 1;
      for (let f = 0; f < d; f++) row[f] = points[o + f] * scale;
      return row;
    },
  };
}

export function hnswBuild(task: HnswBuildTask): void {
  const { n, d, from, to, distance } = task;
  const points = new Float32Array(task.points, 0, n * d);
  const norms = distance === 'cosine' ? rowNorms(points, n, d) : null;
  const lib = loadHnswlib();
  const index = new lib.HierarchicalNSW(distance === 'l2' ? 'l2' : 'ip', d);
  index.initIndex({ maxElements: to - from, m: task.M, efConstruction: task.efConstruction, randomSeed: task.seed });
  const { fill } = rowFiller({ points, d, distance, norms });
  for (let i = from; i < to; i++) index.addPoint(fill(i), i);
  jobs.set(task.job, { index, points, d, n, size: to - from, distance, norms });
}

export function hnswQuery(task: HnswQueryTask): void {
  const job = jobs.get(task.job);
  if (!job) throw new Error(`HNSW job ${task.job} has no index in this thread`);
  const { index, n } = job;
  const want = Math.min(task.want, job.size);
  const width = task.slots * task.want;
  const cand = new Int32Array(task.candidates, 0, n * width);
  index.setEf(Math.max(task.efSearch, want));
  const { fill } = rowFiller(job);
  for (let i = 0; i < n; i++) {
    const found = index.searchKnn(fill(i), want).neighbors;
    const o = i * width + task.slot * task.want;
    for (let t = 0; t < task.want; t++) cand[o + t] = t < found.length ? found[t] : -1;
  }
}

export function hnswRefine(task: HnswRefineTask): void {
  const { n, d, k, distance, width, from, to } = task;
  const points = new Float32Array(task.points, 0, n * d);
  const norms = distance === 'cosine' ? rowNorms(points, n, d) : undefined;
  const cand = new Int32Array(task.candidates, 0, n * width);
  const indices = new Int32Array(task.indices, 0, n * k);
  const distances = new Float32Array(task.distances, 0, n * k);
  const refiner = new CandidateRefiner(points, d, distance, norms, k);
  for (let i = from; i < to; i++) {
    if (refiner.refine(i, cand, i * width, width, k, indices, distances) < k) refiner.scan(i, n, k, indices, distances);
  }
}

export function hnswRelease(id: number): void {
  jobs.delete(id);
}
