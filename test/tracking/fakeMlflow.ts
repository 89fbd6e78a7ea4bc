/**
 * An in-memory MLflow tracking server on 127.0.0.1 following the REST
 * semantics of MLflow 2.10 that the client relies on (see
 * ../shared/mlflow-filestore.md): JSON errors `{error_code, message}` with
 * 400/404, RESOURCE_ALREADY_EXISTS on a duplicate experiment, log-batch
 * limits, no null metric values, no changing a param, artifact proxy PUTs.
 * Its state survives stop()/start(), so a test can take it down and bring
 * it back on the same port.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeMetric {
  key: string;
  value: number | string;
  timestamp: number;
  step: number;
}

export interface FakeRun {
  info: {
    run_id: string;
    run_uuid: string;
    run_name: string;
    experiment_id: string;
    user_id: string;
    status: string;
    start_time: number;
    end_time?: number;
    artifact_uri: string;
    lifecycle_stage: string;
  };
  metrics: Map<string, FakeMetric[]>;
  params: Map<string, string>;
  tags: Map<string, string>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  rawBody: Buffer;
  body: unknown;
}

/** A canned answer for a matching request; `after` = the request is processed first, then this answer replaces the real one. */
export interface Fault {
  endpoint: string;
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  after?: boolean;
  /** Answer this late (ms). */
  delayMs?: number;
}

const NON_FINITE = new Set(['NaN', 'Infinity', '-Infinity']);
const KEY = /^[/\p{L}\p{N}_.\- ]*$/u;

/** Flask answers unknown routes with an HTML 404 page, not MLflow's JSON. */
class NoRoute extends Error {}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class FakeMlflow {
  readonly experiments = new Map<string, { experiment_id: string; name: string; lifecycle_stage: string; artifact_location: string }>();
  readonly runs = new Map<string, FakeRun>();
  readonly artifacts = new Map<string, Buffer>();
  readonly requests: RecordedRequest[] = [];
  readonly faults: Fault[] = [];
  /** Expected Authorization header; requests without it get 401 (as behind MLflow's basic-auth app). */
  auth: string | null = null;
  /** Metric keys this server refuses (400 INVALID_PARAMETER_VALUE), to provoke a permanent rejection. */
  readonly rejectKeys = new Set<string>();
  /** Artifact root for new runs (`mlflow-artifacts:` = the server proxies artifacts). */
  artifactRoot = 'mlflow-artifacts:';
  port = 0;
  private server: Server | null = null;
  private nextExperiment = 1;
  private nextRun = 1;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(port = this.port): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Close the listener and every open connection: clients now get ECONNREFUSED. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  run(runId: string): FakeRun {
    const r = this.runs.get(runId);
    if (!r) throw new Error(`no run ${runId}`);
    return r;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const rawBody = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://x');
    let body: unknown = null;
    if (req.headers['content-type']?.includes('json') && rawBody.length) {
      try {
        body = JSON.parse(rawBody.toString('utf8'));
      } catch {
        body = undefined;
      }
    }
    this.requests.push({ method: req.method ?? '', path: url.pathname, query: url.searchParams, headers: req.headers, rawBody, body });
    const endpoint = url.pathname.replace(/^\/api\/2\.0\/mlflow\//, '').replace(/^\/api\/2\.0\/mlflow-artifacts\/artifacts\/.*/, 'artifacts-put');
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
      const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
      res.writeHead(status, { 'Content-Type': typeof payload === 'string' ? 'text/html' : 'application/json', ...headers });
      res.end(text);
    };
    if (this.auth && req.headers.authorization !== this.auth) {
      send(401, 'You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html on how to authenticate.', {
        'WWW-Authenticate': 'Basic realm="mlflow"',
      });
      return;
    }
    const faultIndex = this.faults.findIndex((f) => f.endpoint === endpoint);
    const fault = faultIndex >= 0 ? this.faults.splice(faultIndex, 1)[0] : null;
    const delay = (): Promise<unknown> => new Promise((r) => setTimeout(r, fault?.delayMs ?? 0));
    if (fault?.delayMs && !fault.after) await delay();
    if (fault && !fault.after) {
      send(fault.status ?? 500, fault.body ?? { error_code: 'INTERNAL_ERROR', message: 'injected' }, fault.headers);
      return;
    }
    let status = 200;
    let answer: unknown;
    try {
      answer = this.route(req.method ?? 'GET', endpoint, url, body, rawBody);
    } catch (e) {
      if (e instanceof NoRoute) {
        send(404, '<!doctype html><title>404 Not Found</title><h1>Not Found</h1><p>The requested URL was not found on the server.</p>');
        return;
      }
      if (!(e instanceof ApiError)) throw e;
      status = e.status;
      answer = { error_code: e.code, message: e.message };
    }
    if (fault?.after) {
      // Applied, then the answer is late or lost: the client cannot tell whether it worked.
      if (fault.delayMs) await delay();
      if (res.destroyed) return;
      if (fault.status === undefined) send(status, answer);
      else send(fault.status, fault.body ?? { error_code: 'INTERNAL_ERROR', message: 'injected' }, fault.headers);
      return;
    }
    send(status, answer);
  }

