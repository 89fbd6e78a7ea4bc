import type { BatchPayload, MlflowRunStatus, OpenRequest, RunRef, WireMetric } from './types.js';

/** The result of opening a run: where it is, and whether an existing run was continued. */
export interface OpenedRun extends RunRef {
  resumed: boolean;
  /** Where the run's artifacts live, as MLflow reports it. */
  artifactUri: string;
}

/**
 * One tracking backend (file store or REST server) as the delivery queue sees
 * it. Every method throws a TrackingError on failure, classified so the queue
 * knows whether to retry, drop the record or stop.
 */
export interface TrackingSink {
  readonly kind: 'file' | 'http';
  /** The tracking URI without credentials. */
  readonly uri: string;
  /**
   * Continue `previous` when it still exists in this store (status back to
   * RUNNING, end time cleared, tags set again); otherwise get or create the
   * experiment and create a new run.
   */
  openRun(request: OpenRequest, previous: RunRef | null, note: (message: string) => void, signal?: AbortSignal): Promise<OpenedRun>;
  logBatch(run: OpenedRun, batch: BatchPayload, signal?: AbortSignal): Promise<void>;
  uploadArtifact(run: OpenedRun, localPath: string, artifactPath: string, signal?: AbortSignal): Promise<void>;
  endRun(run: OpenedRun, status: MlflowRunStatus, endTime: number, signal?: AbortSignal): Promise<void>;
  /** Logged history of one metric, when the sink can tell (used to avoid duplicates after an ambiguous failure). */
  metricHistory?(run: OpenedRun, key: string, signal?: AbortSignal): Promise<WireMetric[]>;
}
