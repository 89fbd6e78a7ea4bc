import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { UserError } from './errors.js';

/** One data row and the 1-based file line it starts on (quoted newlines make rows span lines). */
export interface CsvRow {
  readonly fields: string[];
  readonly line: number;
}

export interface CsvParse {
  readonly rows: CsvRow[];
  /** Line where a quoted field was opened and never closed (its row is not in `rows`). */
  readonly unterminatedQuoteLine: number | null;
}

/**
 * RFC 4180 parsing: fields separated by `separator`, rows by LF or CRLF, a
 * field starting with `"` runs to the next lone `"` (`""` inside stands for
 * one quote) and may hold separators and newlines. Blank lines are ignored
 * and a leading byte-order mark is dropped.
 */
export function parseDelimited(text: string, separator: string): CsvParse {
  const rows: CsvRow[] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  let quoteLine = 0;
  const endRow = () => {
    row.push(field);
    if (row.length > 1 || row[0] !== '') rows.push({ fields: row, line: rowLine });
    row = [];
    field = '';
  };
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (ch === '\n') line++;
        field += ch;
      }
    } else if (ch === '"' && field === '') {
      quoted = true;
      quoteLine = line;
    } else if (ch === separator) {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      endRow();
      line++;
      rowLine = line;
    } else field += ch;
  }
  if (quoted) return { rows, unterminatedQuoteLine: quoteLine };
  endRow();
  return { rows, unterminatedQuoteLine: null };
}

/** `data.csvSeparator` if given, else tab for `.tsv` / `.tab` files and comma otherwise. */
export function csvSeparatorFor(path: string, configured?: string): string {
  if (configured) return configured;
  const ext = extname(path).toLowerCase();
  return ext === '.tsv' || ext === '.tab' ? '\t' : ',';
}

export interface CsvTable {
  readonly path: string;
  readonly header: string[];
  readonly rows: CsvRow[];
  readonly unterminatedQuoteLine: number | null;
}

/** Read a CSV/TSV file whose first row names the columns. */
export function readCsvTable(path: string, separator: string): CsvTable {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read CSV file ${path}: ${(e as Error).message}`, 'DATA_MISSING', 'check data.path / data.testPath');
  }
  const parsed = parseDelimited(text, separator);
  if (parsed.rows.length === 0) {
    throw new UserError(`CSV file ${path} is empty: it needs a header row naming the columns`, 'DATA_INVALID', 'add a header row, e.g. "filepath,title"');
  }
  const [head, ...rows] = parsed.rows;
  return { path, header: head.fields.map((h) => h.trim()), rows, unterminatedQuoteLine: parsed.unterminatedQuoteLine };
}

/** Position of column `name`, or a UserError naming the column, the ones present and the config key that chose it. */
export function requireColumn(table: CsvTable, name: string, configKey: string, separator: string): number {
  const at = table.header.indexOf(name);
  if (at >= 0) return at;
  const sepName = separator === '\t' ? 'tab' : JSON.stringify(separator);
  throw new UserError(
    `CSV file ${table.path} has no column "${name}" (columns: ${table.header.map((h) => JSON.stringify(h)).join(', ')}; separator ${sepName})`,
    'DATA_CSV_COLUMN',
    `set ${configKey} to the right column name (e.g. --${configKey} ${table.header[0] ?? 'filepath'}), or data.csvSeparator if the columns were split wrongly`,
  );
}