  private route(method: string, endpoint: string, url: URL, body: unknown, rawBody: Buffer): unknown {
    const b = (body ?? {}) as Record<string, unknown>;
    if (body === undefined) throw new ApiError(400, 'MALFORMED_REQUEST', 'Malformed request body');
    switch (`${method} ${endpoint}`) {
      case 'GET experiments/get-by-name': {
        const name = url.searchParams.get('experiment_name');
        const e = [...this.experiments.values()].find((x) => x.name === name);
        if (!e) throw new ApiError(404, 'RESOURCE_DOES_NOT_EXIST', `Could not find experiment with name '${name}'`);
        return { experiment: e };
      }
      case 'POST experiments/create': {
        const name = String(b.name ?? '');
        if (!name) throw new ApiError(400, 'INVALID_PARAMETER_VALUE', "Missing value for required parameter 'name'.");
        if ([...this.experiments.values()].some((x) => x.name === name)) {
          throw new ApiError(400, 'RESOURCE_ALREADY_EXISTS', `Experiment(name=${name}) already exists.`);
        }
        const id = String(this.nextExperiment++);
        this.experiments.set(id, { experiment_id: id, name, lifecycle_stage: 'active', artifact_location: `${this.artifactRoot}/${id}` });
        return { experiment_id: id };
      }
      case 'POST runs/create': {
        const exp = this.experiments.get(String(b.experiment_id));
        if (!exp) throw new ApiError(404, 'RESOURCE_DOES_NOT_EXIST', `No Experiment with id=${b.experiment_id} exists`);
        if (exp.lifecycle_stage !== 'active') throw new ApiError(400, 'INVALID_PARAMETER_VALUE', 'The experiment must be in the active state.');
        if (typeof b.start_time !== 'number') throw new ApiError(400, 'INVALID_PARAMETER_VALUE', 'start_time must be an integer');
        const id = (this.nextRun++).toString(16).padStart(32, '0');
        const run: FakeRun = {
          info: {
            run_id: id,
            run_uuid: id,
            run_name: String(b.run_name ?? 'generated-name'),
            experiment_id: exp.experiment_id,
            user_id: String(b.user_id ?? ''),
            status: 'RUNNING',
            start_time: b.start_time,
            artifact_uri: `${exp.artifact_location}/${id}/artifacts`,
            lifecycle_stage: 'active',
          },
          metrics: new Map(),
          params: new Map(),
          tags: new Map(),
        };
        for (const t of (b.tags ?? []) as { key: string; value: string }[]) this.checkKey(t.key, 'tag'), run.tags.set(t.key, t.value);
        this.runs.set(id, run);
        return { run: this.runJson(run) };
      }
      case 'GET runs/get':
        return { run: this.runJson(this.find(url.searchParams.get('run_id'))) };
      case 'POST runs/update': {
        const run = this.find(b.run_id);
        if (typeof b.status === 'string') run.info.status = b.status;
        if (typeof b.end_time === 'number') run.info.end_time = b.end_time;
        else delete run.info.end_time;
        return { run_info: run.info };
      }
      case 'POST runs/set-tag': {
        const run = this.active(b.run_id);
        this.checkKey(String(b.key), 'tag');
        run.tags.set(String(b.key), String(b.value));
        return {};
      }
      case 'POST runs/log-batch':
        return this.logBatch(b);
      case 'GET metrics/get-history': {
        const run = this.find(url.searchParams.get('run_id'));
        return { metrics: run.metrics.get(url.searchParams.get('metric_key') ?? '') ?? [] };
      }
      case 'PUT artifacts-put': {
        const path = decodeURIComponent(url.pathname.replace(/^\/api\/2\.0\/mlflow-artifacts\/artifacts\//, ''));
        this.artifacts.set(path, rawBody);
        return {};
      }
      default:
        throw new NoRoute();
    }
  }

  private logBatch(b: Record<string, unknown>): unknown {
    const run = this.active(b.run_id);
    const metrics = (b.metrics ?? []) as FakeMetric[];
    const params = (b.params ?? []) as { key: string; value: string }[];
    const tags = (b.tags ?? []) as { key: string; value: string }[];
    if (metrics.length > 1000) throw new ApiError(400, 'INVALID_PARAMETER_VALUE', `A batch logging request can contain at most 1000 metrics. Got ${metrics.length} metrics.`);
    if (params.length > 100) throw new ApiError(400, 'INVALID_PARAMETER_VALUE', `A batch logging request can contain at most 100 params. Got ${params.length} params.`);
    if (tags.length > 100) throw new ApiError(400, 'INVALID_PARAMETER_VALUE', `A batch logging request can contain at most 100 tags. Got ${tags.length} tags.`);
    if (metrics.length + params.length + tags.length > 1000) throw new ApiError(400, 'INVALID_PARAMETER_VALUE', 'A batch logging request can contain at most 1000 entities.');
    // Validate everything first: MLflow's SQL store applies a batch all or nothing.
    for (const m of metrics) {
      this.checkKey(m.key, 'metric');
      if (this.rejectKeys.has(m.key)) throw new ApiError(400, 'INVALID_PARAMETER_VALUE', `Metric '${m.key}' is refused by this server`);
      if (m.value === null || m.value === undefined || (typeof m.value === 'string' && !NON_FINITE.has(m.value)) || (typeof m.value !== 'number' && typeof m.value !== 'string')) {
        throw new ApiError(400, 'INVALID_PARAMETER_VALUE', `Got invalid value ${JSON.stringify(m.value)} for metric '${m.key}' (timestamp=${m.timestamp}). Please specify value as a valid double (64-bit floating point)`);
      }
      if (typeof m.timestamp !== 'number' || !Number.isInteger(m.timestamp)) {
        throw new ApiError(400, 'INVALID_PARAMETER_VALUE', `Missing value for required parameter 'metrics[0].timestamp'.`);
      }
    }
    for (const p of params) {
      this.checkKey(p.key, 'param');
      const old = run.params.get(p.key);
      if (old !== undefined && old !== p.value) {
        throw new ApiError(
          400,
          'INVALID_PARAMETER_VALUE',
          `Changing param values is not allowed. Param with key='${p.key}' was already logged with value='${old}' for run ID='${run.info.run_id}'. Attempted logging new value '${p.value}'.`,
        );
      }
      if (p.value.length > 6000) throw new ApiError(400, 'INVALID_PARAMETER_VALUE', `Param value '${p.value.slice(0, 20)}...' had length ${p.value.length}, which exceeded length limit of 6000`);
    }
    for (const t of tags) {
      this.checkKey(t.key, 'tag');
      if (t.value.length > 5000) throw new ApiError(400, 'INVALID_PARAMETER_VALUE', `Tag value too long`);
    }
    for (const m of metrics) {
      const list = run.metrics.get(m.key) ?? [];
      list.push({ key: m.key, value: m.value, timestamp: m.timestamp, step: m.step ?? 0 });
      run.metrics.set(m.key, list);
    }
    for (const p of params) run.params.set(p.key, p.value);
    for (const t of tags) {
      run.tags.set(t.key, t.value);
      if (t.key === 'mlflow.runName') run.info.run_name = t.value;
    }
    return {};
  }

  private checkKey(key: string, kind: string): void {
    if (typeof key !== 'string' || !KEY.test(key) || key.length > 250 || key.startsWith('/') || key.split('/').some((s) => s === '' || s === '.' || s === '..')) {
      throw new ApiError(400, 'INVALID_PARAMETER_VALUE', `Invalid ${kind} name: '${key}'.`);
    }
  }

  private find(runId: unknown): FakeRun {
    const run = this.runs.get(String(runId));
    if (!run) throw new ApiError(404, 'RESOURCE_DOES_NOT_EXIST', `Run '${runId}' not found`);
    return run;
  }

  private active(runId: unknown): FakeRun {
    const run = this.find(runId);
    if (run.info.lifecycle_stage !== 'active') {
      throw new ApiError(400, 'INVALID_PARAMETER_VALUE', `The run ${runId} must be in the 'active' state. Current state is ${run.info.lifecycle_stage}.`);
    }
    return run;
  }

  private runJson(run: FakeRun): unknown {
    return {
      info: run.info,
      data: {
        params: [...run.params].map(([key, value]) => ({ key, value })),
        tags: [...run.tags].map(([key, value]) => ({ key, value })),
        metrics: [...run.metrics.values()].map((l) => l[l.length - 1]),
      },
    };
  }
}
