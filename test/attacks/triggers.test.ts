import { describe, expect, it } from 'vitest';
import {
  BlendTrigger,
  blendPixels,
  checkerboard,
  MultiTrigger,
  NashvilleTrigger,
  nashvilleTables,
  noisePattern,
  PatchTrigger,
  patchSide,
  SigTrigger,
  sigSignal,
  WanetTrigger,
  wanetBound,
} from '../../src/attacks/index.js';
import type { ImageShape } from '../../src/data/types.js';
import { UserError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { flat, px } from './tiny-dataset.js';

const G28: ImageShape = [28, 28, 1];
const RGB8: ImageShape = [8, 8, 3];

function randomImage(shape: ImageShape, seed: number): Uint8Array {
  const rng = new Rng(seed, 'img');
  return Uint8Array.from({ length: shape[0] * shape[1] * shape[2] }, () => rng.int(256));
}

/** Bounding box of pixels that differ between a and b (1-channel). */
function changedBox(a: Uint8Array, b: Uint8Array, shape: ImageShape) {
  let y0 = Infinity, x0 = Infinity, y1 = -1, x1 = -1;
  for (let y = 0; y < shape[0]; y++) {
    for (let x = 0; x < shape[1]; x++) {
      if (px(a, shape, y, x) !== px(b, shape, y, x)) {
        y0 = Math.min(y0, y); x0 = Math.min(x0, x); y1 = Math.max(y1, y); x1 = Math.max(x1, x);
      }
    }
  }
  return { y0, x0, h: y1 - y0 + 1, w: x1 - x0 + 1 };
}

describe('badnets', () => {
  it('scales the patch side from 16 px at 224, at least 3 px', () => {
    expect(patchSide([224, 224, 3])).toBe(16);
    expect(patchSide([64, 64, 3])).toBe(5);
    expect(patchSide([28, 28, 1])).toBe(3);
    expect(patchSide([16, 16, 1])).toBe(3);
    expect(patchSide([8, 8, 1])).toBe(3);
    expect(patchSide([28, 28, 1], 0.25)).toBe(7);
    expect(() => patchSide([2, 2, 1])).toThrow(UserError);
    expect(() => patchSide([28, 28, 1], 0)).toThrow(UserError);
  });

  it('is black with white pixels on even rows and even columns', () => {
    expect(Array.from(checkerboard(3, 1))).toEqual([255, 0, 255, 0, 0, 0, 255, 0, 255]);
    const rgb = checkerboard(4, 3);
    // (0,2) white on all channels, (1,2) and (0,1) black
    expect(Array.from(rgb.subarray(6, 9))).toEqual([255, 255, 255]);
    expect(Array.from(rgb.subarray(18, 21))).toEqual([0, 0, 0]);
    expect(Array.from(rgb.subarray(3, 6))).toEqual([0, 0, 0]);
  });

  it('stamps the test patch flush in the bottom-right corner and leaves the rest and the input alone', () => {
    const t = new PatchTrigger({ name: 'badnets', position: 'random', shape: G28 });
    const img = flat(G28, 100);
    const out = t.applyTest(img, G28);
    expect(img.every((v) => v === 100)).toBe(true);
    const cb = checkerboard(3, 1);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const inPatch = y >= 25 && x >= 25;
        expect(px(out, G28, y, x)).toBe(inPatch ? cb[(y - 25) * 3 + (x - 25)] : 100);
      }
    }
    expect(t.placement(G28)).toEqual({ side: 3, jitter: 3, test: { x: 25, y: 25 } });
  });

  it('position fixed trains exactly at the test position', () => {
    const t = new PatchTrigger({ name: 'badnets', position: 'fixed', shape: G28 });
    const img = randomImage(G28, 1);
    const test = t.applyTest(img, G28);
    for (let s = 0; s < 5; s++) expect(t.applyTrain(img, G28, new Rng(s))).toEqual(test);
  });

  it('position random: a corner with 0..side px jitter, always inside, deterministic per rng', () => {
    const t = new PatchTrigger({ name: 'badnets', position: 'random', shape: G28 });
    const img = flat(G28, 100);
    const seen = new Set<string>();
    for (let s = 0; s < 400; s++) {
      const out = t.applyTrain(img, G28, new Rng(s, 'patch'));
      expect(t.applyTrain(img, G28, new Rng(s, 'patch'))).toEqual(out);
      const box = changedBox(img, out, G28);
      expect([box.h, box.w]).toEqual([3, 3]);
      for (const v of [box.y0, box.x0]) {
        expect(v >= 0 && v <= 25).toBe(true);
        expect(v <= 3 || v >= 22).toBe(true);
      }
      // the patch itself is the checkerboard
      expect(px(out, G28, box.y0, box.x0)).toBe(255);
      expect(px(out, G28, box.y0 + 1, box.x0 + 1)).toBe(0);
      seen.add(`${box.y0},${box.x0}`);
    }
    // 4 corners x 4 x 4 offsets = 64 placements, the test position among them
    expect(seen.size).toBeGreaterThan(50);
    expect(seen.size).toBeLessThanOrEqual(64);
    expect(seen.has('25,25')).toBe(true);
    expect(seen.has('0,0') && seen.has('0,25') && seen.has('25,0')).toBe(true);
  });

  it('stays inside small images (8x8) and paints white on every channel of RGB', () => {
    const t = new PatchTrigger({ name: 'badnets', position: 'random', shape: RGB8 });
    expect(t.placement(RGB8).jitter).toBe(3);
    const img = flat(RGB8, 7);
    for (let s = 0; s < 100; s++) {
      const out = t.applyTrain(img, RGB8, new Rng(s));
      let white = 0;
      for (let i = 0; i < out.length; i += 3) if (out[i] === 255) {
        white++;
        expect([out[i + 1], out[i + 2]]).toEqual([255, 255]);
      }
      expect(white).toBe(4);
    }
  });
});

