import { MLFLOW_LIMITS, type WireValue } from './types.js';

/**
 * MLflow's key rule `^[/\w.\- ]*$`. Python's `\w` on `str` is Unicode-aware
 * (letters, digits and other numerics, underscore), hence `\p{L}\p{N}_`.
 */
const KEY_CHARS = /^[/\p{L}\p{N}_.\- ]*$/u;
const BAD_KEY_CHAR = /[^/\p{L}\p{N}_.\- ]/gu;

/** Why MLflow would reject `key`, or null when it is acceptable. */
export function keyProblem(key: string): string | null {
  if (key.length === 0) return 'the key is empty';
  if (key.length > MLFLOW_LIMITS.keyLength) return `the key is ${key.length} characters long (MLflow allows ${MLFLOW_LIMITS.keyLength})`;
  if (!KEY_CHARS.test(key)) return 'the key may only contain letters, digits, "_", "-", ".", " " and "/"';
  // MLflow requires posixpath.normpath(key) == key: no leading or trailing "/", no "//", no "." or ".." segment.
  if (key.startsWith('/')) return 'the key must not start with "/"';
  const segments = key.split('/');
  if (segments.some((s) => s === '')) return 'the key must not contain "//" or end with "/"';
  if (segments.some((s) => s === '.' || s === '..')) return 'the key must not contain "." or ".." path segments';
  return null;
}

/**
 * A key MLflow accepts that stays as close to `key` as possible: bad
 * characters become `_`, empty, `.` and `..` segments are dropped or
 * replaced, and the result is cut to 250 characters.
 */
export function sanitizeKey(key: string): string {
  let segments = key
    .replace(BAD_KEY_CHAR, '_')
    .split('/')
    .filter((s) => s !== '')
    .map((s) => (s === '.' || s === '..' ? s.replace(/\./g, '_') : s));
  if (!segments.length) segments = ['_'];
  let out = segments.join('/');
  if (out.length > MLFLOW_LIMITS.keyLength) {
    out = out.slice(0, MLFLOW_LIMITS.keyLength).replace(/\/+$/, '');
    // Cutting may leave a trailing "." or ".." segment.
    out = out.replace(/(^|\/)(\.{1,2})$/, (_m, sep: string, dots: string) => sep + '_'.repeat(dots.length));
  }
  return out;
}

export const TRUNCATION_MARKER = '...[truncated]';

/**
 * Cut `value` to `limit` characters, ending in a visible marker. Counts UTF-16
 * units, which is never fewer than the code points MLflow counts, and never
 * splits a surrogate pair.
 */
export function truncateValue(value: string, limit: number): { value: string; truncated: boolean } {
  if (value.length <= limit) return { value, truncated: false };
  let head = value.slice(0, Math.max(0, limit - TRUNCATION_MARKER.length));
  const last = head.charCodeAt(head.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) head = head.slice(0, -1);
  return { value: head + TRUNCATION_MARKER, truncated: true };
}

/** A JS number as MLflow's JSON API accepts it (never `null`). */
export function toWireValue(value: number): WireValue {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return value;
}

/** The wire value (or a number) back as a JS number. */
export function fromWireValue(value: WireValue | string | number): number {
  if (typeof value === 'number') return value;
  if (value === 'NaN') return NaN;
  if (value === 'Infinity') return Infinity;
  if (value === '-Infinity') return -Infinity;
  return Number(value);
}

/**
 * The value as the file store writes it: what Python's `str(float)` gives for
 * the non-finite values (`nan`, `inf`, `-inf`); finite numbers use JS's
 * shortest round-trip form, which Python's `float()` parses to the same double.
 */
export function fileStoreValue(value: WireValue): string {
  const n = fromWireValue(value);
  if (Number.isNaN(n)) return 'nan';
  if (n === Infinity) return 'inf';
  if (n === -Infinity) return '-inf';
  return String(n);
}

/** Timestamps and steps are int64 in MLflow: a decimal point would make the line unreadable. */
export function toInteger(value: number): number {
  if (Number.isSafeInteger(value)) return value;
  if (Number.isNaN(value)) return 0;
  // Beyond 2^53 String() may switch to exponent form, which Python's int() rejects.
  return Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, Math.round(value)));
}
