/**
 * clip-backdoor-filter: CLIP pretraining in TensorFlow.js with a backdoor-sample
 * filter. The library never imports the CLI; the CLI is a thin layer over this.
 */
export { resolveConfig, loadConfig, readConfigFile, mergeConfigs, flattenConfig } from './config/load.js';
export type { Config, RawConfig, DataConfig, ModelConfig, TrainConfig, PoisonConfig, FilterConfig, TrackingConfig } from './config/schema.js';
export { selectBackend, currentBackend, type BackendInfo, type BackendName, type BackendRequest } from './backend/select.js';
export { loadSplits } from './data/index.js';
export type { ClipDataset, DatasetSplits, ImageShape, Sample } from './data/types.js';
export { InMemoryDataset } from './data/memory.js';
export { syntheticSplits, SYNTHETIC_CLASSES } from './data/synthetic.js';
export { fashionMnistSplits, FASHION_MNIST_CLASSES } from './data/fashionMnist.js';
export { sampleStream, batchStream } from './data/stream.js';
export { Tokenizer } from './data/tokenizer.js';
export { ClipModel } from './model/clip.js';
export { clipLoss } from './model/loss.js';
export { saveModel, loadModel } from './model/io.js';
export type { ClipArchitecture } from './model/towers.js';
export { Trainer, type TrainerOptions, type TrainResult } from './train/trainer.js';
export { runTraining, setupRun, type RunOptions, type RunSetup } from './train/run.js';
export type { TrainHook, HookContext, BatchInfo, TrainEnd, EmbeddingModel, PoisonTruth } from './train/hooks.js';
export { SampleWeightTable } from './train/weights.js';
export { RunRecorder, type MetricPoint } from './train/recorder.js';
export type { RunSummary, EpochRecord } from './train/summary.js';
export { saveCheckpoint, loadCheckpoint, checkpointPath } from './train/checkpoint.js';
export { evaluateZeroShot, classEmbeddings, zeroShotPredict } from './eval/zeroShot.js';
export { UserError, HookError } from './util/errors.js';
export { Rng } from './util/rng.js';
export { createReporter, silentReporter, type Reporter } from './util/progress.js';
export { runPipeline, standardHookFactories, type PipelineOptions, type HookFactory } from './pipeline.js';
export { backdoorFilter, BackdoorFilter, isRoundEpoch, type FilterSummary, type FilterRound, type FilterOptions, type ReadmissionRecord, type ProbeConcept } from './filter/hook.js';
export { decideWeights, robustZ, robustStats } from './filter/policy.js';
export { scoreEmbeddings, scoreCheckpoint, writeScoreCsv, type ScoreInput, type ScoreReport } from './filter/offline.js';
export { createDetector, detectorOptionsFromConfig, DETECTOR_NAMES, type Detector, type DetectorInput, type DetectorName, type DetectorOptions } from './detectors/index.js';
export { buildGraph, buildGraphAsync, exactNeighbors, hnswNeighbors, closeKnnPool, type NeighborGraph, type Distance } from './neighbors/index.js';
export { auroc, auprc, fprAtTpr, detectionReport, type DetectionReport } from './metrics/detection.js';
export { poisonDataset, createTrigger, triggerTestSet, attackSuccessRate, ATTACKS, type AttackName, type PoisonResult } from './attacks/index.js';
export { mlflowTracking, type MlflowTrackingOptions } from './tracking/index.js';
export { compareRun, readSummary, formatComparisonTable, type RunComparison } from './eval/compare.js';
