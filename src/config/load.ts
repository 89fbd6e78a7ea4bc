import { readFileSync } from 'node:fs';
import { dirname, extname, resolve as resolvePath } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { UserError } from '../util/errors.js';
import { configSchema, type Config, type RawConfig } from './schema.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** Read a YAML or JSON config file into a plain object (not yet validated). */
export function readConfigFile(path: string): JsonObject {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read config file ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`, 'CONFIG_MISSING', 'check the path given to --config');
  }
  let parsed: unknown;
  try {
    parsed = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new UserError(`config file ${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`, 'CONFIG_SYNTAX');
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UserError(`config file ${path} must contain a mapping of keys, got ${Array.isArray(parsed) ? 'a list' : typeof parsed}`, 'CONFIG_SYNTAX');
  }
  return parsed as JsonObject;
}

const isPlainObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Later sources win; objects merge key by key, everything else (arrays too) is replaced. */
export function mergeConfigs(...sources: JsonObject[]): JsonObject {
  const out: JsonObject = {};
  for (const src of sources) {
    for (const [key, value] of Object.entries(src)) {
      const prev = out[key];
      out[key] = isPlainObject(prev) && isPlainObject(value) ? mergeConfigs(prev, value) : value;
    }
  }
  return out;
}

/** `{"data.size": "2000"}` or `["data.size", 2000]` pairs into a nested object. */
export function overridesFromDotted(entries: Iterable<[string, unknown]>): JsonObject {
  const out: JsonObject = {};
  for (const [dotted, value] of entries) {
    const parts = dotted.split('.');
    let node: JsonObject = out;
    for (const p of parts.slice(0, -1)) {
      if (!isPlainObject(node[p])) node[p] = {};
      node = node[p] as JsonObject;
    }
    node[parts[parts.length - 1]] = value as Json;
  }
  return out;
}

function unwrap(schema: z.ZodTypeAny): z.ZodTypeAny {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s._def.innerType;
    else if (s instanceof z.ZodEffects) s = s._def.schema;
    else return s;
  }
}

/**
 * Command-line values arrive as strings or numbers whatever the key's type;
 * turn them into what the schema expects at that path (`"true"` into a
 * boolean, `"256,256"` into a number array, `9` into `"9"` for a class name)
 * so that type errors are only reported for values that really are wrong.
 */
export function coerceToSchema(value: unknown, schema: z.ZodTypeAny = configSchema): unknown {
  const s = unwrap(schema);
  // A scalar option given twice on the command line arrives as a list: the last one wins.
  if (Array.isArray(value) && value.length > 0 && !(s instanceof z.ZodArray || s instanceof z.ZodTuple || s instanceof z.ZodAny || s instanceof z.ZodUnknown)) {
    return coerceToSchema(value[value.length - 1], schema);
  }
  if (s instanceof z.ZodObject && isPlainObject(value)) {
    const shape = s.shape as Record<string, z.ZodTypeAny>;
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) out[k] = (k in shape ? coerceToSchema(v, shape[k]) : v) as Json;
    return out;
  }
  if (s instanceof z.ZodRecord && isPlainObject(value)) {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) out[k] = coerceToSchema(v, s._def.valueType) as Json;
    return out;
  }
  if (s instanceof z.ZodString && (typeof value === 'number' || typeof value === 'boolean')) return String(value);
  if (s instanceof z.ZodNumber && typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) {
    return Number(value);
  }
  if (s instanceof z.ZodBoolean && typeof value === 'string') {
    if (value === 'true') return true;
    if (value === 'false') return false;
  }
  if ((s instanceof z.ZodArray || s instanceof z.ZodTuple) && typeof value === 'string') {
    const trimmed = value.trim();
    if (trimmed.startsWith('[')) {
      try {
        return coerceToSchema(JSON.parse(trimmed), s);
      } catch {
        return value;
      }
    }
    const items = trimmed === '' ? [] : trimmed.split(',').map((x) => x.trim());
    return coerceToSchema(items, s);
  }
  if ((s instanceof z.ZodArray || s instanceof z.ZodTuple) && (typeof value === 'number' || typeof value === 'boolean')) {
    return coerceToSchema([value], s);
  }
  if (s instanceof z.ZodArray && Array.isArray(value)) return value.map((v) => coerceToSchema(v, s._def.type));
  if (s instanceof z.ZodTuple && Array.isArray(value)) {
    return value.map((v, i) => (s._def.items[i] ? coerceToSchema(v, s._def.items[i]) : v));
  }
  if (s instanceof z.ZodNull && value === 'null') return null;
  return value;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function valueAt(root: unknown, path: (string | number)[]): unknown {
  let node = root;
  for (const p of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[p];
  }
  return node;
}

function allowedKeysAt(path: (string | number)[]): string[] {
  let s: z.ZodTypeAny = configSchema;
  for (const p of path) {
    const inner = unwrap(s);
    if (!(inner instanceof z.ZodObject)) return [];
    s = (inner.shape as Record<string, z.ZodTypeAny>)[p as string];
    if (!s) return [];
  }
  const inner = unwrap(s);
  return inner instanceof z.ZodObject ? Object.keys(inner.shape) : [];
}

/** One line per problem, each naming the key, the bad value and what is allowed. */
export function describeIssues(error: z.ZodError, raw: unknown): string[] {
  const lines: string[] = [];
  for (const issue of error.issues) {
    const key = issue.path.join('.');
    if (issue.code === 'unrecognized_keys') {
      const allowed = allowedKeysAt(issue.path);
      for (const k of issue.keys) {
        const full = key ? `${key}.${k}` : k;
        lines.push(`config key "${full}" is not a known key${allowed.length ? ` (allowed under ${key || 'the top level'}: ${allowed.join(', ')})` : ''}`);
      }
      continue;
    }
    const value = valueAt(raw, issue.path);
    let allowed = issue.message;
    if (issue.code === 'invalid_enum_value') allowed = `one of ${issue.options.map((o) => JSON.stringify(o)).join(', ')}`;
    else if (issue.code === 'invalid_type') allowed = `a ${issue.expected}`;
    else if (issue.code === 'too_small' && issue.type === 'number') allowed = `a number ${issue.inclusive ? '>=' : '>'} ${issue.minimum}`;
    else if (issue.code === 'too_big' && issue.type === 'number') allowed = `a number ${issue.inclusive ? '<=' : '<'} ${issue.maximum}`;
    lines.push(key ? `config key "${key}" has value ${describe(value)}; expected ${allowed}` : `config: ${issue.message}`);
  }
  return lines;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Validate, fill every default, freeze. Throws a UserError listing every problem. */
export function resolveConfig(raw: RawConfig | JsonObject): Config {
  const coerced = coerceToSchema(raw);
  const result = configSchema.safeParse(coerced);
  if (!result.success) {
    const lines = describeIssues(result.error, coerced);
    throw new UserError(`invalid configuration:\n  ${lines.join('\n  ')}`, 'CONFIG_INVALID', 'fix the keys above in the config file or on the command line (see `clip-backdoor-filter train --help`)');
  }
  return deepFreeze(result.data) as Config;
}

/**
 * A config file with its `extends:` chain resolved: `extends: fashion-mnist.yaml`
 * (relative to the file) loads that file first and merges this one over it.
 */
export function readConfigFileWithBase(path: string, seen: string[] = []): JsonObject {
  const full = resolvePath(path);
  if (seen.includes(full)) throw new UserError(`config files extend each other in a cycle: ${[...seen, full].join(' -> ')}`, 'CONFIG_CYCLE');
  const raw = readConfigFile(path);
  const base = raw.extends;
  delete raw.extends;
  if (base === undefined) return raw;
  if (typeof base !== 'string') throw new UserError(`config key "extends" in ${path} must be a file path, got ${JSON.stringify(base)}`, 'CONFIG_INVALID');
  return mergeConfigs(readConfigFileWithBase(resolvePath(dirname(full), base), [...seen, full]), raw);
}

/** Pairs of keys that exclude each other: setting one in a later source removes the other from earlier ones. */
const EXCLUSIVE: [section: string, a: string, b: string][] = [
  ['poison', 'rate', 'count'],
  ['filter', 'dropFraction', 'threshold'],
];

function dropOverridden(base: JsonObject, overrides: JsonObject): JsonObject {
  const out = { ...base };
  for (const [section, a, b] of EXCLUSIVE) {
    const o = overrides[section];
    const f = out[section];
    if (!isPlainObject(o) || !isPlainObject(f)) continue;
    const copy = { ...f };
    if (o[a] !== undefined) delete copy[b];
    if (o[b] !== undefined) delete copy[a];
    out[section] = copy;
  }
  return out;
}

/** File (optional, with its `extends:` chain) + overrides, the order every command uses. */
export function loadConfig(options: { file?: string; overrides?: JsonObject }): Config {
  const fromFile = dropOverridden(options.file ? readConfigFileWithBase(options.file) : {}, options.overrides ?? {});
  return resolveConfig(mergeConfigs(fromFile, options.overrides ?? {}));
}

/** `{a: {b: 1}}` into `[["a.b", 1]]`: the resolved config as flat params (MLflow, logs). */
export function flattenConfig(value: unknown, prefix = ''): [string, string][] {
  if (isPlainObject(value)) {
    return Object.entries(value).flatMap(([k, v]) => flattenConfig(v, prefix ? `${prefix}.${k}` : k));
  }
  if (value === undefined) return [];
  return [[prefix, Array.isArray(value) || value === null ? JSON.stringify(value) : String(value)]];
}
