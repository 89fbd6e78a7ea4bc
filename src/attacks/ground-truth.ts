import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { ClipDataset } from '../data/types.js';
import type { PoisonTruth } from '../train/hooks.js';
import { parseDelimited } from '../util/csv.js';
import { UserError } from '../util/errors.js';

const CODE = 'POISON_GROUND_TRUTH';

/** CSV/TSV rows as field lists (the shared RFC 4180 parser). */
export function parseCsv(text: string, separator: string): string[][] {
  return parseDelimited(text, separator).rows.map((r) => r.fields);
}

type Entry = number | string;

function entriesFromJson(parsed: unknown, path: string): { entries: Entry[]; attack?: string; target?: string } {
  if (Array.isArray(parsed)) return { entries: parsed as Entry[] };
  if (parsed && typeof parsed === 'object') {
    // A poison.json written by a previous run: ids survive re-indexing, so prefer them.
    const o = parsed as Record<string, unknown>;
    const list = Array.isArray(o.ids) ? o.ids : Array.isArray(o.indices) ? o.indices : null;
    if (list) {
      return {
        entries: list as Entry[],
        attack: typeof o.attack === 'string' ? o.attack : undefined,
        target: typeof o.target === 'string' ? o.target : undefined,
      };
    }
  }
  throw new UserError(
    `ground-truth file ${path} must hold a JSON list of sample ids or indices (or a poison.json with "ids"/"indices")`,
    CODE,
  );
}

function entriesFromCsv(text: string, path: string): Entry[] {
  const firstLine = text.slice(0, text.search(/\r?\n|$/));
  const sep = extname(path).toLowerCase() === '.tsv' || (firstLine.includes('\t') && !firstLine.includes(',')) ? '\t' : ',';
  const rows = parseCsv(text, sep);
  if (rows.length === 0) throw new UserError(`ground-truth file ${path} is empty`, CODE);
  const header = rows[0].map((h) => h.trim().toLowerCase());
  const idCol = header.indexOf('id');
  const indexCol = header.indexOf('index');
  if (idCol < 0 && indexCol < 0) {
    throw new UserError(
      `ground-truth CSV ${path} has no "id" column (columns: ${rows[0].join(', ')})`,
      CODE,
      'add a header line with an "id" column (sample ids) or an "index" column',
    );
  }
  const out: Entry[] = [];
  for (let r = 1; r < rows.length; r++) {
    if (idCol >= 0) out.push(rows[r][idCol] ?? '');
    else {
      const raw = (rows[r][indexCol] ?? '').trim();
      if (!/^\d+$/.test(raw)) {
        throw new UserError(`ground-truth CSV ${path} data row ${r}: index "${raw}" is not a non-negative integer`, CODE);
      }
      out.push(Number(raw));
    }
  }
  return out;
}

/**
 * Ground truth from `poison.groundTruth`: a JSON list of sample ids (strings,
 * matched against `dataset.id(i)`) and/or indices (integers), a poison.json,
 * or a CSV/TSV with an `id` column (or an `index` column). Unknown ids and
 * out-of-range indices are errors that name them.
 */
export function loadGroundTruth(path: string, dataset: ClipDataset): PoisonTruth {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read poison.groundTruth file ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`, CODE, 'check the path');
  }
  const ext = extname(path).toLowerCase();
  const looksJson = ext === '.json' || (ext !== '.csv' && ext !== '.tsv' && /^\s*[[{]/.test(text));
  let entries: Entry[];
  let attack = 'external';
  let target = '';
  if (looksJson) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new UserError(`ground-truth file ${path} is not valid JSON: ${(e as Error).message}`, CODE);
    }
    const got = entriesFromJson(parsed, path);
    entries = got.entries;
    attack = got.attack ?? attack;
    target = got.target ?? target;
  } else {
    entries = entriesFromCsv(text, path);
  }
  if (entries.length === 0) throw new UserError(`ground-truth file ${path} lists no samples`, CODE, 'list the poisoned samples');

  let idIndex: Map<string, number> | null = null;
  const unknownIds: string[] = [];
  const badIndices: unknown[] = [];
  const mask = new Uint8Array(dataset.size);
  for (const e of entries) {
    if (typeof e === 'string') {
      if (!idIndex) {
        idIndex = new Map();
        for (let i = 0; i < dataset.size; i++) idIndex.set(dataset.id(i), i);
      }
      const i = idIndex.get(e) ?? idIndex.get(e.trim());
      if (i === undefined) unknownIds.push(e);
      else mask[i] = 1;
    } else if (typeof e === 'number' && Number.isInteger(e) && e >= 0 && e < dataset.size) {
      mask[e] = 1;
    } else {
      badIndices.push(e);
    }
  }
  if (unknownIds.length > 0) {
    const shown = unknownIds.slice(0, 5).map((s) => JSON.stringify(s)).join(', ');
    throw new UserError(
      `${unknownIds.length} id(s) in ${path} are not in dataset ${dataset.name}: ${shown}${unknownIds.length > 5 ? ', ...' : ''}`,
      CODE,
      `ids must match the dataset's sample ids, e.g. ${JSON.stringify(dataset.size > 0 ? dataset.id(0) : '')}`,
    );
  }
  if (badIndices.length > 0) {
    const shown = badIndices.slice(0, 5).map((s) => JSON.stringify(s)).join(', ');
    throw new UserError(
      `${badIndices.length} entr${badIndices.length === 1 ? 'y' : 'ies'} in ${path} are not sample indices 0..${dataset.size - 1} or id strings: ${shown}`,
      CODE,
    );
  }
  let n = 0;
  for (let i = 0; i < mask.length; i++) n += mask[i];
  const indices = new Int32Array(n);
  for (let i = 0, k = 0; i < mask.length; i++) if (mask[i]) indices[k++] = i;
  return { attack, target, indices, mask };
}