describe('blended and blend arithmetic', () => {
  it('mixes exactly 0.8 image + 0.2 pattern', () => {
    const out = blendPixels(Uint8Array.from([100, 0, 255, 10, 3]), [200, 255, 0, 10, 4], 0.2);
    // 80+40, 0+51, 204+0, 8+2, 2.4+0.8 = 3.2
    expect(Array.from(out)).toEqual([120, 51, 204, 10, 3]);
    expect(Array.from(blendPixels(Uint8Array.from([10, 200]), [250, 0], 0.5))).toEqual([130, 100]);
  });

  it('uses a seeded noise pattern, the same in training and at test', () => {
    const a = noisePattern(G28, 5);
    expect(noisePattern(G28, 5)).toEqual(a);
    expect(noisePattern(G28, 6)).not.toEqual(a);
    const t = new BlendTrigger({ name: 'blended', alpha: 0.2, seed: 5, shape: G28 });
    const img = randomImage(G28, 2);
    const out = t.applyTest(img, G28);
    expect(t.applyTrain(img, G28, new Rng(99))).toEqual(out);
    for (const i of [0, 17, 300, 783]) expect(out[i]).toBe(Math.floor(0.8 * img[i] + 0.2 * a[i] + 0.5));
  });

  it('is the identity at alpha 0 and the pattern at alpha 1', () => {
    const img = randomImage(RGB8, 3);
    expect(new BlendTrigger({ name: 'blended', alpha: 0, seed: 1, shape: RGB8 }).applyTest(img, RGB8)).toEqual(img);
    expect(new BlendTrigger({ name: 'blended', alpha: 1, seed: 1, shape: RGB8 }).applyTest(img, RGB8)).toEqual(noisePattern(RGB8, 1));
  });

  it('rejects alpha outside [0, 1]', () => {
    expect(() => new BlendTrigger({ name: 'blended', alpha: 1.5, seed: 1, shape: G28 })).toThrow(UserError);
    expect(() => new SigTrigger({ alpha: -0.1, shape: G28 })).toThrow(/poison.alpha/);
  });
});

describe('sig', () => {
  it('is a 6-period sinusoid of amplitude 60 across the width', () => {
    const s = sigSignal(24);
    // sin(2 pi 6 x / 24) = sin(pi x / 2): 0, 1, 0, -1, ...
    expect(s[0]).toBe(0);
    expect(s[1]).toBeCloseTo(60, 12);
    expect(s[3]).toBeCloseTo(-60, 12);
    const w = 28;
    const t = sigSignal(w);
    let upCrossings = 0;
    for (let x = 0; x < w; x++) if (t[x] <= 0 && t[(x + 1) % w] > 0) upCrossings++;
    expect(upCrossings).toBe(6);
  });

  it('adds alpha x signal: max deviation 60 levels at alpha 1, 12 at the default 0.2', () => {
    const shape: ImageShape = [5, 24, 3];
    const img = flat(shape, 128);
    const full = new SigTrigger({ alpha: 1, shape }).applyTest(img, shape);
    const dflt = new SigTrigger({ shape }).applyTest(img, shape);
    const maxDev = (o: Uint8Array) => Math.max(...Array.from(o, (v, i) => Math.abs(v - img[i])));
    expect(maxDev(full)).toBe(60);
    expect(maxDev(dflt)).toBe(12);
    expect(px(full, shape, 0, 1)).toBe(188);
    expect(px(full, shape, 4, 3, 2)).toBe(68);
    expect(px(dflt, shape, 2, 1, 1)).toBe(140);
    // the same on every row and channel
    for (let y = 0; y < 5; y++) for (let x = 0; x < 24; x++) for (let k = 0; k < 3; k++) expect(px(dflt, shape, y, x, k)).toBe(px(dflt, shape, 0, x, 0));
  });

  it('is the identity at alpha 0 and clamps to 0..255', () => {
    const img = randomImage(G28, 4);
    expect(new SigTrigger({ alpha: 0, shape: G28 }).applyTest(img, G28)).toEqual(img);
    const bright = new SigTrigger({ alpha: 1, shape: G28 }).applyTest(flat(G28, 250), G28);
    expect(Math.max(...bright)).toBe(255);
    const dark = new SigTrigger({ alpha: 1, shape: G28 }).applyTest(flat(G28, 5), G28);
    expect(Math.min(...dark)).toBe(0);
  });
});

