import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../src/config/load.js';
import { DEFAULT_PROMPTS } from '../../../src/config/schema.js';
import { loadSplits } from '../../../src/data/index.js';
import type { ImageGeometry } from '../../../src/data/external/decode.js';
import { ExternalDataset } from '../../../src/data/external/dataset.js';
import { classNamesFromLabels, inferKind, openExternalDataset, resolveLabel, type SourceSpec } from '../../../src/data/external/open.js';
import { UserError } from '../../../src/util/errors.js';
import { makeTar, png, rgbPixels, tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(tmp.cleanup);
const geometry: ImageGeometry = { size: 8, fit: 'crop', channels: 3 };
const keys = { csvImageKey: 'filepath', csvCaptionKey: 'title', csvLabelKey: 'label' };
const csvSpec = (path: string, extra: Partial<SourceSpec> = {}): SourceSpec => ({ kind: 'csv', path, labelled: false, ...keys, ...extra });
const ids = (ds: ExternalDataset) => Array.from({ length: ds.size }, (_, i) => ds.id(i));

beforeAll(async () => {
  mkdirSync(join(tmp.dir, 'csv', 'img'), { recursive: true });
  for (let i = 0; i < 4; i++) writeFileSync(join(tmp.dir, 'csv', 'img', `${i}.png`), await png(8, 8, 10 + i));
  writeFileSync(join(tmp.dir, 'csv', 'img', 'broken.png'), 'not a png');
});

describe('csv source', () => {
  it('reads quoted captions, resolves paths against the CSV directory and keeps row order', async () => {
    const path = join(tmp.dir, 'csv', 'train.csv');
    writeFileSync(path, 'filepath,title\nimg/2.png,"a dog, running"\nimg/0.png,"multi\nline ""quoted"""\n' + `${join(tmp.dir, 'csv', 'img', '1.png')},absolute path\n`);
    const ds = await openExternalDataset(csvSpec(path), { geometry, strict: true });
    expect(ids(ds)).toEqual(['img/2.png', 'img/0.png', join(tmp.dir, 'csv', 'img', '1.png')]);
    expect(ds.caption(0)).toBe('a dog, running');
    expect(ds.caption(1)).toBe('multi\nline "quoted"');
    expect(ds.origin(2)).toEqual({ file: path, line: 5 });
    const out = new Uint8Array(192);
    await ds.readImages([0], out);
    expect(Array.from(out)).toEqual(Array.from(rgbPixels(8, 8, 12)));
  });

  it('skips rows with a missing file, bad field count, empty caption or broken image, with line numbers', async () => {
    const path = join(tmp.dir, 'csv', 'bad.tsv');
    writeFileSync(path, 'title\tfilepath\nok\timg/0.png\nmissing\timg/nope.png\n\timg/1.png\ntoo\tmany\tfields\nbroken\timg/broken.png\nlast\timg/3.png\n');
    const ds = await openExternalDataset(csvSpec(path), { geometry, strict: false });
    expect(ids(ds)).toEqual(['img/0.png', 'img/3.png']);
    expect(ds.skipped.count).toBe(4);
    const lines = ds.skipped.reasons.map((r) => [r.kind, r.line]);
    expect(lines).toEqual([
      ['missing-file', 3],
      ['missing-caption', 4],
      ['bad-row', 5],
      ['corrupt-image', 6],
    ]);
    expect(ds.skipped.reasons[0].reason).toMatch(/^image file img\/nope\.png not found/);
    expect(ds.skipped.reasons[3].reason).toContain(join(tmp.dir, 'csv', 'img', 'broken.png'));
  });

  it('fails fast under strict naming the CSV file and line', async () => {
    const path = join(tmp.dir, 'csv', 'strict.csv');
    writeFileSync(path, 'filepath,title\nimg/0.png,fine\nimg/gone.png,missing\nimg/1.png,never reached\n');
    const err = await openExternalDataset(csvSpec(path), { geometry, strict: true }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe(`bad input: ${path}:3: image file img/gone.png not found (looked for ${join(tmp.dir, 'csv', 'img', 'gone.png')})`);
  });

  it('names the missing column and its config key', async () => {
    const path = join(tmp.dir, 'csv', 'cols.csv');
    writeFileSync(path, 'path,caption\nimg/0.png,x\n');
    const err = await openExternalDataset(csvSpec(path), { geometry, strict: false }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toMatch(/no column "filepath" \(columns: "path", "caption"/);
    expect(err.hint).toMatch(/data\.csvImageKey/);
    const err2 = await openExternalDataset(csvSpec(path, { csvImageKey: 'path' }), { geometry, strict: false }).catch((e) => e);
    expect(err2.hint).toMatch(/data\.csvCaptionKey/);
    const ok = await openExternalDataset(csvSpec(path, { csvImageKey: 'path', csvCaptionKey: 'caption' }), { geometry, strict: false });
    expect(ok.size).toBe(1);
  });

  it('gives a repeated path a line suffix so ids stay unique', async () => {
    const path = join(tmp.dir, 'csv', 'dup.csv');
    writeFileSync(path, 'filepath,title\nimg/0.png,one\nimg/0.png,two\n');
    const ds = await openExternalDataset(csvSpec(path), { geometry, strict: true });
    expect(ids(ds)).toEqual(['img/0.png', 'img/0.png@3']);
  });

  it('reads a labelled test CSV without a caption column', async () => {
    const path = join(tmp.dir, 'csv', 'test.csv');
    writeFileSync(path, 'filepath,label\nimg/0.png,dog\nimg/1.png,cat\nimg/2.png,\nimg/3.png,cat\n');
    const ds = await openExternalDataset(csvSpec(path, { labelled: true, captionFallback: (l) => `a photo of a ${l}.` }), { geometry, strict: false });
    expect(ds.classNames).toEqual(['cat', 'dog']);
    expect([ds.label(0), ds.label(1), ds.label(2)]).toEqual([1, 0, 0]);
    expect(ds.caption(0)).toBe('a photo of a dog.');
    expect(ds.skipped.reasons[0]).toMatchObject({ kind: 'missing-label', line: 4 });
  });
});

describe('folder source', () => {
  beforeAll(async () => {
    const f = join(tmp.dir, 'folder');
    mkdirSync(join(f, 'b', 'deep'), { recursive: true });
    mkdirSync(join(f, 'a'), { recursive: true });
    const put = async (rel: string, seed: number, caption?: string) => {
      writeFileSync(join(f, rel), await png(8, 8, seed));
      if (caption !== undefined) writeFileSync(join(f, rel.replace(/\.[^.]+$/, '.txt')), caption);
    };
    await put('z.png', 1, 'zed');
    await put('a/2.png', 2, 'a two');
    await put('a/10.png', 3, 'a ten');
    await put('b/deep/x.webp', 4, 'webp named but png inside');
    await put('b/nocap.png', 5);
    writeFileSync(join(f, 'notes.md'), 'ignored');
    writeFileSync(join(f, '.hidden.png'), 'ignored');
    const t = join(tmp.dir, 'testfolder');
    for (const [cls, seeds] of [['dog', [1, 2]], ['cat', [3]], ['bird', [4]]] as const) {
      mkdirSync(join(t, cls), { recursive: true });
      for (const s of seeds) writeFileSync(join(t, cls, `${s}.png`), await png(8, 8, s));
    }
    writeFileSync(join(t, 'stray.png'), await png(8, 8, 9));
  });

  it('uses sorted relative paths as ids and skips images without a caption', async () => {
    const ds = await openExternalDataset({ kind: 'folder', path: join(tmp.dir, 'folder'), labelled: false, ...keys }, { geometry, strict: false });
    expect(ids(ds)).toEqual(['a/10.png', 'a/2.png', 'b/deep/x.webp', 'z.png']);
    expect(ds.caption(3)).toBe('zed');
    expect(ds.skipped.reasons).toEqual([{ kind: 'missing-caption', file: join(tmp.dir, 'folder', 'b/nocap.png'), reason: 'missing caption: no b/nocap.txt' }]);
  });

  it('labels a test folder by class subdirectory, classes sorted unless given', async () => {
    const spec: SourceSpec = { kind: 'folder', path: join(tmp.dir, 'testfolder'), labelled: true, ...keys, captionFallback: (l) => `a photo of a ${l}.` };
    const ds = await openExternalDataset(spec, { geometry, strict: false });
    expect(ds.classNames).toEqual(['bird', 'cat', 'dog']);
    expect(ids(ds)).toEqual(['bird/4.png', 'cat/3.png', 'dog/1.png', 'dog/2.png']);
    expect(Array.from({ length: 4 }, (_, i) => ds.label(i))).toEqual([0, 1, 2, 2]);
    expect(ds.skipped.reasons[0]).toMatchObject({ kind: 'missing-label', reason: 'image is not inside a class subdirectory' });
    const given = await openExternalDataset(spec, { geometry, strict: false, classNames: ['dog', 'cat'] });
    expect(ids(given)).toEqual(['cat/3.png', 'dog/1.png', 'dog/2.png']);
    expect(Array.from({ length: 3 }, (_, i) => given.label(i))).toEqual([1, 0, 0]);
    expect(given.skipped.reasons.map((r) => r.kind)).toEqual(['missing-label', 'missing-label']);
  });
});

describe('labels and kinds', () => {
  it('resolves labels by name, loosely, and by index only when allowed', () => {
    const names = ['t-shirt', 'ankle boot'];
    expect(resolveLabel('ankle boot', names, false)).toBe(1);
    expect(resolveLabel(' Ankle Boot ', names, false)).toBe(1);
    expect(resolveLabel(1, names, false)).toBe(-1);
    expect(resolveLabel(1, names, true)).toBe(1);
    expect(resolveLabel('0', names, true)).toBe(0);
    expect(resolveLabel(2, names, true)).toBe(-1);
    expect(resolveLabel(null, names, true)).toBe(-1);
    expect(classNamesFromLabels(['10', '9', '1', null, 9])).toEqual(['1', '9', '10']);
    expect(classNamesFromLabels(['b', 'B', 'a'])).toEqual(['B', 'a', 'b']);
  });

  it('infers the kind from the spec', () => {
    expect(inferKind('x/{000..009}.tar')).toBe('webdataset');
    expect(inferKind('a.tar::b.tar')).toBe('webdataset');
    expect(inferKind('x.TSV')).toBe('csv');
    expect(inferKind(tmp.dir)).toBe('folder');
    expect(() => inferKind(join(tmp.dir, 'nothing.zip'))).toThrow(UserError);
  });
});

describe('loadSplits on external data', () => {
  let trainSpec: string;
  beforeAll(async () => {
    const members = [];
    for (let i = 0; i < 6; i++) {
      members.push({ name: `${i}.png`, data: await png(8, 8, i) }, { name: `${i}.txt`, data: `a photo of a ${i % 2 ? 'cat' : 'dog'}` }, { name: `${i}.json`, data: JSON.stringify({ label: i % 2 ? 'cat' : 'dog' }) });
    }
    writeFileSync(join(tmp.dir, 'train-0.tar'), makeTar(members.slice(0, 9)));
    writeFileSync(join(tmp.dir, 'train-1.tar'), makeTar(members.slice(9)));
    trainSpec = join(tmp.dir, 'train-{0..1}.tar');
    const t = join(tmp.dir, 'splittest');
    for (const cls of ['dog', 'cat']) {
      mkdirSync(join(t, cls), { recursive: true });
      for (let s = 0; s < 2; s++) writeFileSync(join(t, cls, `${s}.png`), await png(8, 8, 20 + s));
    }
  });

  it('explains that zero-shot evaluation needs data.testPath and data.classNames', async () => {
    const config = resolveConfig({ data: { kind: 'webdataset', path: trainSpec } });
    const err = await loadSplits(config).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toMatch(/data\.testPath/);
    expect(err.hint).toMatch(/data\.classNames/);
  });

  it('opens webdataset train + folder test with classes, labels, templates and normalisation', async () => {
    const config = resolveConfig({ data: { kind: 'webdataset', path: trainSpec, testPath: join(tmp.dir, 'splittest'), resize: 8, size: 0, testSize: 0 } });
    const splits = await loadSplits(config);
    expect(splits.train.size).toBe(6);
    expect(splits.test.size).toBe(4);
    expect(splits.train.classNames).toEqual(['cat', 'dog']);
    expect(splits.test.classNames).toEqual(['cat', 'dog']);
    expect(Array.from({ length: 6 }, (_, i) => splits.train.label(i))).toEqual([1, 0, 1, 0, 1, 0]);
    expect(splits.train.id(4)).toBe('train-1.tar:4');
    expect(splits.promptTemplates).toEqual(DEFAULT_PROMPTS);
    expect(splits.captionTemplates).toEqual(DEFAULT_PROMPTS);
    expect(splits.normalization.mean).toHaveLength(3);
    expect(splits.normalization.std.every((s) => s > 0)).toBe(true);
    expect((splits.train as ExternalDataset).skipped).toEqual({ count: 0, byKind: {}, reasons: [] });
  });

  it('subsamples reproducibly with data.size and the seed', async () => {
    const make = (seed: number) => resolveConfig({ seed, data: { kind: 'webdataset', path: trainSpec, testPath: join(tmp.dir, 'splittest'), resize: 8, size: 3, testSize: 2, classNames: ['dog', 'cat'] } });
    const a = await loadSplits(make(1));
    const b = await loadSplits(make(1));
    expect(a.train.size).toBe(3);
    expect(a.test.size).toBe(2);
    const idsOf = (d: typeof a.train) => Array.from({ length: d.size }, (_, i) => d.id(i));
    expect(idsOf(a.train)).toEqual(idsOf(b.train));
    expect(a.train.classNames).toEqual(['dog', 'cat']);
  });

  it('takes a labelled test split from shards whose .json holds the label', async () => {
    const splits = await loadSplits(resolveConfig({ data: { kind: 'webdataset', path: trainSpec, testPath: trainSpec, resize: 8, size: 0, testSize: 0 } }));
    expect(splits.test.classNames).toEqual(['cat', 'dog']);
    expect(Array.from({ length: 6 }, (_, i) => splits.test.label(i))).toEqual([1, 0, 1, 0, 1, 0]);
    expect(splits.test.caption(1)).toBe('a photo of a cat');
  });

  it('opens csv and folder kinds through the config', async () => {
    const csvPath = join(tmp.dir, 'csv', 'cfg.csv');
    writeFileSync(csvPath, 'filepath,title\nimg/0.png,zero\nimg/1.png,one\n');
    const csv = await loadSplits(resolveConfig({ data: { kind: 'csv', path: csvPath, testPath: join(tmp.dir, 'splittest'), resize: 8, channels: 1, fit: 'pad' } }));
    expect(csv.train.imageShape).toEqual([8, 8, 1]);
    expect(csv.normalization.mean).toHaveLength(1);
    const folder = await loadSplits(resolveConfig({ data: { kind: 'folder', path: join(tmp.dir, 'folder'), testPath: join(tmp.dir, 'splittest'), resize: 8 } }));
    expect(folder.train.size).toBe(4);
  });
});
