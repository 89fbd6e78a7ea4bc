import { TrackingError } from './errors.js';
import { fromWireValue, toWireValue } from './keys.js';
import { authorizationHeader, makeRedactor, resolveTrackingTarget, type Redactor } from './uri.js';
import { MLFLOW_LIMITS, type BatchPayload, type KeyValue, type MlflowRunStatus, type WireMetric, type WireValue } from './types.js';

/**
 * A small typed client for MLflow's REST API 2.0 over the global `fetch`.
 * Every failure is a TrackingError classified for the delivery queue:
 * outages, timeouts, 5xx and 429 are retryable; 401/403 are fatal; other 4xx
 * carry MLflow's `error_code` and message and are permanent. Credentials
 * only ever go into the Authorization header, never into a URL or a message.
 */

export interface MlflowExperiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage: 'active' | 'deleted' | string;
  creation_time?: number;
  last_update_time?: number;
}

export interface MlflowRunInfo {
  run_id: string;
  run_uuid?: string;
  run_name?: string;
  experiment_id: string;
  user_id?: string;
  status: MlflowRunStatus;
  start_time?: number;
  end_time?: number;
  artifact_uri?: string;
  lifecycle_stage: 'active' | 'deleted' | string;
}

export interface MlflowRun {
  info: MlflowRunInfo;
  data: { metrics?: WireMetric[]; params?: KeyValue[]; tags?: KeyValue[] };
}

export interface RestClientOptions {
  /** `http(s)://[user:pass@]host[:port][/prefix]` */
  uri: string;
  /** MLFLOW_TRACKING_USERNAME / _PASSWORD / _TOKEN are read from here (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
  /** For tests; default the global fetch. */
  fetch?: typeof fetch;
  /** Applied to every error message (default: redacts the credentials of `env` and `uri`). */
  redact?: Redactor;
}

interface RequestOptions {
  query?: Record<string, string>;
  body?: unknown;
  signal?: AbortSignal;
}

/** Network error codes that mean the request never reached the server. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** Split a batch into `runs/log-batch` calls within MLflow's limits (order kept: metrics, then params, then tags). */
export function chunkBatch(batch: BatchPayload): BatchPayload[] {
  const out: BatchPayload[] = [];
  let cur: BatchPayload = { metrics: [], params: [], tags: [] };
  const size = (b: BatchPayload): number => b.metrics.length + b.params.length + b.tags.length;
  const push = (kind: 'metrics' | 'params' | 'tags', item: WireMetric | KeyValue, limit: number): void => {
    if ((cur[kind] as unknown[]).length >= limit || size(cur) >= MLFLOW_LIMITS.entitiesPerBatch) {
      out.push(cur);
      cur = { metrics: [], params: [], tags: [] };
    }
    (cur[kind] as unknown[]).push(item);
  };
  for (const m of batch.metrics) push('metrics', m, MLFLOW_LIMITS.metricsPerBatch);
  for (const p of batch.params) push('params', p, MLFLOW_LIMITS.paramsPerBatch);
  for (const t of batch.tags) push('tags', t, MLFLOW_LIMITS.tagsPerBatch);
  if (size(cur) > 0) out.push(cur);
  return out;
}

/** A metric as it goes into a request body: non-finite values as strings, integer time and step. */
function wireMetric(m: WireMetric): WireMetric {
  const value: WireValue = typeof m.value === 'number' ? toWireValue(m.value) : m.value;
  return { key: m.key, value, timestamp: Math.round(m.timestamp), step: Math.round(m.step) };
}

export class MlflowRestClient {
  /** Base URL without credentials. */
  readonly uri: string;
  private readonly baseUrl: string;
  private readonly auth: string | null;
  private readonly timeoutMs: number;
  private readonly fetchFn: typeof fetch;
  private readonly redact: Redactor;

  constructor(options: RestClientOptions) {
    const env = options.env ?? process.env;
    const target = resolveTrackingTarget(options.uri);
    if (target.kind !== 'http') throw new TypeError('MlflowRestClient needs an http(s) URI');
    this.uri = target.uri;
    this.baseUrl = target.baseUrl;
    this.auth = authorizationHeader(env, target.uriCredentials);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.fetchFn = options.fetch ?? globalThis.fetch;
    this.redact = options.redact ?? makeRedactor(env, [options.uri]);
  }

