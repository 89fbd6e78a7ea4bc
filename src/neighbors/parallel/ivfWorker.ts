import { nearestLists, ownedPoints, searchOwned, trainCentroids } from '../ivf.js';
import { localHeap } from './engine.js';
import type { IvfListsTask, IvfProbeTask, IvfTrainTask } from './protocol.js';

/** The thread side of the parallel IVF search (./ivf.ts): the same steps as ivfNeighbors, on shared memory. */

export function ivfTrain(task: IvfTrainTask): Float32Array {
  const points = new Float32Array(task.points, 0, task.n * task.d);
  return trainCentroids(localHeap(), points, task.n, task.d, task.plan, task.distance, task.seed);
}

export function ivfProbe(task: IvfProbeTask): void {
  const points = new Float32Array(task.points, 0, task.n * task.d);
  nearestLists(localHeap(), points, task.d, task.from, task.to, task.centroids, task.lists, task.probes, task.distance, new Int32Array(task.probeOf, 0, task.n * task.probes));
}

export function ivfLists(task: IvfListsTask): void {
  const { n, d, k } = task;
  const points = new Float32Array(task.points, 0, n * d);
  const indices = new Int32Array(task.indices, 0, n * k);
  const distances = new Float32Array(task.distances, 0, n * k);
  const probeOf = new Int32Array(task.probeOf, 0, n * task.probes);
  searchOwned(localHeap(), points, d, k, task.distance, probeOf, task.probes, task.lists, ownedPoints(n, task.thread, task.threads), indices, distances);
}

