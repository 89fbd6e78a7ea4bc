import type { ImageShape } from '../data/types.js';
import type { Rng } from '../util/rng.js';
import type { Trigger } from './trigger.js';

/**
 * Multi-trigger, one target: each poisoned sample draws one of several
 * triggers uniformly (the draw is the first use of the sample's stream,
 * the chosen trigger then uses the rest). ASR is measured per trigger
 * through `testTriggers()`.
 */
export class MultiTrigger implements Trigger {
  readonly name = 'multi-trigger';

  constructor(readonly triggers: readonly Trigger[]) {
    if (triggers.length === 0) throw new RangeError('multi-trigger needs at least one trigger');
  }

  /** Which trigger a sample gets. */
  pick(rng: Rng): Trigger {
    return this.triggers[rng.int(this.triggers.length)];
  }

  describe(): Record<string, unknown> {
    return { name: this.name, draw: 'uniform per poisoned sample', triggers: this.triggers.map((t) => t.describe()) };
  }

  applyTrain(image: Uint8Array, shape: ImageShape, rng: Rng): Uint8Array {
    return this.pick(rng).applyTrain(image, shape, rng);
  }

  /** The first trigger's test form; use `testTriggers()` for one ASR per trigger. */
  applyTest(image: Uint8Array, shape: ImageShape): Uint8Array {
    return this.triggers[0].applyTest(image, shape);
  }

  testTriggers(): readonly Trigger[] {
    return this.triggers;
  }
}
