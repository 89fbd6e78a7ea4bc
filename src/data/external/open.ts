import { existsSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import type { DataConfig } from '../../config/schema.js';
import { DEFAULT_PROMPTS } from '../../config/schema.js';
import { UserError } from '../../util/errors.js';
import { Rng } from '../../util/rng.js';
import type { DatasetSplits } from '../types.js';
import { expandShardSpec } from './braces.js';
import { csvSeparatorFor } from '../../util/csv.js';
import { scanCsv } from './csvSource.js';
import { ExternalDataset } from './dataset.js';
import type { ImageGeometry } from './decode.js';
import { scanFolder } from './folder.js';
import { formatSkip, SkipLog } from './skips.js';
import type { RawLabel, SampleTable } from './table.js';
import { scanWebdataset } from './webdataset.js';

export type ExternalKind = 'webdataset' | 'csv' | 'folder';

/** Decoded pixels each split may keep in memory by default (28x28 grey: ~340k images). */
export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;

/**
 * The kind of a data spec: `.tar` shards → webdataset, `.csv`/`.tsv` →
 * csv, an existing directory → folder; anything else is a UserError
 * naming the config key that would settle it.
 */
export function inferKind(spec: string, fix = 'or set data.kind'): ExternalKind {
  const first = spec.split('::')[0].trim();
  if (/\.tar$/i.test(first)) return 'webdataset';
  const ext = extname(first).toLowerCase();
  if (ext === '.csv' || ext === '.tsv' || ext === '.tab') return 'csv';
  if (existsSync(first) && statSync(first).isDirectory()) return 'folder';
  throw new UserError(
    `cannot tell what kind of data "${spec}" is`,
    'DATA_SPEC_INVALID',
    `give tar shards (*.tar, brace ranges allowed), a .csv/.tsv file or an existing directory, ${fix}`,
  );
}

/** How to read one source (a train or test split, or a spec given to `data inspect`). */
export interface SourceSpec {
  readonly kind: ExternalKind;
  readonly path: string;
  /** Labelled split (test): samples need a label; captions may be made from it. */
  readonly labelled: boolean;
  readonly csvSeparator?: string;
  readonly csvImageKey: string;
  readonly csvCaptionKey: string;
  readonly csvLabelKey: string;
  /** Caption for labelled samples without one. */
  readonly captionFallback?: (label: RawLabel) => string | null;
}

/** Index a source's samples (no image is read yet). */
export function scanSource(spec: SourceSpec, skips: SkipLog, onProgress?: (done: number, total: number) => void): SampleTable {
  const common = { skips, captionFallback: spec.captionFallback, requireLabel: spec.labelled, onProgress };
  switch (spec.kind) {
    case 'webdataset':
      return scanWebdataset(expandShardSpec(spec.path), common);
    case 'csv': {
      const separator = csvSeparatorFor(spec.path, spec.csvSeparator);
      return scanCsv(spec.path, { ...common, separator, imageKey: spec.csvImageKey, captionKey: spec.csvCaptionKey, labelKey: spec.csvLabelKey });
    }
    case 'folder':
      return scanFolder(spec.path, { ...common, labelled: spec.labelled });
  }
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Class names found in a labelled split: its distinct labels, sorted (numerically when all are numbers). */
export function classNamesFromLabels(labels: readonly RawLabel[]): string[] {
  const names = [...new Set(labels.filter((l) => l !== null).map((l) => String(l)))];
  return names.every((n) => /^\d+$/.test(n)) ? names.sort((a, b) => Number(a) - Number(b)) : names.sort(byName);
}

/**
 * A raw label's class index, or -1: the class name (exact, then ignoring
 * case and surrounding space), or, when `indicesAllowed`, an integer index
 * (JSON number or a digits-only string no class is named).
 */
export function resolveLabel(label: RawLabel, classNames: readonly string[], indicesAllowed: boolean): number {
  if (label === null) return -1;
  if (typeof label === 'string') {
    const exact = classNames.indexOf(label);
    if (exact >= 0) return exact;
    const want = label.trim().toLowerCase();
    const loose = classNames.findIndex((c) => c.trim().toLowerCase() === want);
    if (loose >= 0) return loose;
    if (!indicesAllowed || !/^\d+$/.test(want)) return -1;
  }
  const index = Number(label);
  return indicesAllowed && Number.isInteger(index) && index >= 0 && index < classNames.length ? index : -1;
}

/** Positions 0..n-1, or a seeded sorted subsample of `size` of them (0 = all), as the IDX datasets do. */
export function chooseRows(n: number, size: number, rng: Rng): Int32Array {
  const all = Int32Array.from({ length: n }, (_, i) => i);
  return size > 0 && size < n ? Int32Array.from(rng.sample(all, size)).sort() : all;
}

export interface OpenDatasetOptions {
  readonly geometry: ImageGeometry;
  /** `data.strict`: the first bad input is a UserError instead of a skip. */
  readonly strict: boolean;
  /** Class names in label order; null = none (unlabelled) or, for a labelled source, its sorted labels. */
  readonly classNames?: readonly string[] | null;
  /** Whether integer labels index `classNames` (only when the user gave the names). */
  readonly labelIndices?: boolean;
  /** Subsample to this many samples (0 / absent = all) with `seed` and `stream`. */
  readonly size?: number;
  readonly seed?: number;
  readonly stream?: string;
  readonly name?: string;
  readonly cacheBytes?: number;
  readonly concurrency?: number;
  readonly validate?: boolean;
  /** Record original image sizes and formats (see ValidateOptions.recordSizes). */
  readonly recordSizes?: boolean;
  /** Skip reasons kept in full (default 10; all are counted). */
  readonly keepReasons?: number;
  readonly onProgress?: (stage: 'scan' | 'check', done: number, total: number) => void;
}

/**
 * Scan a source, resolve labels, subsample, and open it as a dataset whose
 * images were all checked (see ExternalDataset.open). Labelled sources skip
 * samples whose label is not a class; unlabelled ones keep -1 for those.
 */
export async function openExternalDataset(spec: SourceSpec, opts: OpenDatasetOptions): Promise<ExternalDataset> {
  const skips = new SkipLog(opts.strict, opts.keepReasons);
  const table = scanSource(spec, skips, (d, t) => opts.onProgress?.('scan', d, t));
  const classNames = opts.classNames ?? (spec.labelled ? classNamesFromLabels(table.labels) : null);
  const labels = Int32Array.from(table.labels, (l) => (classNames ? resolveLabel(l, classNames, opts.labelIndices ?? false) : -1));
  const usable: number[] = [];
  labels.forEach((l, row) => {
    if (l >= 0 || !spec.labelled) usable.push(row);
    else skips.add({ kind: 'missing-label', ...table.origin(row), reason: `label ${JSON.stringify(table.labels[row])} is not one of the class names (${classNames!.join(', ')})` });
  });
  const chosen = chooseRows(usable.length, opts.size ?? 0, Rng.derive(opts.seed ?? 0, opts.stream ?? spec.kind));
  const rows = Int32Array.from(chosen, (p) => usable[p]);
  return ExternalDataset.open({
    name: opts.name ?? `${spec.kind}:${spec.path}`,
    table,
    rows,
    labels: Int32Array.from(rows, (r) => labels[r]),
    classNames,
    options: {
      geometry: opts.geometry,
      skips,
      cacheBytes: opts.cacheBytes ?? DEFAULT_CACHE_BYTES,
      concurrency: opts.concurrency,
      validate: opts.validate,
      recordSizes: opts.recordSizes,
      onProgress: (d, t) => opts.onProgress?.('check', d, t),
    },
  });
}

export interface ExternalOpenOptions {
  /** Seed of subsampling (`data.seed` ?? run seed). */
  readonly seed: number;
  /** Zero-shot prompt templates (default: `data.promptTemplates`, then generic CLIP prompts). */
  readonly promptTemplates?: readonly string[];
  /** Decoded pixels kept in memory per split, in bytes (default DEFAULT_CACHE_BYTES; 0 = decode on every read). */
  readonly cacheBytes?: number;
  /** Decodes in flight. */
  readonly concurrency?: number;
  /** Progress of scanning and image checking. */
  readonly onProgress?: (event: { split: 'train' | 'test'; stage: 'scan' | 'check'; done: number; total: number }) => void;
}

/**
 * Open the train split (`data.path`, read as `data.kind`) and the labelled
 * test split (`data.testPath`: class-subdirectory folder, CSV with a label
 * column, or shards whose .json has a label) of external data. Class names
 * are `data.classNames`, else the test split's sorted labels.
 */
export async function openExternalSplits(data: DataConfig, opts: ExternalOpenOptions): Promise<DatasetSplits> {
  const kind = data.kind as ExternalKind;
  if (!data.path) {
    throw new UserError(`data.kind ${kind} needs data.path`, 'CONFIG_INVALID', kind === 'webdataset' ? 'e.g. --data.path "shards/{00000..00099}.tar"' : kind === 'csv' ? 'e.g. --data.path train.csv' : 'e.g. --data.path images/');
  }
  if (!data.testPath) {
    throw new UserError(
      `data.kind ${kind}: zero-shot evaluation needs a labelled test split, and data.testPath is not set`,
      'CONFIG_INVALID',
      'set data.testPath to a folder with one subdirectory per class (or a CSV with a data.csvLabelKey column), and data.classNames to the class names in label order',
    );
  }
  const promptTemplates = opts.promptTemplates ?? data.promptTemplates ?? DEFAULT_PROMPTS;
  const explicitNames = data.classNames && data.classNames.length > 0 ? [...data.classNames] : null;
  const common = {
    geometry: { size: data.resize, fit: data.fit, channels: data.channels } as ImageGeometry,
    strict: data.strict,
    labelIndices: explicitNames !== null,
    seed: opts.seed,
    cacheBytes: opts.cacheBytes,
    concurrency: opts.concurrency,
  };
  const csv = { csvSeparator: data.csvSeparator, csvImageKey: data.csvImageKey, csvCaptionKey: data.csvCaptionKey, csvLabelKey: data.csvLabelKey };
  const progress = (split: 'train' | 'test') => (stage: 'scan' | 'check', done: number, total: number) => opts.onProgress?.({ split, stage, done, total });

  // Test first: without data.classNames, its labels name the classes.
  const testKind = inferKind(data.testPath, 'as data.testPath');
  // Test samples need no caption of their own: zero-shot evaluation reads only labels.
  const captionFallback = (label: RawLabel): string | null => {
    if (label === null) return null;
    const name = typeof label === 'number' ? (explicitNames?.[label] ?? String(label)) : label;
    return promptTemplates[0].replaceAll('{}', name);
  };
  const test = await openExternalDataset(
    { kind: testKind, path: data.testPath, labelled: true, ...csv, captionFallback },
    { ...common, classNames: explicitNames, size: data.testSize, stream: `${testKind}/test`, onProgress: progress('test') },
  );
  const classNames = test.classNames ?? [];
  if (classNames.length < 2) {
    throw new UserError(
      `test split ${data.testPath} has ${classNames.length} class${classNames.length === 1 ? '' : 'es'}; zero-shot evaluation needs at least 2`,
      'DATA_INVALID',
      'give data.classNames, and a test folder with one subdirectory per class (or a CSV with a label column)',
    );
  }
  const train = await openExternalDataset(
    { kind, path: data.path, labelled: false, ...csv },
    { ...common, classNames, size: data.size, stream: `${kind}/train`, onProgress: progress('train') },
  );
  for (const [split, ds, path] of [['train', train, data.path], ['test', test, data.testPath]] as const) {
    if (ds.size < 2) {
      const why = ds.skipped.reasons.slice(0, 3).map((r) => formatSkip(r));
      throw new UserError(
        `${split} split ${path} has ${ds.size} usable sample${ds.size === 1 ? '' : 's'} (${ds.skipped.count} skipped${why.length ? `: ${why.join('; ')}` : ''})`,
        'DATA_INVALID',
        'run `clip-backdoor-filter data inspect <path>` to see what is wrong with the data',
      );
    }
  }
  return {
    train,
    test,
    captionTemplates: data.captionTemplates ?? promptTemplates,
    promptTemplates,
    normalization: normalizationOf(train, data.channels),
  };
}

/** Per-channel statistics of the opened training images, or mean 0.5 / std 0.25 when none were decoded. */
export function normalizationOf(train: ExternalDataset, channels: number): { mean: number[]; std: number[] } {
  const s = train.stats;
  if (!s) return { mean: Array(channels).fill(0.5), std: Array(channels).fill(0.25) };
  // A constant channel would divide by zero; one grey level is the finest meaningful spread.
  return { mean: s.mean, std: s.std.map((v) => Math.max(v, 1 / 255)) };
}
