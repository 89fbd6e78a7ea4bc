import type { ImageShape } from '../data/types.js';
import { UserError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';
import { checkSameShape, type TriggerImage } from './image-file.js';
import { checkImage, toByte, type Trigger } from './trigger.js';

/** The paper's BadNets patch: 16 px at 224 px. */
export const PAPER_PATCH_FRACTION = 16 / 224;
/** Below 3 px the pattern degenerates to a single white pixel. */
export const MIN_PATCH_SIDE = 3;

/** Side of a square patch on images of `shape`: round(fraction x shorter side), at least 3 px. */
export function patchSide(shape: ImageShape, fraction: number = PAPER_PATCH_FRACTION): number {
  if (!(fraction > 0 && fraction <= 1)) {
    throw new UserError(`poison.patchFraction must be in (0, 1], got ${fraction}`, 'POISON_PATCH');
  }
  const short = Math.min(shape[0], shape[1]);
  const side = Math.max(MIN_PATCH_SIDE, Math.round(fraction * short));
  if (side > short) {
    throw new UserError(
      `a ${side} px trigger patch does not fit ${shape[0]}x${shape[1]} images`,
      'POISON_PATCH',
      'lower poison.patchFraction or use larger images',
    );
  }
  return side;
}

/** BadNets pattern: black, with white pixels where row and column are both even (the paper's `[::2, ::2] = 1`). */
export function checkerboard(side: number, channels: number): Uint8Array {
  const out = new Uint8Array(side * side * channels);
  for (let r = 0; r < side; r += 2) {
    for (let c = 0; c < side; c += 2) out.fill(255, (r * side + c) * channels, (r * side + c + 1) * channels);
  }
  return out;
}

export interface PatchPlacement {
  /** Patch side in pixels. */
  readonly side: number;
  /** Largest offset from a corner's two edges in random training placement. */
  readonly jitter: number;
  /** Top-left corner of the test-time (and `position: fixed` training) patch. */
  readonly test: { readonly x: number; readonly y: number };
}

export interface PatchTriggerOptions {
  /** `badnets` (checkerboard) or `patch` (user image). */
  readonly name: string;
  /** Patch side as a fraction of the shorter image side (ignored when `image` is given: its size is used). */
  readonly fraction?: number;
  /** Training placement; `fixed` trains exactly at the test position. */
  readonly position: 'random' | 'fixed';
  /** Explicit top-left [x, y] used in training and at test (user patches). */
  readonly at?: readonly number[];
  /** User patch pixels (side x side); its alpha, when present, blends the patch edges. */
  readonly image?: TriggerImage;
  /** The dataset's shape, for `describe()`. */
  readonly shape: ImageShape;
}

/**
 * A square patch stamped over the image: BadNets' checkerboard or a user
 * image. Test position: the bottom-right corner (flush with both edges), or
 * `at`. Random training position: one of the four corners, then an offset of
 * 0..jitter px from both of that corner's edges (jitter = the patch side,
 * capped so the patch fits): the scheme of our PyTorch reference, which makes
 * the test position one of the training positions.
 */
export class PatchTrigger implements Trigger {
  readonly name: string;
  private readonly fraction: number;
  private readonly position: 'random' | 'fixed';
  private readonly at: readonly number[] | undefined;
  private readonly image: TriggerImage | undefined;
  private readonly shape: ImageShape;
  private readonly patterns = new Map<number, Uint8Array>();

  constructor(opts: PatchTriggerOptions) {
    this.name = opts.name;
    this.fraction = opts.fraction ?? PAPER_PATCH_FRACTION;
    this.position = opts.position;
    this.at = opts.at;
    this.image = opts.image;
    this.shape = opts.shape;
    // Validate geometry once, where the user's config is still in view.
    this.placement(opts.shape);
  }

  /** Where the patch goes on images of `shape`. */
  placement(shape: ImageShape): PatchPlacement {
    const [h, w] = shape;
    let side: number;
    if (this.image) {
      checkSameShape(this.image, shape, this.name);
      side = this.image.height;
    } else {
      side = patchSide(shape, this.fraction);
    }
    if (this.at) {
      const [x, y] = this.at;
      if (!(this.at.length === 2 && Number.isInteger(x) && Number.isInteger(y) && x >= 0 && y >= 0 && x + side <= w && y + side <= h)) {
        throw new UserError(
          `poison.patchPosition [${x}, ${y}] puts the ${side} px patch outside ${h}x${w} images`,
          'POISON_PATCH',
          `use x in 0..${w - side} and y in 0..${h - side}`,
        );
      }
      return { side, jitter: 0, test: { x, y } };
    }
    return { side, jitter: Math.min(side, h - side, w - side), test: { x: w - side, y: h - side } };
  }

  describe(): Record<string, unknown> {
    const p = this.placement(this.shape);
    return {
      name: this.name,
      pattern: this.image ? { file: this.image.path, alphaMask: this.image.alpha !== null } : 'white where row and column are even, else black',
      patchSide: p.side,
      patchFraction: this.image ? undefined : this.fraction,
      trainPosition: this.at ? 'fixed' : this.position,
      randomPlacement: !this.at && this.position === 'random' ? `a random corner, offset 0..${p.jitter} px from both edges` : undefined,
      testPosition: p.test,
      imageShape: [...this.shape],
    };
  }

  applyTrain(image: Uint8Array, shape: ImageShape, rng: Rng): Uint8Array {
    checkImage(image, shape, this.name);
    const p = this.placement(shape);
    if (this.at || this.position === 'fixed') return this.stamp(image, shape, p.side, p.test.x, p.test.y);
    const corner = rng.int(4);
    const oy = rng.int(p.jitter + 1);
    const ox = rng.int(p.jitter + 1);
    const y = corner & 2 ? shape[0] - p.side - oy : oy;
    const x = corner & 1 ? shape[1] - p.side - ox : ox;
    return this.stamp(image, shape, p.side, x, y);
  }

  applyTest(image: Uint8Array, shape: ImageShape): Uint8Array {
    checkImage(image, shape, this.name);
    const p = this.placement(shape);
    return this.stamp(image, shape, p.side, p.test.x, p.test.y);
  }

  testTriggers(): readonly Trigger[] {
    return [this];
  }

  /** Copy of `image` with the patch's top-left corner at (x, y). */
  stamp(image: Uint8Array, shape: ImageShape, side: number, x: number, y: number): Uint8Array {
    const [, w, c] = shape;
    const out = image.slice();
    const pattern = this.pattern(side, c);
    const alpha = this.image?.alpha ?? null;
    for (let r = 0; r < side; r++) {
      for (let q = 0; q < side; q++) {
        const dst = ((y + r) * w + (x + q)) * c;
        const src = (r * side + q) * c;
        if (alpha === null) {
          for (let k = 0; k < c; k++) out[dst + k] = pattern[src + k];
        } else {
          const a = alpha[r * side + q];
          for (let k = 0; k < c; k++) out[dst + k] = toByte(a * pattern[src + k] + (1 - a) * image[dst + k]);
        }
      }
    }
    return out;
  }

  private pattern(side: number, channels: number): Uint8Array {
    if (this.image) return this.image.pixels;
    const key = side * 8 + channels;
    let p = this.patterns.get(key);
    if (!p) {
      p = checkerboard(side, channels);
      this.patterns.set(key, p);
    }
    return p;
  }
}
