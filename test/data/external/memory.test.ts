import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { openExternalDataset } from '../../../src/data/external/open.js';
import { makeTar, tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(tmp.cleanup);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heap = () => {
  gc();
  gc();
  // Buffers live outside the JS heap: count their backing stores too.
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

describe('a shard of 10k tiny members', () => {
  it('is indexed with bounded memory: offsets and captions only, no image bytes', async () => {
    const noise = new Uint8Array(32 * 32 * 3);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919) % 251;
    const image = await sharp(noise, { raw: { width: 32, height: 32, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
    const samples = 5000;
    const path = join(tmp.dir, 'many.tar');
    const fd = openSync(path, 'w');
    // Written in chunks so the test itself never holds the archive.
    for (let start = 0; start < samples; start += 500) {
      const members = [];
      for (let i = start; i < start + 500; i++) {
        const key = String(i).padStart(6, '0');
        members.push({ name: `${key}.png`, data: image }, { name: `${key}.txt`, data: `caption number ${i}` });
      }
      const chunk = makeTar(members, { endMarker: start + 500 >= samples });
      writeSync(fd, chunk);
    }
    closeSync(fd);
    const memberBytes = samples * (image.length + 20);

    const before = heap();
    const t0 = performance.now();
    const ds = await openExternalDataset(
      { kind: 'webdataset', path, labelled: false, csvImageKey: 'filepath', csvCaptionKey: 'title', csvLabelKey: 'label' },
      { geometry: { size: 8, fit: 'crop', channels: 3 }, strict: true, validate: false, cacheBytes: 0 },
    );
    const seconds = (performance.now() - t0) / 1000;
    const grown = heap() - before;
    console.log(`10k members (${(memberBytes / 1e6).toFixed(1)} MB of member data): opened in ${seconds.toFixed(2)} s, heap + array buffers +${(grown / 1e6).toFixed(2)} MB`);
    expect(ds.size).toBe(samples);
    expect(ds.id(4321)).toBe('many.tar:004321');
    expect(ds.caption(4321)).toBe('caption number 4321');
    // Ids, captions and the offset table: a few hundred bytes per sample, far below the image bytes.
    expect(grown).toBeLessThan(memberBytes / 5);

    // Images come from disk on demand.
    const out = new Uint8Array(3 * 8 * 8 * 3);
    await ds.readImages([0, 2500, 4999], out);
    const first = out.subarray(0, 192);
    expect(Array.from(out.subarray(192, 384))).toEqual(Array.from(first));
    expect(first.some((v) => v !== 0)).toBe(true);
  });
});
