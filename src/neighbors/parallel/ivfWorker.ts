import { assignRange, searchList, trainCentroids } from '../ivf.js';
import { localHeap } from './engine.js';
import type { IvfAssignTask, IvfListsTask, IvfTrainTask } from './protocol.js';

/** The thread side of the parallel IVF search (./ivf.ts): the same steps as ivfNeighbors, on shared memory. */

export function ivfTrain(task: IvfTrainTask): Float32Array {
  const points = new Float32Array(task.points, 0, task.n * task.d);
  return trainCentroids(localHeap(), points, task.n, task.d, task.plan, task.distance, task.seed);
}

export function ivfAssign(task: IvfAssignTask): void {
  const points = new Float32Array(task.points, 0, task.n * task.d);
  assignRange(localHeap(), points, task.d, task.from, task.to, task.centroids, task.lists, task.distance, new Int32Array(task.assign, 0, task.n));
}

export function ivfLists(task: IvfListsTask): void {
  const { n, d, k } = task;
  const points = new Float32Array(task.points, 0, n * d);
  const order = new Int32Array(task.order);
  const start = new Int32Array(task.start);
  const probes = new Int32Array(task.probes);
  const control = new Int32Array(task.control);
  const indices = new Int32Array(task.indices, 0, n * k);
  const distances = new Float32Array(task.distances, 0, n * k);
  const lists = start.length - 1;
  const heap = localHeap();
  for (;;) {
    const c = Atomics.add(control, 0, 1);
    if (c >= lists) break;
    searchList(heap, points, d, k, task.distance, c, order, start, probes, task.probeCount, indices, distances);
  }
}
