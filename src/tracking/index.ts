/**
 * Experiment tracking to MLflow.
 *
 * {@link mlflowTracking} is a TrainHook (name `mlflow`) that records a run in
 * MLflow. Where it goes:
 *
 * - default: a local MLflow **file store** `./mlruns` (resolved to an
 *   absolute path), written in MLflow 2.x's own on-disk format, so that
 *   `mlflow ui --backend-store-uri ./mlruns` shows it with no server;
 * - `tracking.uri` / `$MLFLOW_TRACKING_URI` = `http(s)://host:port`: an
 *   MLflow **tracking server** through its REST API 2.0. Credentials come
 *   from MLFLOW_TRACKING_USERNAME + MLFLOW_TRACKING_PASSWORD (basic),
 *   MLFLOW_TRACKING_TOKEN (bearer) or `user:pass@` in the URI; they never
 *   appear in messages, params, tags, `mlflow-run.json` or the spool.
 *
 * What it logs: params = the resolved config flattened (`model.embedDim`,
 * `filter.k`, ...); every metric of the run's RunRecorder with its step
 * (`train/loss`, `eval/clean_accuracy`, `filter/auroc`, ...); tags `dataset`,
 * `attack`, `detector`, `backend`, `tracking.tags`, and MLflow's system tags
 * (`mlflow.runName`, `mlflow.source.name`, `mlflow.source.type`,
 * `mlflow.user`, `mlflow.source.git.commit` inside a git repository);
 * artifacts = every file registered with the recorder, `summary.json`, the
 * resolved config as `config.json`, and `checkpoints/last/` when
 * `tracking.logModel` is on. The run ends FINISHED, FAILED or KILLED.
 *
 * Nothing is lost when the server is down, slow or overloaded: training
 * never waits on the network; records queue in order, are retried with
 * backoff and are kept in `<out>/mlflow-spool.jsonl` until delivered. Those
 * still pending when the run ends stay there for {@link syncSpool}
 * (`clip-backdoor-filter mlflow-sync <out>`). `<out>/mlflow-run.json`
 * remembers the run, so a resumed run continues the same MLflow run.
 */
export { mlflowTracking, runTags, CONFIG_FILE, type MlflowTrackingOptions } from './hook.js';
export { syncSpool, type SyncSpoolOptions, type SyncResult } from './sync.js';
export { MlflowRestClient, chunkBatch, proxiedArtifactPath, type RestClientOptions, type MlflowExperiment, type MlflowRun, type MlflowRunInfo } from './rest.js';
export { MlflowFileStore, toYaml, fromYaml, type ExperimentMeta, type RunMeta } from './filestore.js';
export { TrackingError, type FailureKind } from './errors.js';
export { keyProblem, sanitizeKey, truncateValue, toWireValue, fileStoreValue, TRUNCATION_MARKER } from './keys.js';
export { pickTrackingUri, resolveTrackingTarget, makeRedactor, stripUrlCredentials, DEFAULT_TRACKING_URI, type TrackingTarget } from './uri.js';
export { readSpool, SPOOL_FILE, type SpoolRecord, type LoadedSpool } from './spool.js';
export { readRunFile, RUN_FILE } from './runFile.js';
export { MLFLOW_LIMITS, RUN_STATUS_CODE, type WireMetric, type WireValue, type KeyValue, type BatchPayload, type MlflowRunStatus, type RunRef } from './types.js';
