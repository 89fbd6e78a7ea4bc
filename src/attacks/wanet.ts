import type { ImageShape } from '../data/types.js';
import { Rng } from '../util/rng.js';
import { checkImage, shapeKey, toByte, type Trigger } from './trigger.js';

/** Control points per axis of the warping grid (WaNet's k). */
export const WANET_GRID = 4;
/** The largest displacement is 1 px on 28 px images and grows in proportion with the side. */
export const WANET_PX_PER_SIDE = 1 / 28;

/** Max displacement in pixels for `shape`: max(1, shorter side / 28). */
export function wanetBound(shape: ImageShape): number {
  return Math.max(1, Math.min(shape[0], shape[1]) * WANET_PX_PER_SIDE);
}

/** Displacement in pixels of every output pixel: the source is (y + dy, x + dx). */
export interface WarpField {
  readonly dx: Float64Array;
  readonly dy: Float64Array;
}

/** Catmull-Rom cubic through p0..p3 at t in [0, 1] between p1 and p2. */
function cubic(p0: number, p1: number, p2: number, p3: number, t: number): number {
  return p1 + 0.5 * t * (p2 - p0 + t * (2 * p0 - 5 * p1 + 4 * p2 - p3 + t * (3 * (p1 - p2) + p3 - p0)));
}

/** Bicubic interpolation of a k x k grid at fractional grid coordinates (u, v), edges clamped. */
function bicubicAt(grid: Float64Array, k: number, u: number, v: number): number {
  const iu = Math.min(Math.floor(u), k - 2);
  const iv = Math.min(Math.floor(v), k - 2);
  const tu = u - iu;
  const tv = v - iv;
  const at = (r: number, c: number) => grid[Math.min(k - 1, Math.max(0, r)) * k + Math.min(k - 1, Math.max(0, c))];
  const rows = new Array<number>(4);
  for (let a = -1; a <= 2; a++) rows[a + 1] = cubic(at(iu + a, iv - 1), at(iu + a, iv), at(iu + a, iv + 1), at(iu + a, iv + 2), tv);
  return cubic(rows[0], rows[1], rows[2], rows[3], tu);
}

/**
 * Bilinear sample of channel `k` at (sy, sx), coordinates clamped to the
 * image first (border padding: a warp never pulls in black from outside).
 */
export function bilinearSample(image: Uint8Array, shape: ImageShape, sy: number, sx: number, k: number): number {
  const [h, w, c] = shape;
  const y = Math.min(h - 1, Math.max(0, sy));
  const x = Math.min(w - 1, Math.max(0, sx));
  const y0 = Math.floor(y);
  const x0 = Math.floor(x);
  const y1 = Math.min(h - 1, y0 + 1);
  const x1 = Math.min(w - 1, x0 + 1);
  const fy = y - y0;
  const fx = x - x0;
  const top = (1 - fx) * image[(y0 * w + x0) * c + k] + fx * image[(y0 * w + x1) * c + k];
  const bottom = (1 - fx) * image[(y1 * w + x0) * c + k] + fx * image[(y1 * w + x1) * c + k];
  return (1 - fy) * top + fy * bottom;
}

export interface WanetTriggerOptions {
  readonly seed: number;
  /** Override of the max displacement in pixels (default `wanetBound(shape)`); 0 = identity. */
  readonly maxDisplacement?: number;
  readonly grid?: number;
  readonly shape: ImageShape;
}

/**
 * WaNet: every poisoned image is resampled through one fixed, smooth warping
 * field. A k x k grid of 2-D control vectors, uniform in [-1, 1]^2 from
 * `Rng.derive(seed, 'wanet-grid')`, is upsampled bicubically to the image
 * (grid corners on the corner pixels) and scaled so that the largest
 * displacement length is exactly the bound; the output is the bilinear
 * sample of the input at the displaced position, clamped to the image.
 */
export class WanetTrigger implements Trigger {
  readonly name = 'wanet';
  readonly grid: number;
  private readonly controls: Float64Array;
  private readonly seed: number;
  private readonly maxDisplacement: number | undefined;
  private readonly shape: ImageShape;
  private readonly fields = new Map<string, WarpField>();

  constructor(opts: WanetTriggerOptions) {
    this.grid = opts.grid ?? WANET_GRID;
    if (!(Number.isInteger(this.grid) && this.grid >= 2)) throw new RangeError(`WaNet grid must be an integer >= 2, got ${this.grid}`);
    if (opts.maxDisplacement !== undefined && !(opts.maxDisplacement >= 0)) {
      throw new RangeError(`WaNet maxDisplacement must be >= 0, got ${opts.maxDisplacement}`);
    }
    this.seed = opts.seed;
    this.maxDisplacement = opts.maxDisplacement;
    this.shape = opts.shape;
    const rng = Rng.derive(opts.seed, 'wanet-grid');
    // [dy grid | dx grid], k*k each.
    this.controls = new Float64Array(2 * this.grid * this.grid);
    for (let i = 0; i < this.controls.length; i++) this.controls[i] = rng.uniform(-1, 1);
  }

  /** The max displacement length in pixels on images of `shape`. */
  bound(shape: ImageShape): number {
    return this.maxDisplacement ?? wanetBound(shape);
  }

  /** The displacement field for images of `shape` (cached). */
  field(shape: ImageShape): WarpField {
    const key = shapeKey(shape);
    const cached = this.fields.get(key);
    if (cached) return cached;
    const [h, w] = shape;
    const k = this.grid;
    const gy = this.controls.subarray(0, k * k);
    const gx = this.controls.subarray(k * k);
    const dy = new Float64Array(h * w);
    const dx = new Float64Array(h * w);
    let maxLen = 0;
    for (let y = 0; y < h; y++) {
      const u = h > 1 ? (y * (k - 1)) / (h - 1) : 0;
      for (let x = 0; x < w; x++) {
        const v = w > 1 ? (x * (k - 1)) / (w - 1) : 0;
        const a = bicubicAt(gy, k, u, v);
        const b = bicubicAt(gx, k, u, v);
        dy[y * w + x] = a;
        dx[y * w + x] = b;
        maxLen = Math.max(maxLen, Math.hypot(a, b));
      }
    }
    const scale = maxLen > 0 ? this.bound(shape) / maxLen : 0;
    for (let i = 0; i < dy.length; i++) {
      dy[i] *= scale;
      dx[i] *= scale;
    }
    const f = { dx, dy };
    this.fields.set(key, f);
    return f;
  }

  describe(): Record<string, unknown> {
    return {
      name: this.name,
      grid: this.grid,
      seed: this.seed,
      maxDisplacementPx: this.bound(this.shape),
      sampling: 'bilinear, source clamped to the image',
      imageShape: [...this.shape],
    };
  }

  applyTrain(image: Uint8Array, shape: ImageShape, _rng: Rng): Uint8Array {
    return this.applyTest(image, shape);
  }

  applyTest(image: Uint8Array, shape: ImageShape): Uint8Array {
    checkImage(image, shape, this.name);
    const [h, w, c] = shape;
    const { dx, dy } = this.field(shape);
    const out = new Uint8Array(image.length);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const p = y * w + x;
        for (let k = 0; k < c; k++) out[p * c + k] = toByte(bilinearSample(image, shape, y + dy[p], x + dx[p], k));
      }
    }
    return out;
  }

  testTriggers(): readonly Trigger[] {
    return [this];
  }
}
