/**
 * A reader that holds a file store to what MLflow 2.10.2 does when it reads
 * one (../shared/mlflow-filestore.md), failing on everything MLflow would
 * fail on *or warn about*: the store must read "without warnings".
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

/** Python's `int()` on a str: optional sign, digits; no decimal point, no exponent. */
export function pyInt(text: string): number {
  if (!/^\s*[+-]?\d+\s*$/.test(text)) throw new Error(`ValueError: invalid literal for int() with base 10: '${text}'`);
  return Number(text);
}

/** Python's `float()` on a str: decimal/exponent forms, `nan`, `inf`, `infinity` in any case. */
export function pyFloat(text: string): number {
  const t = text.trim();
  if (!/^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|nan|inf|infinity)$/i.test(t)) {
    throw new Error(`ValueError: could not convert string to float: '${text}'`);
  }
  const body = t.replace(/^[+-]/, '').toLowerCase();
  const sign = t.startsWith('-') ? -1 : 1;
  if (body === 'nan') return NaN;
  if (body === 'inf' || body === 'infinity') return sign * Infinity;
  return Number(t);
}

export interface ReadMetric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}

/** Mirror of `FileStore._get_metric_from_line`. */
export function getMetricFromLine(key: string, line: string): ReadMetric {
  const parts = line.trim().split(' ');
  if (parts.length === 2) return { key, value: pyFloat(parts[1]), timestamp: pyInt(parts[0]), step: 0 };
  if (parts.length === 3) return { key, value: pyFloat(parts[1]), timestamp: pyInt(parts[0]), step: pyInt(parts[2]) };
  throw new Error(`Metric '${key}' is malformed; persisted metric data contained ${parts.length} fields. Expected 2 or 3 fields.`);
}

export interface ReadRun {
  id: string;
  dir: string;
  metaText: string;
  meta: Record<string, unknown>;
  metrics: Map<string, ReadMetric[]>;
  params: Map<string, string>;
  tags: Map<string, string>;
  /** Artifact paths (relative, `/`-separated) behind the artifact_uri. */
  artifacts: string[];
}

export interface ReadExperiment {
  id: string;
  dir: string;
  metaText: string;
  meta: Record<string, unknown>;
  runs: ReadRun[];
}

/** PyYAML reads YAML 1.1. */
export const readYaml = (text: string): Record<string, unknown> => parse(text, { version: '1.1' }) as Record<string, unknown>;

function walk(dir: string, prefix = ''): [string, string][] {
  if (!existsSync(dir)) return [];
  const out: [string, string][] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const key = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...walk(join(dir, e.name), key));
    else out.push([key, join(dir, e.name)]);
  }
  return out;
}

const EXPERIMENT_ID = /^[a-zA-Z0-9][\w-]{0,63}$/;
const RUN_REQUIRED = ['run_uuid', 'experiment_id', 'user_id', 'start_time', 'end_time'];
const EXP_REQUIRED = ['experiment_id', 'name', 'artifact_location', 'lifecycle_stage'];

export function readStore(root: string): ReadExperiment[] {
  if (!statSync(join(root, '.trash')).isDirectory()) throw new Error('.trash missing');
  const experiments: ReadExperiment[] = [];
  for (const e of readdirSync(root, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name === '.trash' || e.name === 'models') continue;
    if (!EXPERIMENT_ID.test(e.name)) throw new Error(`MlflowException: Invalid experiment ID '${e.name}'`);
    const dir = join(root, e.name);
    if (!existsSync(join(dir, 'meta.yaml'))) throw new Error(`warning: Malformed experiment '${e.name}'`);
    const metaText = readFileSync(join(dir, 'meta.yaml'), 'utf8');
    const meta = readYaml(metaText);
    for (const k of EXP_REQUIRED) if (!(k in meta)) throw new Error(`TypeError: Experiment.__init__() missing '${k}'`);
    if (String(meta.experiment_id) !== e.name) throw new Error(`warning: Experiment ID mismatch for ${e.name}`);
    const runs: ReadRun[] = [];
    for (const r of readdirSync(dir, { withFileTypes: true })) {
      if (!r.isDirectory() || r.name === 'tags' || r.name === 'datasets') continue;
      const runDir = join(dir, r.name);
      if (!existsSync(join(runDir, 'meta.yaml'))) throw new Error(`warning: Malformed run '${r.name}'`);
      const runText = readFileSync(join(runDir, 'meta.yaml'), 'utf8');
      const rm = readYaml(runText);
      for (const k of RUN_REQUIRED) if (!(k in rm)) throw new Error(`TypeError: RunInfo.__init__() missing '${k}'`);
      if (rm.run_uuid !== r.name) throw new Error(`run_uuid ${rm.run_uuid} != directory ${r.name}`);
      if (String(rm.experiment_id) !== e.name) throw new Error(`warning: Wrong experiment ID (${rm.experiment_id}) recorded for run ${r.name}`);
      if (rm.user_id === null) throw new Error('user_id is null');
      if (!Number.isInteger(rm.start_time)) throw new Error(`start_time ${rm.start_time} is not an int`);
      if ('status' in rm && !(Number.isInteger(rm.status) && (rm.status as number) >= 1 && (rm.status as number) <= 5)) {
        throw new Error(`Could not get string corresponding to run status ${rm.status}`);
      }
      const metrics = new Map<string, ReadMetric[]>();
      for (const [key, path] of walk(join(runDir, 'metrics'))) {
        const text = readFileSync(path, 'utf8');
        const lines = text.split('\n').filter((l) => l.trim() !== '');
        if (!lines.length) throw new Error(`Metric '${key}' is malformed. No data found.`);
        metrics.set(key, lines.map((l) => getMetricFromLine(key, l)));
      }
      const params = new Map(walk(join(runDir, 'params')).map(([k, p]) => [k, readFileSync(p, 'utf8')] as [string, string]));
      const tags = new Map(walk(join(runDir, 'tags')).map(([k, p]) => [k, readFileSync(p, 'utf8')] as [string, string]));
      const artifactUri = String(rm.artifact_uri ?? '');
      const artifactDir = artifactUri.startsWith('file://') ? new URL(artifactUri) : null;
      const artifacts = artifactDir ? walk(decodeURIComponent(artifactDir.pathname)).map(([k]) => k).sort() : [];
      runs.push({ id: r.name, dir: runDir, metaText: runText, meta: rm, metrics, params, tags, artifacts });
    }
    experiments.push({ id: e.name, dir, metaText, meta, runs });
  }
  return experiments;
}
