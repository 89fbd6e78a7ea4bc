import { basename, extname } from 'node:path';
import sharp from 'sharp';
import { ExternalDataset } from './dataset.js';
import type { ImageGeometry } from './decode.js';
import { inferKind, openExternalDataset, type ExternalKind } from './open.js';
import { formatSkip, type SkipSummary } from './skips.js';

export interface InspectOptions {
  /** Default: from the spec (`.tar` → webdataset, `.csv/.tsv` → csv, directory → folder). */
  readonly kind?: ExternalKind;
  /** Read as a labelled test split (class subdirectories / label column / JSON label). */
  readonly labelled?: boolean;
  readonly classNames?: readonly string[];
  readonly csvImageKey?: string;
  readonly csvCaptionKey?: string;
  readonly csvLabelKey?: string;
  readonly csvSeparator?: string;
  /** Grid cell side and how images are fitted into it. */
  readonly geometry?: ImageGeometry;
  readonly strict?: boolean;
  /** Skip reasons listed in full. */
  readonly keepReasons?: number;
  readonly onProgress?: (stage: 'scan' | 'check', done: number, total: number) => void;
}

export interface SizeBucket {
  readonly width: number;
  readonly height: number;
  readonly count: number;
}

/** What `data inspect` prints (and `--json` writes). */
export interface InspectReport {
  readonly spec: string;
  readonly kind: ExternalKind;
  readonly samples: number;
  readonly skipped: SkipSummary;
  /** Original image sizes, most common first. */
  readonly sizes: readonly SizeBucket[];
  readonly formats: Readonly<Record<string, number>>;
  readonly caption: { readonly minChars: number; readonly medianChars: number; readonly maxChars: number } | null;
  /** Samples per class, when the source is labelled. */
  readonly classes: readonly { readonly name: string; readonly count: number }[] | null;
}

/** Open `spec`, checking every image, and summarise it. */
export async function inspectData(spec: string, opts: InspectOptions = {}): Promise<{ report: InspectReport; dataset: ExternalDataset }> {
  const kind = opts.kind ?? inferKind(spec, 'or pass --kind');
  const labelled = opts.labelled ?? false;
  const dataset = await openExternalDataset(
    {
      kind,
      path: spec,
      labelled,
      csvImageKey: opts.csvImageKey ?? 'filepath',
      csvCaptionKey: opts.csvCaptionKey ?? 'title',
      csvLabelKey: opts.csvLabelKey ?? 'label',
      csvSeparator: opts.csvSeparator,
      captionFallback: labelled ? (l) => (l === null ? null : `a photo of a ${l}.`) : undefined,
    },
    {
      geometry: opts.geometry ?? { size: 64, fit: 'crop', channels: 3 },
      strict: opts.strict ?? false,
      classNames: opts.classNames ?? null,
      labelIndices: opts.classNames !== undefined,
      cacheBytes: 0,
      recordSizes: true,
      keepReasons: opts.keepReasons ?? 20,
      onProgress: opts.onProgress,
    },
  );
  const sizeCounts = new Map<string, SizeBucket>();
  const formats: Record<string, number> = {};
  const lengths: number[] = [];
  for (let i = 0; i < dataset.size; i++) {
    const [width, height] = dataset.originalSize(i);
    const key = `${width}x${height}`;
    sizeCounts.set(key, { width, height, count: (sizeCounts.get(key)?.count ?? 0) + 1 });
    const f = dataset.format(i) ?? 'unknown';
    formats[f] = (formats[f] ?? 0) + 1;
    lengths.push(dataset.caption(i).length);
  }
  lengths.sort((a, b) => a - b);
  const sizes = [...sizeCounts.values()].sort((a, b) => b.count - a.count || a.width - b.width || a.height - b.height);
  let classes: { name: string; count: number }[] | null = null;
  if (dataset.classNames) {
    classes = dataset.classNames.map((name) => ({ name, count: 0 }));
    for (let i = 0; i < dataset.size; i++) if (dataset.label(i) >= 0) classes[dataset.label(i)].count++;
  }
  const caption = lengths.length ? { minChars: lengths[0], medianChars: lengths[Math.floor((lengths.length - 1) / 2)], maxChars: lengths[lengths.length - 1] } : null;
  return { report: { spec, kind, samples: dataset.size, skipped: dataset.skipped, sizes, formats, caption, classes }, dataset };
}

