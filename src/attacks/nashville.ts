import type { ImageShape } from '../data/types.js';
import type { Rng } from '../util/rng.js';
import { checkImage, toByte, type Trigger } from './trigger.js';

/**
 * Tone curves (input level -> output level), one per RGB channel, linear
 * between the points: lifted, blue-leaning blacks, warm highlights, blue
 * compressed at the top. Our own Nashville-like look, not Instagram's exact filter.
 */
export const NASHVILLE_CURVES: Readonly<Record<'r' | 'g' | 'b', readonly (readonly [number, number])[]>> = {
  r: [[0, 40], [64, 104], [128, 170], [192, 222], [255, 252]],
  g: [[0, 20], [64, 80], [128, 142], [192, 200], [255, 238]],
  b: [[0, 72], [64, 104], [128, 134], [192, 160], [255, 184]],
};
/** Warm tint mixed in after the curves: out = (1 - t) * curve + t * tint. */
export const NASHVILLE_TINT = [255, 214, 170] as const;
export const NASHVILLE_TINT_WEIGHT = 0.15;

function curveAt(points: readonly (readonly [number, number])[], v: number): number {
  for (let i = 1; i < points.length; i++) {
    const [x1, y1] = points[i];
    if (v <= x1) {
      const [x0, y0] = points[i - 1];
      return y0 + ((v - x0) * (y1 - y0)) / (x1 - x0);
    }
  }
  return points[points.length - 1][1];
}

/** Un-rounded output of channel `ch` (0 = R, 1 = G, 2 = B) for input level v. */
function nashvilleLevel(ch: number, v: number): number {
  const curve = ch === 0 ? NASHVILLE_CURVES.r : ch === 1 ? NASHVILLE_CURVES.g : NASHVILLE_CURVES.b;
  return (1 - NASHVILLE_TINT_WEIGHT) * curveAt(curve, v) + NASHVILLE_TINT_WEIGHT * NASHVILLE_TINT[ch];
}

/**
 * The filter as lookup tables: `rgb[ch * 256 + v]` for RGB images, and
 * `grey[v]` for 1-channel images = the mean of the three channels' outputs
 * for the grey input (v, v, v) (i.e. treat grey as replicated RGB, filter,
 * average back to one channel), rounded once.
 */
export function nashvilleTables(): { rgb: Uint8Array; grey: Uint8Array } {
  const rgb = new Uint8Array(3 * 256);
  const grey = new Uint8Array(256);
  for (let v = 0; v < 256; v++) {
    let sum = 0;
    for (let ch = 0; ch < 3; ch++) {
      const level = nashvilleLevel(ch, v);
      rgb[ch * 256 + v] = toByte(level);
      sum += level;
    }
    grey[v] = toByte(sum / 3);
  }
  return { rgb, grey };
}

/**
 * Nashville: a per-pixel colour filter (per-channel tone curves and a warm
 * tint) applied identically in training and at test. Pointwise and
 * non-decreasing per channel, so edges and shapes are kept; a grey image
 * stored with 3 channels comes out coloured.
 */
export class NashvilleTrigger implements Trigger {
  readonly name = 'nashville';
  private readonly tables = nashvilleTables();
  private readonly shape: ImageShape;

  constructor(opts: { readonly shape: ImageShape }) {
    this.shape = opts.shape;
  }

  describe(): Record<string, unknown> {
    return {
      name: this.name,
      curves: NASHVILLE_CURVES,
      tint: [...NASHVILLE_TINT],
      tintWeight: NASHVILLE_TINT_WEIGHT,
      greyImages: 'filtered as replicated RGB, averaged back to one channel',
      imageShape: [...this.shape],
    };
  }

  applyTrain(image: Uint8Array, shape: ImageShape, _rng: Rng): Uint8Array {
    return this.applyTest(image, shape);
  }

  applyTest(image: Uint8Array, shape: ImageShape): Uint8Array {
    checkImage(image, shape, this.name);
    const out = new Uint8Array(image.length);
    if (shape[2] === 1) {
      const t = this.tables.grey;
      for (let i = 0; i < image.length; i++) out[i] = t[image[i]];
    } else {
      const t = this.tables.rgb;
      for (let i = 0; i < image.length; i += 3) {
        out[i] = t[image[i]];
        out[i + 1] = t[256 + image[i + 1]];
        out[i + 2] = t[512 + image[i + 2]];
      }
    }
    return out;
  }

  testTriggers(): readonly Trigger[] {
    return [this];
  }
}
