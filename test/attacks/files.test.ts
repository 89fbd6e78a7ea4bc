import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { createTrigger, PatchTrigger, writePreviewGrid, type PoisonSettings } from '../../src/attacks/index.js';
import type { ImageShape } from '../../src/data/types.js';
import { UserError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { flat, px, TinyDataset } from './tiny-dataset.js';

const dir = mkdtempSync(join(tmpdir(), 'cbf-attack-files-'));
const G28: ImageShape = [28, 28, 1];

async function solidPng(name: string, width: number, height: number, rgb: [number, number, number]): Promise<string> {
  const path = join(dir, name);
  await sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).png().toFile(path);
  return path;
}

const cfg = (over: Partial<PoisonSettings>): PoisonSettings => ({ attack: 'patch', target: 'trouser', ...over });

describe('user-supplied triggers', () => {
  it('patch: the image, resized to the patch side and converted to grey, at patchPosition in training and test', async () => {
    const image = await solidPng('red.png', 4, 4, [255, 0, 0]);
    const t = await createTrigger(cfg({ image, patchPosition: [2, 5] }), G28, 0);
    const img = flat(G28, 10);
    const out = t.applyTest(img, G28);
    expect(t.applyTrain(img, G28, new Rng(3))).toEqual(out);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const inside = y >= 5 && y < 8 && x >= 2 && x < 5;
        expect(px(out, G28, y, x)).toBe(inside ? 76 : 10); // Rec. 601 luma of red: 0.299 x 255
      }
    }
  });

  it('patch: keeps the aspect ratio; the transparent padding leaves the image visible', async () => {
    const image = await solidPng('wide.png', 6, 2, [0, 0, 255]);
    const shape: ImageShape = [8, 8, 3];
    const t = (await createTrigger(cfg({ image, patchFraction: 3 / 8 }), shape, 0)) as PatchTrigger;
    expect(t.placement(shape)).toMatchObject({ side: 3, test: { x: 5, y: 5 } });
    const out = t.applyTest(flat(shape, 100), shape);
    // 6x2 fitted into 3x3 is 3x1, centred: row 6 is blue, rows 5 and 7 untouched
    for (let x = 5; x < 8; x++) {
      expect([px(out, shape, 6, x, 0), px(out, shape, 6, x, 1), px(out, shape, 6, x, 2)]).toEqual([0, 0, 255]);
      expect(px(out, shape, 5, x, 2)).toBe(100);
      expect(px(out, shape, 7, x, 0)).toBe(100);
    }
  });

  it('patch: a position outside the image is a UserError', async () => {
    const image = await solidPng('red2.png', 4, 4, [255, 0, 0]);
    await expect(createTrigger(cfg({ image, patchPosition: [26, 0] }), G28, 0)).rejects.toThrow(/outside 28x28/);
  });

  it('blend and blended: user image mixed with alpha; alpha 0 is the identity', async () => {
    const image = await solidPng('grey.png', 10, 7, [200, 200, 200]);
    const img = Uint8Array.from({ length: 784 }, (_, i) => i % 256);
    const half = await createTrigger(cfg({ attack: 'blend', image, alpha: 0.5 }), G28, 0);
    const out = half.applyTest(img, G28);
    for (const i of [0, 1, 100, 255, 783]) expect(out[i]).toBe(Math.floor(0.5 * img[i] + 100 + 0.5));
    expect((await createTrigger(cfg({ attack: 'blended', image, alpha: 0.5 }), G28, 0)).applyTest(img, G28)).toEqual(out);
    expect((await createTrigger(cfg({ attack: 'blend', image, alpha: 0 }), G28, 0)).applyTest(img, G28)).toEqual(img);
    expect(half.describe()).toMatchObject({ name: 'blend', alpha: 0.5, pattern: { file: image } });
  });

  it('an unreadable image file is a UserError naming it', async () => {
    const missing = join(dir, 'nope.png');
    const e = await createTrigger(cfg({ attack: 'blend', image: missing }), G28, 0).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).message).toContain(missing);
  });
});

describe('preview grid', () => {
  it('draws clean | triggered pairs for every attack, nearest-neighbour upscaled', async () => {
    const ds = new TinyDataset(30);
    const path = join(dir, 'out', 'preview.png');
    const settings: PoisonSettings = { attack: 'badnets', target: 'ankle boot', position: 'fixed' };
    const res = await writePreviewGrid(path, ds, settings, { count: 4, seed: 2, scale: 2, labels: false });
    expect(res.rows).toEqual(['badnets', 'blended', 'sig', 'wanet', 'nashville', 'clean-label', 'multi-trigger']);
    expect([res.width, res.height]).toEqual([16 + 4 * 34 + 3 * 10, 16 + 7 * 16 + 6 * 10]);
    const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([res.width, res.height, 3]);
    const samples = Rng.derive(2, 'preview').sample(Int32Array.from({ length: 30 }, (_, i) => i), 4);
    const badnets = new PatchTrigger({ name: 'badnets', position: 'fixed', shape: [8, 8, 1] });
    const at = (x: number, y: number) => data[(y * info.width + x) * 3];
    for (let s = 0; s < 4; s++) {
      const left = 8 + s * 44;
      const clean = ds.image(samples[s]);
      const triggered = badnets.applyTest(clean, [8, 8, 1]);
      for (let y = 0; y < 16; y++) {
        for (let x = 0; x < 16; x++) {
          expect(at(left + x, 8 + y)).toBe(clean[Math.floor(y / 2) * 8 + Math.floor(x / 2)]);
          expect(at(left + 18 + x, 8 + y)).toBe(triggered[Math.floor(y / 2) * 8 + Math.floor(x / 2)]);
        }
      }
    }
    expect(readdirSync(join(dir, 'out'))).toEqual(['preview.png']);
  });

  it('adds rows for the user patch and blend when poison.image is set, and row labels by default', async () => {
    const image = await solidPng('logo.png', 5, 5, [0, 255, 0]);
    const ds = new TinyDataset(20, { shape: [28, 28, 3] });
    const res = await writePreviewGrid(join(dir, 'p2.png'), ds, { attack: 'multi-trigger', target: 'shirt', image, triggers: ['wanet', 'nashville'] }, { count: 3, seed: 0 });
    expect(res.rows.slice(-2)).toEqual(['patch', 'blend']);
    const meta = await sharp(res.path).metadata();
    expect([meta.width, meta.height]).toEqual([res.width, res.height]);
  });
});
