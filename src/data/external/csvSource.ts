import { statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { readCsvTable, requireColumn } from '../../util/csv.js';
import { SampleTable } from './table.js';
import type { ScanOptions } from './webdataset.js';

export interface CsvScanOptions extends ScanOptions {
  readonly separator: string;
  readonly imageKey: string;
  readonly captionKey: string;
  readonly labelKey: string;
}

/**
 * Index a CSV/TSV of image paths and captions (open_clip's
 * `--csv-img-key/--csv-caption-key` layout). Paths are relative to the
 * CSV's directory; ids are the path column values as written (a repeated
 * path gets `@<line>`), and rows keep file order. The caption column may
 * be absent when `captionFallback` is given; the label column is used
 * when present and required with `requireLabel`.
 */
export function scanCsv(path: string, opts: CsvScanOptions): SampleTable {
  const csv = readCsvTable(path, opts.separator);
  const imageCol = requireColumn(csv, opts.imageKey, 'data.csvImageKey', opts.separator);
  const captionCol = opts.captionFallback ? csv.header.indexOf(opts.captionKey) : requireColumn(csv, opts.captionKey, 'data.csvCaptionKey', opts.separator);
  const labelCol = opts.requireLabel ? requireColumn(csv, opts.labelKey, 'data.csvLabelKey', opts.separator) : csv.header.indexOf(opts.labelKey);
  const base = dirname(resolve(path));
  const table = new SampleTable();
  const seen = new Set<string>();
  csv.rows.forEach((row, n) => {
    const bad = (kind: 'bad-row' | 'missing-file' | 'missing-caption' | 'missing-label', reason: string) =>
      opts.skips.add({ kind, file: path, line: row.line, reason });
    if (row.fields.length !== csv.header.length) {
      return bad('bad-row', `row has ${row.fields.length} fields, the header has ${csv.header.length} (quote fields that contain the separator)`);
    }
    const written = row.fields[imageCol].trim();
    if (written === '') return bad('bad-row', `empty ${opts.imageKey} field`);
    const imagePath = isAbsolute(written) ? written : resolve(base, written);
    const stat = statSync(imagePath, { throwIfNoEntry: false });
    if (!stat || !stat.isFile()) return bad('missing-file', `image file ${written} not found (looked for ${imagePath})`);
    const label = labelCol >= 0 && row.fields[labelCol].trim() !== '' ? row.fields[labelCol].trim() : null;
    if (opts.requireLabel && label === null) return bad('missing-label', `empty ${opts.labelKey} field`);
    let caption = captionCol >= 0 ? row.fields[captionCol].trim() : '';
    if (!caption) caption = opts.captionFallback?.(label) ?? '';
    if (!caption) return bad('missing-caption', `empty ${opts.captionKey} field`);
    const id = seen.has(written) ? `${written}@${row.line}` : written;
    seen.add(written);
    table.push({ id, caption, label, imageFile: imagePath, origin: { file: path, line: row.line } });
    if ((n + 1) % 10000 === 0) opts.onProgress?.(n + 1, csv.rows.length);
  });
  if (csv.unterminatedQuoteLine !== null) {
    opts.skips.add({ kind: 'bad-row', file: path, line: csv.unterminatedQuoteLine, reason: 'quoted field is never closed: the rest of the file was not read' });
  }
  opts.onProgress?.(csv.rows.length, csv.rows.length);
  return table;
}