  /** One REST call to `/api/2.0/mlflow/<endpoint>`; resolves to the parsed JSON answer. */
  async call<T>(method: 'GET' | 'POST', endpoint: string, options: RequestOptions = {}): Promise<T> {
    let url = `${this.baseUrl}/api/2.0/mlflow/${endpoint}`;
    if (options.query) url += `?${new URLSearchParams(options.query).toString()}`;
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const text = await this.send(method, url, endpoint, body, 'application/json', options.signal);
    if (!text.trim()) return {} as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new TrackingError(this.redact(`MLflow ${endpoint}: the answer is not JSON (is ${this.uri} an MLflow tracking server?)`), 'fatal', {
        errorCode: 'BAD_RESPONSE',
      });
    }
  }

  private async send(method: string, url: string, what: string, body: string | Uint8Array | undefined, contentType: string, signal?: AbortSignal): Promise<string> {
    const headers: Record<string, string> = { 'User-Agent': 'clip-backdoor-filter' };
    if (body !== undefined) headers['Content-Type'] = contentType;
    if (this.auth) headers.Authorization = this.auth;
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let response: Response;
    let text: string;
    try {
      response = await this.fetchFn(url, { method, headers, body, signal: combined });
      text = await response.text();
    } catch (e) {
      throw this.networkError(what, e, timeout.aborted);
    }
    if (response.ok) return text;
    throw this.httpError(what, response, text);
  }

  private networkError(what: string, e: unknown, timedOut: boolean): TrackingError {
    if (timedOut) {
      return new TrackingError(`MLflow ${what}: no answer from ${this.uri} within ${this.timeoutMs} ms`, 'retryable', { errorCode: 'TIMEOUT', ambiguous: true });
    }
    const err = e as Error & { cause?: { code?: string; message?: string } };
    if (err?.name === 'AbortError') {
      return new TrackingError(`MLflow ${what}: request to ${this.uri} cancelled`, 'retryable', { errorCode: 'ABORTED', ambiguous: true });
    }
    const code = err?.cause?.code ?? (err as NodeJS.ErrnoException)?.code ?? 'NETWORK';
    const reason = err?.cause?.message ?? err?.message ?? String(e);
    return new TrackingError(this.redact(`MLflow ${what}: cannot reach ${this.uri} (${code}: ${reason})`), 'retryable', {
      errorCode: code,
      ambiguous: !NOT_SENT_CODES.has(code),
    });
  }

  private httpError(what: string, response: Response, text: string): TrackingError {
    const status = response.status;
    let errorCode: string | undefined;
    let message: string | undefined;
    try {
      const parsed = JSON.parse(text) as { error_code?: unknown; message?: unknown };
      if (typeof parsed.error_code === 'string') errorCode = parsed.error_code;
      if (typeof parsed.message === 'string') message = parsed.message;
    } catch {
      /* not MLflow's JSON error: an HTML page from a proxy or a 404 route */
    }
    const detail = errorCode ? `${errorCode}: ${message ?? ''}` : text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200);
    const msg = this.redact(`MLflow ${what} failed with HTTP ${status}${detail ? ` ${detail}` : ''}`);
    const retryAfter = Number(response.headers.get('retry-after'));
    const retryAfterSeconds = Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : undefined;
    if (status === 429 || status === 408) return new TrackingError(msg, 'retryable', { status, errorCode: errorCode ?? `HTTP_${status}`, retryAfterSeconds });
    if (status >= 500) {
      return new TrackingError(msg, 'retryable', { status, errorCode: errorCode ?? `HTTP_${status}`, ambiguous: status !== 503, retryAfterSeconds });
    }
    if (status === 401 || status === 403) {
      return new TrackingError(msg, 'fatal', {
        status,
        errorCode: errorCode ?? (status === 401 ? 'UNAUTHENTICATED' : 'PERMISSION_DENIED'),
        hint: 'set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (basic auth) or MLFLOW_TRACKING_TOKEN (bearer) for this server',
      });
    }
    if (status === 404 && !errorCode) {
      return new TrackingError(msg, 'fatal', { status, errorCode: 'ENDPOINT_NOT_FOUND', hint: `check that ${this.uri} is an MLflow 2.x tracking server (tracking.uri / MLFLOW_TRACKING_URI)` });
    }
    return new TrackingError(msg, 'permanent', { status, errorCode: errorCode ?? `HTTP_${status}` });
  }

  /** `experiments/get-by-name`; null when there is none (RESOURCE_DOES_NOT_EXIST). */
  async getExperimentByName(name: string, signal?: AbortSignal): Promise<MlflowExperiment | null> {
    try {
      const res = await this.call<{ experiment: MlflowExperiment }>('GET', 'experiments/get-by-name', { query: { experiment_name: name }, signal });
      return res.experiment ?? null;
    } catch (e) {
      if (e instanceof TrackingError && e.errorCode === 'RESOURCE_DOES_NOT_EXIST') return null;
      throw e;
    }
  }

  /** `experiments/create`; resolves to the new experiment id. */
  async createExperiment(name: string, tags: readonly KeyValue[] = [], signal?: AbortSignal): Promise<string> {
    const res = await this.call<{ experiment_id: string }>('POST', 'experiments/create', { body: { name, tags }, signal });
    return String(res.experiment_id);
  }

  /** `runs/create` */
  async createRun(
    request: { experimentId: string; runName?: string; userId?: string; startTime: number; tags?: readonly KeyValue[] },
    signal?: AbortSignal,
  ): Promise<MlflowRun> {
    const body: Record<string, unknown> = {
      experiment_id: request.experimentId,
      start_time: Math.round(request.startTime),
      tags: request.tags ?? [],
    };
    if (request.runName !== undefined) body.run_name = request.runName;
    if (request.userId !== undefined) body.user_id = request.userId;
    const res = await this.call<{ run: MlflowRun }>('POST', 'runs/create', { body, signal });
    return res.run;
  }

  /** `runs/get`; null when the server has no such run. */
  async getRun(runId: string, signal?: AbortSignal): Promise<MlflowRun | null> {
    try {
      const res = await this.call<{ run: MlflowRun }>('GET', 'runs/get', { query: { run_id: runId }, signal });
      return res.run ?? null;
    } catch (e) {
      if (e instanceof TrackingError && e.errorCode === 'RESOURCE_DOES_NOT_EXIST') return null;
      throw e;
    }
  }

  /** `runs/update`: status and end time (omit the end time when setting RUNNING again). */
  async updateRun(request: { runId: string; status: MlflowRunStatus; endTime?: number; runName?: string }, signal?: AbortSignal): Promise<MlflowRunInfo> {
    const body: Record<string, unknown> = { run_id: request.runId, run_uuid: request.runId, status: request.status };
    if (request.endTime !== undefined) body.end_time = Math.round(request.endTime);
    if (request.runName !== undefined) body.run_name = request.runName;
    const res = await this.call<{ run_info: MlflowRunInfo }>('POST', 'runs/update', { body, signal });
    return res.run_info;
  }

  /** `runs/log-batch`, split into as many calls as MLflow's limits need. */
  async logBatch(runId: string, batch: BatchPayload, signal?: AbortSignal): Promise<void> {
    for (const chunk of chunkBatch(batch)) {
      await this.call('POST', 'runs/log-batch', {
        body: { run_id: runId, metrics: chunk.metrics.map(wireMetric), params: chunk.params, tags: chunk.tags },
        signal,
      });
    }
  }

  /** `runs/set-tag` */
  async setTag(runId: string, key: string, value: string, signal?: AbortSignal): Promise<void> {
    await this.call('POST', 'runs/set-tag', { body: { run_id: runId, run_uuid: runId, key, value }, signal });
  }

  /** `metrics/get-history` (MLflow 2.10 does not page it). */
  async getMetricHistory(runId: string, key: string, signal?: AbortSignal): Promise<WireMetric[]> {
    const res = await this.call<{ metrics?: { key: string; value: number | string; timestamp: number | string; step?: number | string }[] }>(
      'GET',
      'metrics/get-history',
      { query: { run_id: runId, metric_key: key }, signal },
    );
    return (res.metrics ?? []).map((m) => ({
      key: m.key,
      value: toWireValue(fromWireValue(m.value as WireValue)),
      timestamp: Number(m.timestamp),
      step: Number(m.step ?? 0),
    }));
  }

  /**
   * Upload one file through the server's artifact proxy
   * (`PUT /api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts/<path>`).
   * Only `mlflow-artifacts:` artifact URIs can be written this way.
   */
  async uploadArtifact(artifactUri: string, artifactPath: string, body: Uint8Array, signal?: AbortSignal): Promise<void> {
    const base = proxiedArtifactPath(artifactUri);
    if (base === null) {
      throw new TrackingError(`artifact URI ${artifactUri} is not served by the tracking server's artifact proxy`, 'permanent', { errorCode: 'ARTIFACT_URI_UNSUPPORTED' });
    }
    const path = [...base.split('/'), ...artifactPath.split('/')].filter((s) => s !== '').map(encodeURIComponent).join('/');
    const url = `${this.baseUrl}/api/2.0/mlflow-artifacts/artifacts/${path}`;
    await this.send('PUT', url, `artifact upload of ${artifactPath}`, body, 'application/octet-stream', signal);
  }
}

/** `mlflow-artifacts:/0/abc/artifacts` or `mlflow-artifacts://host/0/abc/artifacts` into `0/abc/artifacts`; null for other schemes. */
export function proxiedArtifactPath(artifactUri: string): string | null {
  if (!artifactUri.startsWith('mlflow-artifacts:')) return null;
  let rest = artifactUri.slice('mlflow-artifacts:'.length);
  if (rest.startsWith('//')) {
    const slash = rest.indexOf('/', 2);
    rest = slash >= 0 ? rest.slice(slash) : '';
  }
  return decodeURIComponent(rest).replace(/^\/+/, '').replace(/\/+$/, '');
}
