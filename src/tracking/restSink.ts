import { readFile } from 'node:fs/promises';
import { TrackingError } from './errors.js';
import { deletedExperiment } from './fileSink.js';
import { proxiedArtifactPath, type MlflowExperiment, type MlflowRestClient } from './rest.js';
import type { OpenedRun, TrackingSink } from './sink.js';
import type { BatchPayload, MlflowRunStatus, OpenRequest, RunRef, WireMetric } from './types.js';

/** The delivery queue's view of an MLflow tracking server. */
export class RestSink implements TrackingSink {
  readonly kind = 'http' as const;
  readonly uri: string;
  private readonly artifactUris = new Map<string, string>();

  /** `contentFilter` rewrites artifact content before it is uploaded (credential redaction). */
  constructor(
    readonly client: MlflowRestClient,
    private readonly contentFilter?: (data: Buffer) => Buffer,
  ) {
    this.uri = client.uri;
  }

  async openRun(request: OpenRequest, previous: RunRef | null, note: (message: string) => void, signal?: AbortSignal): Promise<OpenedRun> {
    const client = this.client;
    if (previous && previous.uri === this.uri) {
      const run = await client.getRun(previous.runId, signal);
      if (run && run.info.lifecycle_stage !== 'deleted') {
        await client.updateRun({ runId: previous.runId, status: 'RUNNING' }, signal);
        if (request.tags.length) await client.logBatch(previous.runId, { metrics: [], params: [], tags: request.tags }, signal);
        return this.opened(run.info.experiment_id, previous.runId, run.info.artifact_uri, true);
      }
      note(`MLflow run ${previous.runId} ${run ? 'is deleted' : 'does not exist'} on ${this.uri}; starting a new run`);
    }
    const experimentId = await this.experimentId(request.experiment, signal);
    const run = await client.createRun(
      { experimentId, runName: request.runName, userId: request.userId, startTime: request.startTime, tags: request.tags },
      signal,
    );
    return this.opened(experimentId, run.info.run_id ?? run.info.run_uuid, run.info.artifact_uri, false);
  }

  private opened(experimentId: string, runId: string, artifactUri: string | undefined, resumed: boolean): OpenedRun {
    if (artifactUri) this.artifactUris.set(runId, artifactUri);
    return { uri: this.uri, experimentId: String(experimentId), runId, resumed, artifactUri: artifactUri ?? '' };
  }

  private async experimentId(name: string, signal?: AbortSignal): Promise<string> {
    const check = (e: MlflowExperiment): string => {
      if (e.lifecycle_stage === 'deleted') throw deletedExperiment(name, e.experiment_id, this.uri);
      return String(e.experiment_id);
    };
    const existing = await this.client.getExperimentByName(name, signal);
    if (existing) return check(existing);
    try {
      return await this.client.createExperiment(name, [], signal);
    } catch (e) {
      // Created by another run meanwhile.
      if (!(e instanceof TrackingError && e.errorCode === 'RESOURCE_ALREADY_EXISTS')) throw e;
      const again = await this.client.getExperimentByName(name, signal);
      if (!again) throw e;
      return check(again);
    }
  }

  logBatch(run: OpenedRun, batch: BatchPayload, signal?: AbortSignal): Promise<void> {
    return this.client.logBatch(run.runId, batch, signal);
  }

  async uploadArtifact(run: OpenedRun, localPath: string, artifactPath: string, signal?: AbortSignal): Promise<void> {
    let artifactUri = this.artifactUris.get(run.runId) || run.artifactUri;
    if (!artifactUri) {
      const info = await this.client.getRun(run.runId, signal);
      artifactUri = info?.info.artifact_uri ?? '';
      if (artifactUri) this.artifactUris.set(run.runId, artifactUri);
    }
    if (proxiedArtifactPath(artifactUri) === null) {
      throw new TrackingError(`the server keeps this run's artifacts at "${artifactUri}", which only the server side can write`, 'permanent', {
        errorCode: 'ARTIFACT_URI_UNSUPPORTED',
        hint: 'start the server with artifact proxying (`mlflow server --serve-artifacts`, the default in MLflow 2.x, with a default artifact root of mlflow-artifacts:/) to receive artifacts',
      });
    }
    let body: Buffer;
    try {
      body = await readFile(localPath);
      if (this.contentFilter) body = this.contentFilter(body);
    } catch (e) {
      throw new TrackingError(`cannot read artifact ${localPath}: ${(e as Error).message}`, 'permanent', { errorCode: 'ARTIFACT_MISSING' });
    }
    try {
      await this.client.uploadArtifact(artifactUri, artifactPath, body, signal);
    } catch (e) {
      if (!(e instanceof TrackingError)) throw e;
      // Without a proxy the route is missing (404 page) or disabled (503 naming --serve-artifacts): retrying cannot help.
      if (e.details.errorCode === 'ENDPOINT_NOT_FOUND' || (e.details.status === 503 && /serve-artifacts/.test(e.message))) {
        throw new TrackingError(e.message, 'permanent', { errorCode: 'ARTIFACT_PROXY_UNAVAILABLE', status: e.details.status, hint: 'run the server with --serve-artifacts' });
      }
      throw e;
    }
  }

  async endRun(run: OpenedRun, status: MlflowRunStatus, endTime: number, signal?: AbortSignal): Promise<void> {
    await this.client.updateRun({ runId: run.runId, status, endTime }, signal);
  }

  metricHistory(run: OpenedRun, key: string, signal?: AbortSignal): Promise<WireMetric[]> {
    return this.client.getMetricHistory(run.runId, key, signal);
  }
}
