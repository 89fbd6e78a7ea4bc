export type { Distance, NeighborGraph } from './types.js';
export { truncateGraph, pointDistance, rowNorms } from './types.js';
export { exactNeighbors, type ExactOptions } from './exact.js';
export { hnswNeighbors, loadHnswlib, type HnswOptions } from './hnsw.js';
export { sampledReferences, neighborsWithin, gatherRows, type LocalGraph } from './reference.js';
export { buildGraph, referencePlan, searchOptionsFromConfig, DEFAULT_SEARCH, type NeighborSearchOptions } from './search.js';