/** Human-readable report: counts, skips with reasons, a size histogram. */
export function formatInspectReport(r: InspectReport, maxSizes = 12): string {
  const lines: string[] = [];
  lines.push(`${r.kind} ${r.spec}`);
  lines.push(`samples: ${r.samples}`);
  const kinds = Object.entries(r.skipped.byKind).map(([k, n]) => `${k} ${n}`);
  lines.push(`skipped: ${r.skipped.count}${kinds.length ? ` (${kinds.join(', ')})` : ''}`);
  for (const e of r.skipped.reasons) lines.push(`  - ${formatSkip(e)}`);
  if (r.skipped.count > r.skipped.reasons.length) lines.push(`  ... and ${r.skipped.count - r.skipped.reasons.length} more`);
  if (r.classes) lines.push(`classes: ${r.classes.map((c) => `${c.name} ${c.count}`).join(', ')}`);
  const fmt = Object.entries(r.formats).map(([k, n]) => `${k} ${n}`);
  if (fmt.length) lines.push(`formats: ${fmt.join(', ')}`);
  if (r.caption) lines.push(`caption length (chars): min ${r.caption.minChars}, median ${r.caption.medianChars}, max ${r.caption.maxChars}`);
  if (r.sizes.length) {
    lines.push('image sizes (before resizing):');
    const peak = r.sizes[0].count;
    const width = String(peak).length;
    for (const b of r.sizes.slice(0, maxSizes)) {
      const bar = '#'.repeat(Math.max(1, Math.round((40 * b.count) / peak)));
      lines.push(`  ${`${b.width}x${b.height}`.padEnd(11)} ${String(b.count).padStart(width)} ${bar}`);
    }
    const rest = r.sizes.slice(maxSizes).reduce((a, b) => a + b.count, 0);
    if (rest) lines.push(`  (${r.sizes.length - maxSizes} other sizes: ${rest} images)`);
  }
  return lines.join('\n');
}

/** `<spec-basename>-grid.png`: the first spec's name without extension or brace syntax. */
export function defaultGridPath(spec: string): string {
  const first = spec.split('::')[0].trim().replace(/[/\\]+$/, '');
  const ext = extname(first);
  const stem = basename(first, ext === '.tar' || ext === '.csv' || ext === '.tsv' || ext === '.tab' ? ext : '')
    .replace(/[{}]/g, '')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[_.]+|_+$/g, '');
  return `${stem || 'data'}-grid.png`;
}

/** Indices spread evenly over the dataset (all of them when it has `count` or fewer). */
export function gridIndices(size: number, count: number): number[] {
  const k = Math.min(size, count);
  return Array.from({ length: k }, (_, j) => Math.floor((j * size) / k));
}

/**
 * Write a PNG contact sheet of up to `count` samples (evenly spaced over the
 * dataset, in index order, row-major), each cell as the dataset decodes it.
 */
export async function writeSampleGrid(dataset: ExternalDataset, path: string, count = 64, gap = 2): Promise<{ images: number; columns: number; rows: number }> {
  const indices = gridIndices(dataset.size, count);
  const [side, , channels] = dataset.imageShape;
  const columns = Math.max(1, Math.ceil(Math.sqrt(indices.length)));
  const rows = Math.max(1, Math.ceil(indices.length / columns));
  const width = columns * side + (columns + 1) * gap;
  const height = rows * side + (rows + 1) * gap;
  const sheet = new Uint8Array(width * height * 3).fill(40);
  const cells = new Uint8Array(indices.length * side * side * channels);
  await dataset.readImages(indices, cells);
  indices.forEach((_, j) => {
    const x0 = gap + (j % columns) * (side + gap);
    const y0 = gap + Math.floor(j / columns) * (side + gap);
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const src = ((j * side + y) * side + x) * channels;
        const dst = ((y0 + y) * width + x0 + x) * 3;
        for (let c = 0; c < 3; c++) sheet[dst + c] = cells[src + (channels === 1 ? 0 : c)];
      }
    }
  });
  await sharp(sheet, { raw: { width, height, channels: 3 } }).png().toFile(path);
  return { images: indices.length, columns, rows };
}
