import { TrackingError } from './errors.js';
import type { MlflowFileStore } from './filestore.js';
import type { OpenedRun, TrackingSink } from './sink.js';
import type { BatchPayload, MlflowRunStatus, OpenRequest, RunRef } from './types.js';

/** The delivery queue's view of a local file store: writes are synchronous, so there are no retryable failures. */
export class FileStoreSink implements TrackingSink {
  readonly kind = 'file' as const;
  readonly uri: string;

  /** `contentFilter` rewrites artifact content before it is stored (credential redaction). */
  constructor(
    readonly store: MlflowFileStore,
    private readonly contentFilter?: (data: Buffer) => Buffer,
  ) {
    this.uri = store.uri;
  }

  async openRun(request: OpenRequest, previous: RunRef | null, note: (message: string) => void): Promise<OpenedRun> {
    const store = this.store;
    store.ensureRoot();
    if (previous && previous.uri === this.uri) {
      const found = store.getRun(previous.runId);
      if (found && found.meta.lifecycle_stage !== 'deleted' && !found.experimentDeleted) {
        store.updateRun(previous.runId, { status: 'RUNNING', endTime: null });
        store.setTags(previous.runId, request.tags);
        return { uri: this.uri, experimentId: String(found.meta.experiment_id), runId: previous.runId, resumed: true, artifactUri: found.meta.artifact_uri };
      }
      note(`MLflow run ${previous.runId} ${found ? 'is deleted' : 'is not'} in ${this.uri}; starting a new run`);
    }
    const existing = store.getExperimentByName(request.experiment);
    let experimentId: string;
    if (existing) {
      if (existing.meta.lifecycle_stage === 'deleted') throw deletedExperiment(request.experiment, existing.id, this.uri);
      experimentId = existing.id;
    } else {
      try {
        experimentId = store.createExperiment(request.experiment);
      } catch (e) {
        // Another run created it between our look-up and the lock.
        const again = e instanceof TrackingError && e.errorCode === 'RESOURCE_ALREADY_EXISTS' ? store.getExperimentByName(request.experiment) : null;
        if (!again) throw e;
        if (again.meta.lifecycle_stage === 'deleted') throw deletedExperiment(request.experiment, again.id, this.uri);
        experimentId = again.id;
      }
    }
    const meta = store.createRun(experimentId, request);
    return { uri: this.uri, experimentId, runId: meta.run_id, resumed: false, artifactUri: meta.artifact_uri };
  }

  async logBatch(run: OpenedRun, batch: BatchPayload): Promise<void> {
    if (batch.metrics.length) this.store.logMetrics(run.runId, batch.metrics);
    if (batch.params.length) this.store.logParams(run.runId, batch.params);
    if (batch.tags.length) this.store.setTags(run.runId, batch.tags);
  }

  async uploadArtifact(run: OpenedRun, localPath: string, artifactPath: string): Promise<void> {
    this.store.logArtifact(run.runId, localPath, artifactPath, this.contentFilter);
  }

  async endRun(run: OpenedRun, status: MlflowRunStatus, endTime: number): Promise<void> {
    this.store.updateRun(run.runId, { status, endTime });
  }
}

/** Shared by both sinks: MLflow refuses to log into a deleted experiment. */
export function deletedExperiment(name: string, id: string, uri: string): TrackingError {
  return new TrackingError(`MLflow experiment "${name}" (id ${id}) in ${uri} is deleted`, 'fatal', {
    errorCode: 'EXPERIMENT_DELETED',
    hint: `restore it (mlflow experiments restore --experiment-id ${id}) or set tracking.experiment to another name`,
  });
}
