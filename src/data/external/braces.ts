import { UserError } from '../../util/errors.js';

/** More names than any real shard list; beyond it a pattern is almost surely a typo. */
const MAX_EXPANSION = 1_000_000;

/** Index of the `}` closing the `{` at `open`, or -1. */
function matchingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

/** Split at commas that are not inside nested braces. */
function splitTopLevel(body: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (ch === '{') depth++;
    else if (ch === '}') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(body.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(body.slice(start));
  return parts;
}

/**
 * `{lo..hi}` or `{lo..hi..step}` as strings, or null when `body` is not a
 * numeric range. Zero padding follows bash: if either end is written with a
 * leading zero, every number is padded to the longer end's width.
 */
function numericRange(body: string, pattern: string): string[] | null {
  const m = /^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$/.exec(body);
  if (!m) return null;
  const [, a, b, s] = m;
  const lo = Number(a);
  const hi = Number(b);
  const step = Math.abs(s === undefined ? 1 : Number(s)) || 1;
  const count = Math.floor(Math.abs(hi - lo) / step) + 1;
  if (count > MAX_EXPANSION) {
    throw new UserError(`shard pattern "${pattern}": range {${body}} has ${count} values`, 'DATA_SPEC_INVALID', `at most ${MAX_EXPANSION} names per pattern`);
  }
  const padded = (t: string) => /^-?0\d/.test(t);
  const width = padded(a) || padded(b) ? Math.max(a.replace('-', '').length, b.replace('-', '').length) : 0;
  const dir = hi >= lo ? 1 : -1;
  const out: string[] = [];
  for (let k = 0, v = lo; k < count; k++, v += dir * step) {
    const digits = String(Math.abs(v)).padStart(width, '0');
    out.push(v < 0 ? `-${digits}` : digits);
  }
  return out;
}

/**
 * Bash-style brace expansion: `a{1,2}b` → a1b a2b, `{00..03}` → 00 01 02 03,
 * several and nested braces, the leftmost brace varying slowest. A brace
 * holding neither a comma nor a range stays literal (as in bash); an
 * unmatched brace is an error, since in a shard list it is always a typo.
 */
export function expandBraces(pattern: string): string[] {
  let depth = 0;
  for (const ch of pattern) {
    if (ch === '{') depth++;
    else if (ch === '}' && --depth < 0) break;
  }
  if (depth !== 0) {
    throw new UserError(
      `shard pattern "${pattern}" has an unmatched "${depth > 0 ? '{' : '}'}"`,
      'DATA_SPEC_INVALID',
      'write ranges as {00000..00099} and lists as {a,b,c}',
    );
  }
  const out: string[] = [];
  const walk = (text: string) => {
    let open = -1;
    for (let i = 0; i < text.length; i++) {
      if (text[i] !== '{') continue;
      const close = matchingBrace(text, i);
      const body = text.slice(i + 1, close);
      if (numericRange(body, pattern) || splitTopLevel(body).length > 1) {
        open = i;
        break;
      }
      i = close; // literal `{word}`: keep looking after it
    }
    if (open < 0) {
      out.push(text);
      if (out.length > MAX_EXPANSION) {
        throw new UserError(`shard pattern "${pattern}" expands to more than ${MAX_EXPANSION} names`, 'DATA_SPEC_INVALID');
      }
      return;
    }
    const close = matchingBrace(text, open);
    const body = text.slice(open + 1, close);
    const alternatives = numericRange(body, pattern) ?? splitTopLevel(body);
    const prefix = text.slice(0, open);
    const suffix = text.slice(close + 1);
    for (const alt of alternatives) walk(prefix + alt + suffix);
  };
  walk(pattern);
  return out;
}

/**
 * A webdataset-style shard spec: several brace patterns joined by `::`
 * (`a/{0..9}.tar::b/{00..03}.tar`), expanded in order.
 */
export function expandShardSpec(spec: string): string[] {
  const parts = spec
    .split('::')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  if (parts.length === 0) throw new UserError(`shard spec "${spec}" names no files`, 'DATA_SPEC_INVALID', 'e.g. data.path: "shards/{00000..00099}.tar"');
  return parts.flatMap((p) => expandBraces(p));
}
