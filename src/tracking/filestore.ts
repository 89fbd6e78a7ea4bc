import { randomBytes, randomUUID } from 'node:crypto';
import {
  appendFileSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { TrackingError } from './errors.js';
import { fileStoreValue, keyProblem, toInteger } from './keys.js';
import { RUN_STATUS_CODE, type KeyValue, type MlflowRunStatus, type WireMetric } from './types.js';

/**
 * Writer for MLflow's file store (`mlruns/`), following what MLflow 2.10
 * reads (see ../shared/mlflow-filestore.md): experiment and run `meta.yaml`
 * with every key MLflow writes, one file per param/tag without a trailing
 * newline, metric lines `<ts> <value> <step>\n`, nested directories for keys
 * with `/`, artifacts under the run's `artifacts/`.
 */

/** `meta.yaml` of an experiment. */
export interface ExperimentMeta {
  artifact_location: string;
  creation_time: number | null;
  experiment_id: string;
  last_update_time: number | null;
  lifecycle_stage: 'active' | 'deleted';
  name: string;
}

/** `meta.yaml` of a run, exactly the keys `_make_persisted_run_info_dict` writes. */
export interface RunMeta {
  artifact_uri: string;
  end_time: number | null;
  entry_point_name: string;
  experiment_id: string;
  lifecycle_stage: 'active' | 'deleted';
  run_id: string;
  run_name: string;
  run_uuid: string;
  source_name: string;
  source_type: number;
  source_version: string;
  start_time: number;
  status: number;
  tags: never[];
  user_id: string;
  deleted_time: number | null;
}

/** MLflow's `SourceType.LOCAL`. */
const SOURCE_TYPE_LOCAL = 4;
/** Directories of `mlruns/` that are not experiments. */
const NON_EXPERIMENT_DIRS = new Set(['.trash', 'models']);
/** Directories of an experiment that are not runs. */
const NON_RUN_DIRS = new Set(['tags', 'datasets']);
const EXPERIMENT_ID = /^[a-zA-Z0-9][\w-]{0,63}$/;
const LOCK_FILE = '.clip-backdoor-filter.lock';

/**
 * PyYAML reads YAML 1.1 (where `yes`, `on`, `2024-01-01` are not strings), so
 * every string is written single-quoted: whatever the name, it reads back as
 * the same string. Keys sorted and no line folding, like MLflow's dump.
 */
export function toYaml(value: object): string {
  return stringifyYaml(value, {
    version: '1.1',
    sortMapEntries: true,
    lineWidth: 0,
    singleQuote: true,
    defaultStringType: 'QUOTE_SINGLE',
    defaultKeyType: 'PLAIN',
  });
}

/**
 * Parse YAML the way PyYAML's safe loader resolves scalars (YAML 1.1).
 * Integers beyond 2^53 (MLflow's random 18-digit experiment ids, written
 * unquoted by old versions) stay exact as bigint; the rest become numbers.
 */
export function fromYaml(text: string): unknown {
  return smallIntsToNumbers(parseYaml(text, { version: '1.1', intAsBigInt: true }));
}

function smallIntsToNumbers(value: unknown): unknown {
  if (typeof value === 'bigint') return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  if (Array.isArray(value)) return value.map(smallIntsToNumbers);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, smallIntsToNumbers(v)]));
  return value;
}