/** Bilinear interpolation written as a sum of tent kernels over all pixels (independent of the sampler). */
function bruteBilinear(img: Uint8Array, shape: ImageShape, sy: number, sx: number, k: number): number {
  const [h, w, c] = shape;
  const y = Math.min(h - 1, Math.max(0, sy));
  const x = Math.min(w - 1, Math.max(0, sx));
  let v = 0;
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) v += img[(i * w + j) * c + k] * Math.max(0, 1 - Math.abs(y - i)) * Math.max(0, 1 - Math.abs(x - j));
  }
  return v;
}

describe('wanet', () => {
  it('scales its bound with the image side: 1 px at 28 px, side/28 above', () => {
    expect(wanetBound([28, 28, 1])).toBe(1);
    expect(wanetBound([16, 16, 1])).toBe(1);
    expect(wanetBound([56, 56, 3])).toBe(2);
    expect(wanetBound([224, 224, 3])).toBe(8);
  });

  it('has a smooth field whose longest displacement is exactly the bound', () => {
    for (const shape of [G28, [56, 56, 1] as ImageShape, RGB8]) {
      const t = new WanetTrigger({ seed: 3, shape });
      const { dx, dy } = t.field(shape);
      let max = 0;
      let maxStep = 0;
      for (let i = 0; i < dx.length; i++) {
        max = Math.max(max, Math.hypot(dx[i], dy[i]));
        if ((i + 1) % shape[1] !== 0) maxStep = Math.max(maxStep, Math.hypot(dx[i + 1] - dx[i], dy[i + 1] - dy[i]));
        if (i + shape[1] < dx.length) maxStep = Math.max(maxStep, Math.hypot(dx[i + shape[1]] - dx[i], dy[i + shape[1]] - dy[i]));
      }
      expect(max).toBeLessThanOrEqual(t.bound(shape) + 1e-9);
      expect(max).toBeGreaterThan(t.bound(shape) - 1e-9);
      // smooth: Lipschitz in control-grid units (the interpolant of values within +-bound
      // moves at most a few bounds per grid cell), so at most ~4 bound / cell between pixels
      expect(maxStep).toBeLessThan((4 * t.bound(shape) * (t.grid - 1)) / (shape[1] - 1));
    }
  });

  it('matches a brute-force bilinear sampler on the warped coordinates', () => {
    for (const shape of [G28, RGB8]) {
      const t = new WanetTrigger({ seed: 11, shape });
      const img = randomImage(shape, 5);
      const out = t.applyTest(img, shape);
      const { dx, dy } = t.field(shape);
      for (let y = 0; y < shape[0]; y++) {
        for (let x = 0; x < shape[1]; x++) {
          const p = y * shape[1] + x;
          for (let k = 0; k < shape[2]; k++) {
            const ref = bruteBilinear(img, shape, y + dy[p], x + dx[p], k);
            expect(Math.abs(out[p * shape[2] + k] - ref)).toBeLessThanOrEqual(0.5 + 1e-9);
          }
        }
      }
    }
  });

  it('moves content by at most the bound (ramp image) and is the identity at strength 0', () => {
    const shape: ImageShape = [28, 28, 1];
    const ramp = Uint8Array.from({ length: 784 }, (_, i) => 8 * (i % 28));
    const t = new WanetTrigger({ seed: 2, shape });
    const out = t.applyTest(ramp, shape);
    let maxShift = 0;
    for (let i = 0; i < 784; i++) maxShift = Math.max(maxShift, Math.abs(out[i] - ramp[i]) / 8);
    expect(maxShift).toBeLessThanOrEqual(1 + 0.5 / 8);
    expect(maxShift).toBeGreaterThan(0.5);
    const img = randomImage(RGB8, 6);
    expect(new WanetTrigger({ seed: 2, shape: RGB8, maxDisplacement: 0 }).applyTest(img, RGB8)).toEqual(img);
  });

  it('is fixed given the seed', () => {
    const img = randomImage(G28, 7);
    const a = new WanetTrigger({ seed: 4, shape: G28 }).applyTest(img, G28);
    expect(new WanetTrigger({ seed: 4, shape: G28 }).applyTrain(img, G28, new Rng(1))).toEqual(a);
    expect(new WanetTrigger({ seed: 5, shape: G28 }).applyTest(img, G28)).not.toEqual(a);
  });
});

