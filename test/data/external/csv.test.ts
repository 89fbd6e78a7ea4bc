import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { csvSeparatorFor, parseDelimited, readCsvTable, requireColumn } from '../../../src/util/csv.js';
import { UserError } from '../../../src/util/errors.js';
import { tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(tmp.cleanup);

describe('RFC 4180 parsing', () => {
  it('handles quoted separators, doubled quotes, newlines in quotes and CRLF, with start lines', () => {
    const text = 'filepath,title\r\na.jpg,"a, b"\r\n"b.jpg","say ""hi"""\r\nc.jpg,"two\nlines"\n\nd.jpg,plain\n';
    const { rows, unterminatedQuoteLine } = parseDelimited(text, ',');
    expect(unterminatedQuoteLine).toBeNull();
    expect(rows.map((r) => r.fields)).toEqual([
      ['filepath', 'title'],
      ['a.jpg', 'a, b'],
      ['b.jpg', 'say "hi"'],
      ['c.jpg', 'two\nlines'],
      ['d.jpg', 'plain'],
    ]);
    // c.jpg's caption spans lines 4-5, line 6 is blank, so d.jpg starts on line 7.
    expect(rows.map((r) => r.line)).toEqual([1, 2, 3, 4, 7]);
  });

  it('reads tabs, keeps empty fields, drops a BOM, and tolerates a missing final newline', () => {
    const { rows } = parseDelimited('\ufeffa\tb\tc\nx\t\t"q\tr"', '\t');
    expect(rows.map((r) => r.fields)).toEqual([
      ['a', 'b', 'c'],
      ['x', '', 'q\tr'],
    ]);
  });

  it('reports a quote that is never closed', () => {
    const parse = parseDelimited('a,b\n1,2\n3,"oops\n4,5\n', ',');
    expect(parse.rows).toHaveLength(2);
    expect(parse.unterminatedQuoteLine).toBe(3);
  });

  it('chooses the separator from the config, else from the extension', () => {
    expect(csvSeparatorFor('x.tsv')).toBe('\t');
    expect(csvSeparatorFor('x.TSV')).toBe('\t');
    expect(csvSeparatorFor('x.csv')).toBe(',');
    expect(csvSeparatorFor('x.tsv', ',')).toBe(',');
  });

  it('names the missing column, the columns present and the config key', () => {
    const path = join(tmp.dir, 'cols.csv');
    writeFileSync(path, 'image,caption\na.png,x\n');
    const table = readCsvTable(path, ',');
    expect(requireColumn(table, 'caption', 'data.csvCaptionKey', ',')).toBe(1);
    let error: unknown;
    try {
      requireColumn(table, 'filepath', 'data.csvImageKey', ',');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UserError);
    const u = error as UserError;
    expect(u.message).toContain('"filepath"');
    expect(u.message).toContain('"image", "caption"');
    expect(u.hint).toContain('data.csvImageKey');
  });

  it('rejects a file with no header row', () => {
    const path = join(tmp.dir, 'empty.csv');
    writeFileSync(path, '\n\n');
    expect(() => readCsvTable(path, ',')).toThrow(/header row/);
  });
});
