import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openExternalDataset, type SourceSpec } from '../../../src/data/external/open.js';
import type { ImageGeometry } from '../../../src/data/external/decode.js';
import { UserError } from '../../../src/util/errors.js';
import { makeTar, png, rgbPixels, tempDir, type TestMember } from './helpers.js';

const tmp = tempDir();
afterAll(tmp.cleanup);

const geometry: ImageGeometry = { size: 8, fit: 'crop', channels: 3 };
const spec = (path: string, labelled = false): SourceSpec => ({ kind: 'webdataset', path, labelled, csvImageKey: 'filepath', csvCaptionKey: 'title', csvLabelKey: 'label' });

async function sample(key: string, seed: number, extra: Partial<Record<'txt' | 'json', string>> = {}): Promise<TestMember[]> {
  return [
    { name: `${key}.png`, data: await png(8, 8, seed) },
    { name: `${key}.txt`, data: extra.txt ?? `caption ${key}\n` },
    ...(extra.json !== undefined ? [{ name: `${key}.json`, data: extra.json }] : []),
  ];
}

describe('webdataset: ids, order and pixels', () => {
  let shardSpec: string;
  beforeAll(async () => {
    // Shard 0 interleaves members of two samples: order is that of each key's first member.
    const s0 = [...(await sample('b', 1, { json: '{"label":"cat"}' })), ...(await sample('a', 2, { json: '{"label":1}' }))];
    s0.splice(1, 0, { name: 'z.png', data: await png(8, 8, 3) });
    s0.push({ name: 'z.txt', data: 'caption z' }, { name: 'README', data: 'not a sample part' }, { name: 'z.cls', data: '3' });
    writeFileSync(join(tmp.dir, 'ok-00.tar'), makeTar(s0));
    writeFileSync(join(tmp.dir, 'ok-01.tar'), makeTar([...(await sample('sub/c', 4)), ...(await sample('d', 5))]));
    shardSpec = join(tmp.dir, 'ok-{00..01}.tar');
  });

  it('orders samples by shard then first member, with shard:key ids', async () => {
    const ds = await openExternalDataset(spec(shardSpec), { geometry, strict: true, classNames: ['dog', 'cat'], labelIndices: true });
    expect(ds.size).toBe(5);
    expect(Array.from({ length: 5 }, (_, i) => ds.id(i))).toEqual(['ok-00.tar:b', 'ok-00.tar:z', 'ok-00.tar:a', 'ok-01.tar:sub/c', 'ok-01.tar:d']);
    expect(ds.caption(0)).toBe('caption b');
    expect(ds.caption(1)).toBe('caption z');
    // JSON labels: a class name, or an index into the given class names.
    expect([ds.label(0), ds.label(1), ds.label(2), ds.label(3)]).toEqual([1, -1, 1, -1]);
    expect(ds.skipped.count).toBe(0);
    expect(ds.origin(3)).toEqual({ file: join(tmp.dir, 'ok-01.tar'), member: 'sub/c.png' });
    // Opening twice gives the same indices.
    const again = await openExternalDataset(spec(shardSpec), { geometry, strict: true });
    expect(Array.from({ length: 5 }, (_, i) => again.id(i))).toEqual(Array.from({ length: 5 }, (_, i) => ds.id(i)));
  });

  it('yields exactly the source pixels of lossless PNGs, cached or decoded, in any index order', async () => {
    const seeds = [1, 3, 2, 4, 5];
    for (const cacheBytes of [0, 1 << 20]) {
      const ds = await openExternalDataset(spec(shardSpec), { geometry, strict: true, cacheBytes, recordSizes: true });
      const order = [4, 0, 2, 2, 3, 1];
      const out = new Uint8Array(order.length * 192);
      await ds.readImages(order, out);
      order.forEach((i, r) => expect(Array.from(out.subarray(r * 192, (r + 1) * 192)), `cache ${cacheBytes}, index ${i}`).toEqual(Array.from(rgbPixels(8, 8, seeds[i]))));
      expect(ds.originalSize(0)).toEqual([8, 8]);
      expect(ds.format(0)).toBe('png');
    }
  });

  it('computes per-channel mean and std of the decoded training pixels', async () => {
    const ds = await openExternalDataset(spec(shardSpec), { geometry, strict: true });
    const seeds = [1, 3, 2, 4, 5];
    const sum = [0, 0, 0];
    const sq = [0, 0, 0];
    for (const s of seeds) {
      const px = rgbPixels(8, 8, s);
      for (let i = 0; i < px.length; i++) {
        sum[i % 3] += px[i] / 255;
        sq[i % 3] += (px[i] / 255) ** 2;
      }
    }
    const count = seeds.length * 64;
    for (let c = 0; c < 3; c++) {
      const mean = sum[c] / count;
      expect(ds.stats!.mean[c]).toBeCloseTo(mean, 10);
      expect(ds.stats!.std[c]).toBeCloseTo(Math.sqrt(sq[c] / count - mean * mean), 10);
    }
  });
});