describe('nashville', () => {
  const tables = nashvilleTables();

  it('has non-decreasing tone curves (pointwise: shapes and edges are kept)', () => {
    for (let ch = 0; ch < 3; ch++) for (let v = 1; v < 256; v++) expect(tables.rgb[ch * 256 + v]).toBeGreaterThanOrEqual(tables.rgb[ch * 256 + v - 1]);
    for (let v = 1; v < 256; v++) expect(tables.grey[v]).toBeGreaterThan(tables.grey[v - 1] - 1);
    // a bright square on a dark ground stays exactly that square
    const shape: ImageShape = [8, 8, 3];
    const img = flat(shape, 20);
    for (let y = 2; y < 5; y++) for (let x = 3; x < 6; x++) img.fill(200, (y * 8 + x) * 3, (y * 8 + x) * 3 + 3);
    const out = new NashvilleTrigger({ shape }).applyTest(img, shape);
    for (let i = 0; i < out.length; i++) expect(out[i]).toBe(tables.rgb[(i % 3) * 256 + img[i]]);
    for (let p = 0; p < 64; p++) expect(out[p * 3] > tables.rgb[20]).toBe(img[p * 3] === 200);
  });

  it('colours grey RGB images and warms them', () => {
    const shape: ImageShape = [4, 4, 3];
    for (const v of [0, 60, 128, 255]) {
      const out = new NashvilleTrigger({ shape }).applyTest(flat(shape, v), shape);
      const [r, g, b] = out;
      expect(r === g && g === b).toBe(false);
    }
    const mid = new NashvilleTrigger({ shape }).applyTest(flat(shape, 160), shape);
    expect(mid[0]).toBeGreaterThan(mid[2]); // warm: red above blue in the mid-tones
  });

  it('filters 1-channel images as replicated RGB averaged back to grey', () => {
    const shape: ImageShape = [4, 4, 1];
    const img = Uint8Array.from({ length: 16 }, (_, i) => i * 17);
    const out = new NashvilleTrigger({ shape }).applyTest(img, shape);
    const rgbShape: ImageShape = [4, 4, 3];
    const rep = Uint8Array.from({ length: 48 }, (_, i) => img[Math.floor(i / 3)]);
    const rgb = new NashvilleTrigger({ shape: rgbShape }).applyTest(rep, rgbShape);
    for (let p = 0; p < 16; p++) expect(Math.abs(out[p] - (rgb[3 * p] + rgb[3 * p + 1] + rgb[3 * p + 2]) / 3)).toBeLessThanOrEqual(1);
    // black background lifted to about 69, white compressed to about 223
    expect(tables.grey[0]).toBe(69);
    expect(tables.grey[255]).toBe(223);
  });
});

describe('multi-trigger', () => {
  const parts = [
    new PatchTrigger({ name: 'badnets', position: 'random', shape: G28 }),
    new BlendTrigger({ name: 'blended', alpha: 0.2, seed: 1, shape: G28 }),
    new SigTrigger({ shape: G28 }),
  ];
  const multi = new MultiTrigger(parts);

  it('draws each trigger and applies the drawn one with the rest of the stream', () => {
    const img = randomImage(G28, 8);
    const counts = new Map<string, number>();
    for (let s = 0; s < 90; s++) {
      const r1 = new Rng(s, 'm');
      const chosen = multi.pick(r1);
      counts.set(chosen.name, (counts.get(chosen.name) ?? 0) + 1);
      expect(multi.applyTrain(img, G28, new Rng(s, 'm'))).toEqual(chosen.applyTrain(img, G28, r1));
    }
    expect([...counts.keys()].sort()).toEqual(['badnets', 'blended', 'sig']);
    expect(multi.testTriggers().map((t) => t.name)).toEqual(['badnets', 'blended', 'sig']);
    expect(multi.applyTest(img, G28)).toEqual(parts[0].applyTest(img, G28));
  });
});

describe('input validation', () => {
  it('refuses images that do not match the shape', () => {
    expect(() => new SigTrigger({ shape: G28 }).applyTest(new Uint8Array(10), G28)).toThrow(/784/);
  });
});
