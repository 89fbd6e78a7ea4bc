import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import yargs from 'yargs';
import * as dataCommand from '../../../src/cli/commands/data.js';
import { defaultGridPath, formatInspectReport, gridIndices, inspectData, writeSampleGrid } from '../../../src/data/external/inspect.js';
import { jpeg, makeTar, png, rgbPixels, tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(tmp.cleanup);
let shards: string;

beforeAll(async () => {
  const members = [];
  for (let i = 0; i < 5; i++) members.push({ name: `${i}.png`, data: await png(8, 8, i) }, { name: `${i}.txt`, data: `caption ${i}` });
  members.push({ name: 'w.jpg', data: await jpeg(20, 10, 1) }, { name: 'w.txt', data: 'wide' });
  members.push({ name: 'bad.png', data: 'garbage' }, { name: 'bad.txt', data: 'broken' });
  writeFileSync(join(tmp.dir, 'ins-0.tar'), makeTar(members));
  writeFileSync(join(tmp.dir, 'ins-1.tar'), new Uint8Array(0));
  shards = join(tmp.dir, 'ins-{0..1}.tar');
});

describe('data inspect', () => {
  it('counts samples, skips, formats and original sizes', async () => {
    const { report } = await inspectData(shards, { geometry: { size: 8, fit: 'crop', channels: 3 } });
    expect(report.kind).toBe('webdataset');
    expect(report.samples).toBe(6);
    expect(report.skipped.count).toBe(2);
    expect(report.skipped.byKind).toEqual({ 'empty-shard': 1, 'corrupt-image': 1 });
    expect(report.sizes).toEqual([
      { width: 8, height: 8, count: 5 },
      { width: 20, height: 10, count: 1 },
    ]);
    expect(report.formats).toEqual({ png: 5, jpeg: 1 });
    const text = formatInspectReport(report);
    expect(text).toContain('samples: 6');
    expect(text).toContain('skipped: 2 (empty-shard 1, corrupt-image 1)');
    expect(text).toMatch(/member bad\.png: corrupt or truncated image/);
    expect(text).toMatch(/8x8 +5 #{40}/);
    expect(text).toMatch(/20x10 +1 #{8}\n?/);
  });

  it('writes a grid whose cells are the decoded samples', async () => {
    const { dataset } = await inspectData(shards, { geometry: { size: 8, fit: 'crop', channels: 3 } });
    const path = join(tmp.dir, 'grid.png');
    const grid = await writeSampleGrid(dataset, path, 4, 2);
    expect(grid).toEqual({ images: 4, columns: 2, rows: 2 });
    const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([2 * 8 + 3 * 2, 2 * 8 + 3 * 2]);
    // gridIndices(6, 4) = 0, 1, 3, 4: the second cell (top right) is sample 1.
    expect(gridIndices(6, 4)).toEqual([0, 1, 3, 4]);
    const src = rgbPixels(8, 8, 1);
    const x0 = 2 + 8 + 2;
    const y0 = 2;
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        const got = Array.from(data.subarray(((y0 + y) * info.width + x0 + x) * 3, ((y0 + y) * info.width + x0 + x) * 3 + 3));
        expect(got).toEqual(Array.from(src.subarray((y * 8 + x) * 3, (y * 8 + x) * 3 + 3)));
      }
    }
  });

  it('names the default grid after the spec', () => {
    expect(defaultGridPath('data/{00000..00099}.tar')).toBe('00000..00099-grid.png');
    expect(defaultGridPath('data/train.csv')).toBe('train-grid.png');
    expect(defaultGridPath('images/')).toBe('images-grid.png');
    expect(defaultGridPath('a/shard-{0..3}.tar::b/x.tar')).toBe('shard-0..3-grid.png');
  });

  it('runs as a CLI command and prints the report', async () => {
    const folder = join(tmp.dir, 'labelled');
    for (const cls of ['cat', 'dog']) {
      mkdirSync(join(folder, cls), { recursive: true });
      writeFileSync(join(folder, cls, 'a.png'), await png(12, 6, cls.length));
    }
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    const gridPath = join(tmp.dir, 'cli-grid.png');
    try {
      await yargs(['data', 'inspect', folder, '--labelled', '--grid', gridPath, '--count', '2', '--size', '16'])
        .command(dataCommand.command, dataCommand.describe, dataCommand.builder, dataCommand.handler)
        .parserConfiguration({ 'dot-notation': true, 'camel-case-expansion': true })
        .strict()
        .fail((msg, err) => {
          throw err ?? new Error(msg);
        })
        .parseAsync();
    } finally {
      spy.mockRestore();
    }
    const text = out.join('');
    expect(text).toContain('folder ' + folder);
    expect(text).toContain('samples: 2');
    expect(text).toContain('classes: cat 1, dog 1');
    expect(text).toMatch(/12x6 +2 #/);
    expect(text).toContain(`sample grid: ${gridPath} (2 images, 2x1)`);
    expect(existsSync(gridPath)).toBe(true);
  });
});