const tmpName = (): string => `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;

/** Write via a temp file in `tmpDir` (same file system) and rename, so readers never see half a file. */
function writeAtomic(path: string, data: string | Buffer, tmpDir = dirname(path)): void {
  const tmp = join(tmpDir, tmpName());
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function ioError(action: string, e: unknown): TrackingError {
  const err = e as NodeJS.ErrnoException;
  return new TrackingError(`MLflow file store: cannot ${action}: ${err?.message ?? String(e)}`, 'permanent', { errorCode: err?.code ?? 'IO_ERROR' });
}

function invalidKey(kind: string, key: string, problem: string): TrackingError {
  return new TrackingError(`invalid ${kind} name "${key}": ${problem}`, 'permanent', { errorCode: 'INVALID_PARAMETER_VALUE' });
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

interface ExperimentEntry {
  id: string;
  dir: string;
  meta: ExperimentMeta;
}

interface RunLocation {
  experimentId: string;
  dir: string;
}

export class MlflowFileStore {
  /** `file:///abs/mlruns` */
  readonly uri: string;
  private readonly runs = new Map<string, RunLocation>();

  /** `root` must be absolute. The directory and `.trash/` are created on first use. */
  constructor(readonly root: string) {
    this.uri = pathToFileURL(root).href;
  }

  /** Create the root and `.trash/` (MLflow's reader would otherwise need write access to create it). */
  ensureRoot(): void {
    try {
      if (existsSync(this.root) && !statSync(this.root).isDirectory()) {
        throw new TrackingError(`MLflow file store ${this.root} is a file, not a directory`, 'fatal', {
          errorCode: 'INVALID_STORE',
          hint: 'point tracking.uri at a directory (default ./mlruns)',
        });
      }
      mkdirSync(join(this.root, '.trash'), { recursive: true });
    } catch (e) {
      if (e instanceof TrackingError) throw e;
      throw ioError(`create ${this.root}`, e);
    }
  }

  /** Every readable experiment, active ones and those in `.trash/`. */
  experiments(): ExperimentEntry[] {
    const out: ExperimentEntry[] = [];
    const scan = (parent: string, deleted: boolean): void => {
      let names: string[];
      try {
        names = readdirSync(parent, { withFileTypes: true })
          .filter((d) => d.isDirectory() && (deleted || !NON_EXPERIMENT_DIRS.has(d.name)))
          .map((d) => d.name);
      } catch {
        return;
      }
      for (const name of names) {
        const dir = join(parent, name);
        const meta = this.readExperimentMeta(dir);
        if (meta && meta.experiment_id === name) out.push({ id: name, dir, meta });
      }
    };
    scan(this.root, false);
    scan(join(this.root, '.trash'), true);
    return out;
  }

  private readExperimentMeta(dir: string): ExperimentMeta | null {
    try {
      const text = readText(join(dir, 'meta.yaml'));
      if (text === null) return null;
      const raw = fromYaml(text) as Record<string, unknown> | null;
      if (!raw || typeof raw !== 'object' || raw.name === undefined || raw.experiment_id === undefined) return null;
      return { ...(raw as unknown as ExperimentMeta), experiment_id: String(raw.experiment_id), name: String(raw.name) };
    } catch {
      return null;
    }
  }

  /** The experiment called `name` (active or deleted), or null. */
  getExperimentByName(name: string): ExperimentEntry | null {
    return this.experiments().find((e) => e.meta.name === name) ?? null;
  }

  /**
   * Create an experiment with a numeric id not used in the store (also not
   * by deleted ones). A lock file serialises concurrent writers so that two
   * runs starting at once do not create the same name twice.
   */
  createExperiment(name: string): string {
    if (!name) throw new TrackingError('experiment name must not be empty', 'permanent', { errorCode: 'INVALID_PARAMETER_VALUE' });
    this.ensureRoot();
    return this.withLock(() => {
      const existing = this.getExperimentByName(name);
      if (existing) {
        throw new TrackingError(`Experiment '${name}' already exists (id ${existing.id})`, 'permanent', { errorCode: 'RESOURCE_ALREADY_EXISTS' });
      }
      // Id 0 stays free: MLflow's own clients treat it as the "Default" experiment.
      let next = this.maxNumericExperimentId() + 1n;
      if (next < 1n) next = 1n;
      for (;;) {
        const id = next.toString();
        const dir = join(this.root, id);
        try {
          // Non-recursive mkdir fails if the id was taken meanwhile (e.g. by MLflow itself).
          mkdirSync(dir);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
            next += 1n;
            continue;
          }
          throw ioError(`create experiment directory ${dir}`, e);
        }
        const now = Date.now();
        const meta: ExperimentMeta = {
          artifact_location: pathToFileURL(dir).href,
          creation_time: now,
          experiment_id: id,
          last_update_time: now,
          lifecycle_stage: 'active',
          name,
        };
        try {
          writeAtomic(join(dir, 'meta.yaml'), toYaml(meta));
        } catch (e) {
          throw ioError(`write ${join(dir, 'meta.yaml')}`, e);
        }
        return id;
      }
    });
  }

  private maxNumericExperimentId(): bigint {
    let max = -1n;
    for (const parent of [this.root, join(this.root, '.trash')]) {
      let names: string[] = [];
      try {
        names = readdirSync(parent);
      } catch {
        /* no trash yet */
      }
      for (const n of names) if (/^\d+$/.test(n) && BigInt(n) > max) max = BigInt(n);
    }
    return max;
  }

  private withLock<T>(fn: () => T): T {
    const lock = join(this.root, LOCK_FILE);
    const deadline = Date.now() + 10_000;
    let fd: number;
    for (;;) {
      try {
        fd = openSync(lock, 'wx');
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(`create lock file ${lock}`, e);
        try {
          // A holder that crashed leaves the file behind; nobody holds it this long.
          if (Date.now() - statSync(lock).mtimeMs > 30_000) unlinkSync(lock);
        } catch {
          /* released meanwhile */
        }
        if (Date.now() > deadline) {
          throw new TrackingError(`MLflow file store: ${lock} is held by another process`, 'permanent', {
            errorCode: 'LOCKED',
            hint: `delete ${lock} if no other run is starting`,
          });
        }
        sleepSync(20);
      }
    }
    try {
      return fn();
    } finally {
      closeSync(fd);
      rmSync(lock, { force: true });
    }
  }

  /** Create a run (32-hex id) with its `meta.yaml`, folders and tags. */
  createRun(experimentId: string, request: { runName: string; userId: string; startTime: number; tags: readonly KeyValue[] }): RunMeta {
    const expDir = join(this.root, experimentId);
    if (!EXPERIMENT_ID.test(experimentId) || !existsSync(join(expDir, 'meta.yaml'))) {
      throw new TrackingError(`experiment ${experimentId} does not exist in ${this.root}`, 'permanent', { errorCode: 'RESOURCE_DOES_NOT_EXIST' });
    }
    for (const t of request.tags) {
      const problem = keyProblem(t.key);
      if (problem) throw invalidKey('tag', t.key, problem);
    }
    const runId = randomUUID().replace(/-/g, '');
    const dir = join(expDir, runId);
    const meta: RunMeta = {
      artifact_uri: pathToFileURL(join(dir, 'artifacts')).href,
      end_time: null,
      entry_point_name: '',
      experiment_id: experimentId,
      lifecycle_stage: 'active',
      run_id: runId,
      run_name: request.runName,
      run_uuid: runId,
      source_name: '',
      source_type: SOURCE_TYPE_LOCAL,
      source_version: '',
      start_time: toInteger(request.startTime),
      status: RUN_STATUS_CODE.RUNNING,
      tags: [],
      user_id: request.userId,
      deleted_time: null,
    };
    try {
      mkdirSync(dir);
      writeAtomic(join(dir, 'meta.yaml'), toYaml(meta));
      for (const sub of ['metrics', 'params', 'artifacts', 'tags']) mkdirSync(join(dir, sub), { recursive: true });
    } catch (e) {
      throw ioError(`create run directory ${dir}`, e);
    }
    this.runs.set(runId, { experimentId, dir });
    this.setTags(runId, request.tags);
    return meta;
  }

  /** Find a run in any experiment (active or deleted); null when the store has no such run. */
  getRun(runId: string): { meta: RunMeta; dir: string; experimentDeleted: boolean } | null {
    if (!/^[\w-]+$/.test(runId) || NON_RUN_DIRS.has(runId)) return null;
    for (const exp of this.experiments()) {
      const dir = join(exp.dir, runId);
      const text = readText(join(dir, 'meta.yaml'));
      if (text === null) continue;
      const meta = fromYaml(text) as RunMeta;
      this.runs.set(runId, { experimentId: exp.id, dir });
      return { meta, dir, experimentDeleted: exp.meta.lifecycle_stage === 'deleted' || dirname(exp.dir) !== this.root };
    }
    return null;
  }

  private runDir(runId: string): string {
    const cached = this.runs.get(runId);
    if (cached && existsSync(join(cached.dir, 'meta.yaml'))) return cached.dir;
    const found = this.getRun(runId);
    if (!found) throw new TrackingError(`Run '${runId}' not found in ${this.root}`, 'permanent', { errorCode: 'RESOURCE_DOES_NOT_EXIST' });
    return found.dir;
  }

  private readRunMeta(dir: string): RunMeta {
    const text = readText(join(dir, 'meta.yaml'));
    if (text === null) throw new TrackingError(`run meta.yaml missing in ${dir}`, 'permanent', { errorCode: 'RESOURCE_DOES_NOT_EXIST' });
    const meta = fromYaml(text) as RunMeta;
    // Legacy stores have unquoted ids; MLflow writes strings back.
    return { ...meta, experiment_id: String(meta.experiment_id) };
  }

  /** Set status and end time (null while running), as `update_run_info` does. */
  updateRun(runId: string, update: { status: MlflowRunStatus; endTime: number | null; runName?: string }): RunMeta {
    const dir = this.runDir(runId);
    const meta = this.readRunMeta(dir);
    const next: RunMeta = {
      ...meta,
      status: RUN_STATUS_CODE[update.status],
      end_time: update.endTime === null ? null : toInteger(update.endTime),
      ...(update.runName !== undefined ? { run_name: update.runName } : {}),
    };
    try {
      writeAtomic(join(dir, 'meta.yaml'), toYaml(next));
    } catch (e) {
      throw ioError(`update ${join(dir, 'meta.yaml')}`, e);
    }
    return next;
  }

  /** Append one line per metric: `<timestamp> <value> <step>\n` (what `_log_run_metric` writes). */
  logMetrics(runId: string, metrics: readonly WireMetric[]): void {
    for (const m of metrics) {
      const problem = keyProblem(m.key);
      if (problem) throw invalidKey('metric', m.key, problem);
    }
    const dir = this.runDir(runId);
    this.assertActive(dir, runId);
    const byKey = new Map<string, string[]>();
    for (const m of metrics) {
      const line = `${toInteger(m.timestamp)} ${fileStoreValue(m.value)} ${toInteger(m.step)}\n`;
      const lines = byKey.get(m.key);
      if (lines) lines.push(line);
      else byKey.set(m.key, [line]);
    }
    for (const [key, lines] of byKey) {
      const path = join(dir, 'metrics', ...key.split('/'));
      try {
        mkdirSync(dirname(path), { recursive: true });
        // One append per key: O_APPEND keeps concurrent appenders' lines whole.
        appendFileSync(path, lines.join(''));
      } catch (e) {
        throw ioError(`append to ${path}`, e);
      }
    }
  }

  /** Write params; re-logging the same value is a no-op and a different value is refused, as in MLflow. */
  logParams(runId: string, params: readonly KeyValue[]): void {
    for (const p of params) {
      const problem = keyProblem(p.key);
      if (problem) throw invalidKey('param', p.key, problem);
    }
    const dir = this.runDir(runId);
    this.assertActive(dir, runId);
    for (const p of params) {
      const path = join(dir, 'params', ...p.key.split('/'));
      const old = readText(path);
      if (old !== null) {
        if (old === p.value) continue;
        throw new TrackingError(
          `Changing param values is not allowed. Param with key='${p.key}' was already logged with value='${old}' for run ID='${runId}'. Attempted logging new value '${p.value}'.`,
          'permanent',
          { errorCode: 'INVALID_PARAMETER_VALUE' },
        );
      }
      this.writeKeyFile(dir, path, p.value);
    }
  }

  /** Write (or overwrite) run tags; `mlflow.runName` also renames the run, as MLflow's `set_tag` does. */
  setTags(runId: string, tags: readonly KeyValue[]): void {
    for (const t of tags) {
      const problem = keyProblem(t.key);
      if (problem) throw invalidKey('tag', t.key, problem);
    }
    if (!tags.length) return;
    const dir = this.runDir(runId);
    for (const t of tags) this.writeKeyFile(dir, join(dir, 'tags', ...t.key.split('/')), t.value);
    const runName = tags.filter((t) => t.key === 'mlflow.runName').pop();
    if (runName) {
      const meta = this.readRunMeta(dir);
      if (meta.run_name !== runName.value) writeAtomic(join(dir, 'meta.yaml'), toYaml({ ...meta, run_name: runName.value }));
    }
  }

  /** Param/tag files: the whole content is the value, no trailing newline; the temp file sits in the run dir, where MLflow ignores loose files. */
  private writeKeyFile(runDir: string, path: string, value: string): void {
    try {
      mkdirSync(dirname(path), { recursive: true });
      writeAtomic(path, value, runDir);
    } catch (e) {
      throw ioError(`write ${path}`, e);
    }
  }

  private assertActive(dir: string, runId: string): void {
    const meta = this.readRunMeta(dir);
    if (meta.lifecycle_stage === 'deleted') {
      throw new TrackingError(`The run ${runId} must be in the 'active' state. Current state is deleted.`, 'permanent', { errorCode: 'INVALID_PARAMETER_VALUE' });
    }
  }

  /** The local directory behind the run's `artifact_uri`. */
  artifactDir(runId: string): string {
    const dir = this.runDir(runId);
    const uri = this.readRunMeta(dir).artifact_uri;
    if (typeof uri === 'string' && uri.startsWith('file://')) return fileURLToPath(uri);
    if (typeof uri === 'string' && uri.startsWith('/')) return uri;
    return join(dir, 'artifacts');
  }

  /**
   * Copy a file to `<artifacts>/<artifactPath>` (temp file + rename, so a
   * listing never shows half a file); `filter` may rewrite the content on the way.
   */
  logArtifact(runId: string, localPath: string, artifactPath: string, filter?: (data: Buffer) => Buffer): void {
    const segments = artifactPath.split('/');
    if (!artifactPath || artifactPath.startsWith('/') || segments.some((s) => s === '' || s === '.' || s === '..')) {
      throw new TrackingError(`invalid artifact path "${artifactPath}"`, 'permanent', { errorCode: 'INVALID_PARAMETER_VALUE' });
    }
    const dest = join(this.artifactDir(runId), ...segments);
    try {
      mkdirSync(dirname(dest), { recursive: true });
      const tmp = join(dirname(dest), tmpName());
      try {
        if (filter) writeFileSync(tmp, filter(readFileSync(localPath)));
        else copyFileSync(localPath, tmp);
        renameSync(tmp, dest);
      } catch (e) {
        rmSync(tmp, { force: true });
        throw e;
      }
    } catch (e) {
      throw ioError(`copy artifact ${localPath} to ${dest}`, e);
    }
  }
}
