import type { ImageShape } from '../data/types.js';
import type { Rng } from '../util/rng.js';

/**
 * A backdoor trigger: a pure function of the input pixels (plus, in training,
 * a per-sample random stream). Implementations never mutate their input and
 * always return a new HWC uint8 array of the same length.
 */
export interface Trigger {
  /** The trigger's attack name (`badnets`, `blended`, ...). */
  readonly name: string;
  /** JSON-serialisable parameters, written to `poison.json` so a run documents its trigger. */
  describe(): Record<string, unknown>;
  /**
   * The trigger as stamped on a poisoned training sample. `rng` is the
   * sample's own stream (a BadNets patch position, a multi-trigger draw);
   * deterministic given it.
   */
  applyTrain(image: Uint8Array, shape: ImageShape, rng: Rng): Uint8Array;
  /** The fixed test-time trigger used to measure the attack success rate. */
  applyTest(image: Uint8Array, shape: ImageShape): Uint8Array;
  /**
   * The triggers to measure ASR with, one ASR each: `[this]` for a single
   * trigger, every component for multi-trigger.
   */
  testTriggers(): readonly Trigger[];
}

/** Throws unless `image` holds exactly one HWC image of `shape`. */
export function checkImage(image: Uint8Array, shape: ImageShape, who: string): void {
  const [h, w, c] = shape;
  if (!(h > 0 && w > 0 && (c === 1 || c === 3))) {
    throw new RangeError(`${who}: unsupported image shape ${shape.join('x')}`);
  }
  if (image.length !== h * w * c) {
    throw new RangeError(`${who}: image has ${image.length} bytes, shape ${h}x${w}x${c} needs ${h * w * c}`);
  }
}

/** Round half up and clamp to 0..255 (NaN → 0): the one rounding rule of every trigger. */
export function toByte(v: number): number {
  if (!(v > 0)) return 0; // NaN too
  if (v >= 255) return 255;
  return Math.floor(v + 0.5);
}

export const shapeKey = (shape: ImageShape): string => `${shape[0]}x${shape[1]}x${shape[2]}`;