describe('webdataset: bad input is skipped and counted', () => {
  let badSpec: string;
  let goodPng: Buffer;
  beforeAll(async () => {
    goodPng = await png(8, 8, 7);
    const cutPng = (await png(16, 16, 8)).subarray(0, 60);
    const s0: TestMember[] = [
      ...(await sample('good1', 1)),
      { name: 'corrupt.jpg', data: 'this is not a jpeg' },
      { name: 'corrupt.txt', data: 'corrupt caption' },
      { name: 'cut.png', data: cutPng },
      { name: 'cut.txt', data: 'truncated image' },
      { name: 'nocap.png', data: goodPng },
      { name: 'link.png', type: '2' },
      { name: 'link.txt', data: 'symlink image' },
      { name: 'badutf.png', data: goodPng },
      { name: 'badutf.txt', data: new Uint8Array([0x61, 0xff, 0xfe]) },
      { name: 'badjson.png', data: goodPng },
      { name: 'badjson.txt', data: 'ok' },
      { name: 'badjson.json', data: '{"label": ' },
      { name: '../evil.png', data: goodPng },
      { name: '/abs/evil.png', data: goodPng },
      { name: 'capsonly.txt', data: 'no image' },
      ...(await sample('good2', 2)),
    ];
    writeFileSync(join(tmp.dir, 'bad-0.tar'), makeTar(s0));
    writeFileSync(join(tmp.dir, 'bad-1.tar'), new Uint8Array(0));
    writeFileSync(join(tmp.dir, 'bad-2.tar'), new Uint8Array(1024)); // only the end marker
    // Cut inside the second sample's image: the first sample is kept.
    const s3 = makeTar([...(await sample('kept', 3)), ...(await sample('lost', 4))]);
    writeFileSync(join(tmp.dir, 'bad-3.tar'), s3.subarray(0, 512 * 4 + 512 + 100));
    // bad-4.tar does not exist.
    badSpec = `${join(tmp.dir, 'bad-{0..4}.tar')}`;
  });

  it('keeps only the good samples and explains each skip with file and member', async () => {
    const ds = await openExternalDataset(spec(badSpec), { geometry, strict: false });
    expect(Array.from({ length: ds.size }, (_, i) => ds.id(i))).toEqual(['bad-0.tar:good1', 'bad-0.tar:good2', 'bad-3.tar:kept']);
    const s = ds.skipped;
    expect(s.byKind).toEqual({
      'unsafe-path': 2,
      'unreadable-member': 3,
      'missing-caption': 1,
      'missing-image': 1,
      'empty-shard': 2,
      'truncated-shard': 1,
      'unreadable-shard': 1,
      'corrupt-image': 2,
    });
    expect(s.count).toBe(13);
    expect(s.reasons).toHaveLength(10);
    const text = s.reasons.map((r) => `${r.file.split('/').pop()}|${r.member ?? ''}|${r.reason}`);
    expect(text).toContain('bad-0.tar|../evil.png|unsafe path (absolute or with "..": it would escape the extraction directory); not used');
    expect(text.some((t) => t.startsWith('bad-0.tar|/abs/evil.png|unsafe path'))).toBe(true);
    expect(text.some((t) => t.startsWith('bad-0.tar|link.png|symlink member'))).toBe(true);
    expect(text.some((t) => t.startsWith('bad-0.tar|badutf.txt|txt member is not valid UTF-8'))).toBe(true);
    expect(text.some((t) => t.startsWith('bad-0.tar|badjson.json|invalid JSON'))).toBe(true);
    expect(text.some((t) => t.startsWith('bad-0.tar|nocap.png|missing caption'))).toBe(true);
    expect(text.some((t) => t.startsWith('bad-0.tar|capsonly.*|sample has no image'))).toBe(true);
    expect(text).toContain('bad-1.tar||empty shard (0 bytes)');
    expect(text).toContain('bad-2.tar||empty shard (no members)');
    expect(text.some((t) => /^bad-3\.tar\|lost\.png\|archive ends inside member lost\.png .*complete members before it are kept/.test(t))).toBe(true);
  });

  it('reports corrupt and truncated images found by decoding (beyond the first ten reasons)', async () => {
    const ds = await openExternalDataset(spec(join(tmp.dir, 'bad-0.tar')), { geometry, strict: false });
    const corrupt = ds.skipped.reasons.filter((r) => r.kind === 'corrupt-image');
    expect(corrupt.map((r) => r.member)).toEqual(['corrupt.jpg', 'cut.png']);
    expect(corrupt[0].reason).toMatch(/corrupt or truncated image \(.*unsupported image format/);
    expect(ds.size).toBe(2);
  });

  it('fails fast under strict with the file and member', async () => {
    // Tar structure is checked while scanning, before any image is decoded: the symlink comes first.
    const err = await openExternalDataset(spec(badSpec), { geometry, strict: true }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe(`bad input: ${join(tmp.dir, 'bad-0.tar')}: member link.png: symlink member, not a regular file`);
    expect(err.hint).toMatch(/data\.strict/);
  });

  it('strict mode names an image that does not decode', async () => {
    writeFileSync(join(tmp.dir, 'corrupt-only.tar'), makeTar([...(await sample('ok', 1)), { name: 'bad.jpg', data: 'garbage' }, { name: 'bad.txt', data: 'x' }]));
    const err = await openExternalDataset(spec(join(tmp.dir, 'corrupt-only.tar')), { geometry, strict: true }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe(`bad input: ${join(tmp.dir, 'corrupt-only.tar')}: member bad.jpg: corrupt or truncated image (Input buffer contains unsupported image format)`);
  });

  it('strict mode names a truncated shard', async () => {
    const err = await openExternalDataset(spec(join(tmp.dir, 'bad-3.tar')), { geometry, strict: true }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toMatch(/bad-3\.tar: member lost\.png: archive ends inside member lost\.png/);
  });

  it('never writes a member anywhere, however it is named', async () => {
    const outside = join(tmp.dir, 'evil.png');
    await openExternalDataset(spec(join(tmp.dir, 'bad-0.tar')), { geometry, strict: false });
    const { existsSync } = await import('node:fs');
    expect(existsSync(outside)).toBe(false);
  });

  it('keeps the samples before a corrupt header and reports the rest of the shard as unreadable', async () => {
    const members = [...(await sample('before', 1)), { name: 'x.png', data: await png(8, 8, 2), corruptChecksum: true }, ...(await sample('after', 3))];
    writeFileSync(join(tmp.dir, 'corrupt-header.tar'), makeTar(members));
    const ds = await openExternalDataset(spec(join(tmp.dir, 'corrupt-header.tar')), { geometry, strict: false });
    expect(Array.from({ length: ds.size }, (_, i) => ds.id(i))).toEqual(['corrupt-header.tar:before']);
    expect(ds.skipped.reasons).toEqual([
      {
        kind: 'unreadable-member',
        file: join(tmp.dir, 'corrupt-header.tar'),
        reason: 'corrupt tar header at byte 2048 (checksum mismatch); the rest of the shard is unreadable, the members before it are kept',
      },
    ]);
  });

  it('skips a shard that is a dangling symlink as unreadable', async () => {
    const link = join(tmp.dir, 'dangling.tar');
    symlinkSync(join(tmp.dir, 'nowhere.tar'), link);
    writeFileSync(join(tmp.dir, 'fine.tar'), makeTar(await sample('x', 1)));
    const ds = await openExternalDataset(spec(`${link}::${join(tmp.dir, 'fine.tar')}`), { geometry, strict: false });
    expect(ds.size).toBe(1);
    expect(ds.skipped.reasons[0]).toMatchObject({ kind: 'unreadable-shard', reason: 'shard file not found' });
  });
});
