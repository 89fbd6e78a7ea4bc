import type { ImageShape } from '../data/types.js';
import { UserError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { checkSameShape, type TriggerImage } from './image-file.js';
import { checkImage, shapeKey, toByte, type Trigger } from './trigger.js';

/** The paper's blend weight for Blended and SIG. */
export const DEFAULT_ALPHA = 0.2;

export function checkAlpha(alpha: number): number {
  if (!(alpha >= 0 && alpha <= 1)) {
    throw new UserError(`poison.alpha must be in [0, 1], got ${alpha}`, 'POISON_ALPHA', 'the paper uses 0.2');
  }
  return alpha;
}

/** `out = round((1 - alpha) * image + alpha * pattern)`, clamped; a new array. */
export function blendPixels(image: Uint8Array, pattern: ArrayLike<number>, alpha: number): Uint8Array {
  const out = new Uint8Array(image.length);
  for (let i = 0; i < image.length; i++) out[i] = toByte((1 - alpha) * image[i] + alpha * pattern[i]);
  return out;
}

/**
 * The built-in Blended pattern: independent uniform bytes 0..255 per pixel
 * and channel (HWC order), drawn from `Rng.derive(seed, 'blended-pattern:HxWxC')`.
 * Noise, as in our PyTorch reference; fixed given the seed and shape.
 */
export function noisePattern(shape: ImageShape, seed: number): Uint8Array {
  const rng = Rng.derive(seed, `blended-pattern:${shapeKey(shape)}`);
  const out = new Uint8Array(shape[0] * shape[1] * shape[2]);
  for (let i = 0; i < out.length; i++) out[i] = rng.int(256);
  return out;
}

export interface BlendTriggerOptions {
  /** `blended` (built-in noise or user file) or `blend` (user file). */
  readonly name: string;
  readonly alpha: number;
  /** Seed of the built-in pattern. */
  readonly seed: number;
  /** User pattern resized to the dataset's shape; default: the built-in noise. */
  readonly image?: TriggerImage;
  readonly shape: ImageShape;
}

/** Blended: the same fixed pattern mixed into every poisoned image, in training and at test. */
export class BlendTrigger implements Trigger {
  readonly name: string;
  readonly alpha: number;
  private readonly seed: number;
  private readonly image: TriggerImage | undefined;
  private readonly shape: ImageShape;
  private readonly cache = new Map<string, Uint8Array>();

  constructor(opts: BlendTriggerOptions) {
    this.name = opts.name;
    this.alpha = checkAlpha(opts.alpha);
    this.seed = opts.seed;
    this.image = opts.image;
    this.shape = opts.shape;
  }

  /** The pattern blended into images of `shape`. */
  pattern(shape: ImageShape): Uint8Array {
    if (this.image) {
      checkSameShape(this.image, shape, this.name);
      return this.image.pixels;
    }
    const key = shapeKey(shape);
    let p = this.cache.get(key);
    if (!p) {
      p = noisePattern(shape, this.seed);
      this.cache.set(key, p);
    }
    return p;
  }

  describe(): Record<string, unknown> {
    return {
      name: this.name,
      formula: 'round((1 - alpha) * image + alpha * pattern)',
      alpha: this.alpha,
      pattern: this.image ? { file: this.image.path } : { kind: 'uniform noise 0..255 per pixel and channel', seed: this.seed },
      imageShape: [...this.shape],
    };
  }

  applyTrain(image: Uint8Array, shape: ImageShape, _rng: Rng): Uint8Array {
    return this.applyTest(image, shape);
  }

  applyTest(image: Uint8Array, shape: ImageShape): Uint8Array {
    checkImage(image, shape, this.name);
    return blendPixels(image, this.pattern(shape), this.alpha);
  }

  testTriggers(): readonly Trigger[] {
    return [this];
  }
}
