import type { ImageShape } from '../data/types.js';
import type { Rng } from '../util/rng.js';
import { checkAlpha, DEFAULT_ALPHA } from './blend.js';
import { checkImage, toByte, type Trigger } from './trigger.js';

/** The paper's SIG signal: amplitude 60/255 of the pixel range, i.e. 60 grey levels. */
export const SIG_AMPLITUDE = 60;
/** Periods of the sinusoid across the image width. */
export const SIG_PERIODS = 6;

/** The SIG signal per column: `A * sin(2 * pi * f * x / W)`, x = 0..W-1. */
export function sigSignal(width: number, amplitude = SIG_AMPLITUDE, periods = SIG_PERIODS): Float64Array {
  const s = new Float64Array(width);
  for (let x = 0; x < width; x++) s[x] = amplitude * Math.sin((2 * Math.PI * periods * x) / width);
  return s;
}

export interface SigTriggerOptions {
  readonly alpha?: number;
  readonly amplitude?: number;
  readonly periods?: number;
  readonly shape: ImageShape;
}

/**
 * SIG (Barni et al. 2019): a horizontal sinusoid (vertical stripes) added to
 * the image, the same on every row and channel. With blend weight alpha the
 * triggered image is the alpha-mix of the clean image and the fully
 * signalled one:
 *   out = clip(round((1 - alpha) * img + alpha * (img + s))) = clip(round(img + alpha * s)),
 * so the added signal swings +-alpha*A levels (+-12 at the defaults) and the
 * image content is not dimmed. alpha = 1 is textbook additive SIG.
 */
export class SigTrigger implements Trigger {
  readonly name = 'sig';
  readonly alpha: number;
  readonly amplitude: number;
  readonly periods: number;
  private readonly shape: ImageShape;
  private readonly signals = new Map<number, Float64Array>();

  constructor(opts: SigTriggerOptions) {
    this.alpha = checkAlpha(opts.alpha ?? DEFAULT_ALPHA);
    this.amplitude = opts.amplitude ?? SIG_AMPLITUDE;
    this.periods = opts.periods ?? SIG_PERIODS;
    this.shape = opts.shape;
  }

  describe(): Record<string, unknown> {
    return {
      name: this.name,
      formula: 'round(image + alpha * A * sin(2 * pi * f * x / W)), x = column',
      alpha: this.alpha,
      amplitude: this.amplitude,
      periods: this.periods,
      maxAddedLevels: this.alpha * this.amplitude,
      imageShape: [...this.shape],
    };
  }

  applyTrain(image: Uint8Array, shape: ImageShape, _rng: Rng): Uint8Array {
    return this.applyTest(image, shape);
  }

  applyTest(image: Uint8Array, shape: ImageShape): Uint8Array {
    checkImage(image, shape, this.name);
    const [h, w, c] = shape;
    let s = this.signals.get(w);
    if (!s) {
      s = sigSignal(w, this.amplitude, this.periods);
      this.signals.set(w, s);
    }
    const out = new Uint8Array(image.length);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const add = this.alpha * s[x];
        const base = (y * w + x) * c;
        for (let k = 0; k < c; k++) out[base + k] = toByte(image[base + k] + add);
      }
    }
    return out;
  }

  testTriggers(): readonly Trigger[] {
    return [this];
  }
}
