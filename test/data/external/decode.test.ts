import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, ImageDecodeError, probeImage } from '../../../src/data/external/decode.js';
import { forEachLimit } from '../../../src/data/external/limit.js';
import { jpeg, png, rgbPixels } from './helpers.js';

/** 16x8 RGB: columns 0-3 red, 4-11 green, 12-15 blue. */
async function stripes(): Promise<Buffer> {
  const px = new Uint8Array(16 * 8 * 3);
  for (let y = 0; y < 8; y++) {
    for (let x = 0; x < 16; x++) {
      const c = x < 4 ? 0 : x < 12 ? 1 : 2;
      px[(y * 16 + x) * 3 + c] = 255;
    }
  }
  return sharp(px, { raw: { width: 16, height: 8, channels: 3 } }).png().toBuffer();
}

const pixel = (px: Uint8Array, size: number, x: number, y: number) => Array.from(px.subarray((y * size + x) * 3, (y * size + x) * 3 + 3));

describe('image decoding and fitting', () => {
  it('crop covers the square and keeps the centre', async () => {
    const px = await decodeImage(await stripes(), { size: 8, fit: 'crop', channels: 3 });
    expect(px.length).toBe(8 * 8 * 3);
    // Same height, so no resampling: the centre 8 columns (4..11) are all green.
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) expect(pixel(px, 8, x, y)).toEqual([0, 255, 0]);
  });

  it('pad fits the whole image inside and fills the rest with black', async () => {
    const px = await decodeImage(await stripes(), { size: 8, fit: 'pad', channels: 3 });
    // 16x8 → 8x4, centred: rows 0-1 and 6-7 are padding.
    for (const y of [0, 1, 6, 7]) for (let x = 0; x < 8; x++) expect(pixel(px, 8, x, y)).toEqual([0, 0, 0]);
    // Interior columns keep their stripe colour (red | green | blue at half scale).
    const [r0] = pixel(px, 8, 0, 3);
    const [, g3] = pixel(px, 8, 3, 3);
    const [, , b7] = pixel(px, 8, 7, 4);
    expect(r0).toBeGreaterThan(200);
    expect(g3).toBeGreaterThan(200);
    expect(b7).toBeGreaterThan(200);
  });

  it('converts to greyscale with one channel and drops alpha', async () => {
    const grey = await decodeImage(await png(6, 6, 3, 1), { size: 6, fit: 'crop', channels: 1 });
    expect(grey.length).toBe(36);
    const rgb = rgbPixels(6, 6, 3);
    for (let p = 0; p < 36; p++) expect(grey[p]).toBe(rgb[p * 3]);
    const fromRgba = await decodeImage(await png(5, 5, 9, 4), { size: 5, fit: 'crop', channels: 3 });
    expect(Array.from(fromRgba)).toEqual(Array.from(rgbPixels(5, 5, 9)));
    const greyToRgb = await decodeImage(await png(4, 4, 2, 1), { size: 4, fit: 'crop', channels: 3 });
    expect(greyToRgb[0]).toBe(greyToRgb[1]);
    expect(greyToRgb.length).toBe(48);
  });

  it('reports the original size and format when probing', async () => {
    const probe = await probeImage(await jpeg(20, 10, 1), { size: 8, fit: 'crop', channels: 3 });
    expect([probe.width, probe.height, probe.format]).toEqual([20, 10, 'jpeg']);
    expect(probe.pixels.length).toBe(8 * 8 * 3);
  });

  it('rejects garbage and truncated files, including a truncated JPEG whose header is intact', async () => {
    const g = { size: 8, fit: 'crop', channels: 3 } as const;
    await expect(decodeImage(new TextEncoder().encode('not an image at all'), g)).rejects.toBeInstanceOf(ImageDecodeError);
    const p = await png(16, 16, 4);
    await expect(probeImage(p.subarray(0, p.length - 30), g)).rejects.toBeInstanceOf(ImageDecodeError);
    const j = await jpeg(32, 32, 4);
    const cut = j.subarray(0, j.length - 60);
    expect((await sharp(cut).metadata()).width).toBe(32);
    await expect(probeImage(cut, g)).rejects.toThrow(/premature end|truncated|corrupt/i);
  });
});

describe('forEachLimit', () => {
  it('never runs more than the limit at once and visits every item', async () => {
    let running = 0;
    let peak = 0;
    const seen: number[] = [];
    await forEachLimit(Array.from({ length: 20 }, (_, i) => i), 3, async (item) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 1));
      seen.push(item);
      running--;
    });
    expect(peak).toBe(3);
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('rethrows the first failure after the running calls settle', async () => {
    let settled = 0;
    const run = forEachLimit([0, 1, 2, 3], 2, async (i) => {
      await new Promise((r) => setTimeout(r, i === 0 ? 5 : 1));
      settled++;
      if (i === 1) throw new Error('boom');
    });
    await expect(run).rejects.toThrow('boom');
    expect(settled).toBe(2);
  });
});
