/**
 * Wire-level shapes shared by the file store, the REST client, the spool and
 * the delivery queue. They follow MLflow's REST/proto names so that a record
 * in the spool is exactly what goes out in `runs/log-batch`.
 */

/** MLflow's limits (`mlflow/utils/validation.py`, 2.10). */
export const MLFLOW_LIMITS = {
  keyLength: 250,
  paramValueLength: 6000,
  tagValueLength: 5000,
  metricsPerBatch: 1000,
  paramsPerBatch: 100,
  tagsPerBatch: 100,
  entitiesPerBatch: 1000,
} as const;

/**
 * A metric value as MLflow's JSON API accepts it: a finite number, or one of
 * the strings protobuf's JSON mapping uses for non-finite doubles
 * (`JSON.stringify(NaN)` would give `null`, which the server rejects).
 */
export type WireValue = number | 'NaN' | 'Infinity' | '-Infinity';

export interface WireMetric {
  key: string;
  value: WireValue;
  /** Integer milliseconds since the epoch. */
  timestamp: number;
  /** Integer step. */
  step: number;
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface BatchPayload {
  metrics: WireMetric[];
  params: KeyValue[];
  tags: KeyValue[];
}

export type MlflowRunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';

/** `enum RunStatus` of `service.proto`: the integer the file store writes into `meta.yaml`. */
export const RUN_STATUS_CODE: Readonly<Record<MlflowRunStatus, number>> = {
  RUNNING: 1,
  SCHEDULED: 2,
  FINISHED: 3,
  FAILED: 4,
  KILLED: 5,
};

/** Where this output directory's MLflow run lives (persisted as `<out>/mlflow-run.json`). */
export interface RunRef {
  /** Tracking URI without credentials. */
  uri: string;
  experimentId: string;
  runId: string;
}

/** What is needed to create (or reopen) the run of an output directory. */
export interface OpenRequest {
  experiment: string;
  runName: string;
  userId: string;
  /** Milliseconds since the epoch. */
  startTime: number;
  tags: KeyValue[];
}
