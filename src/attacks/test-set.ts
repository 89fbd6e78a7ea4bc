import { imageBytes, type ClipDataset, type ImageShape } from '../data/types.js';
import type { Trigger } from './trigger.js';

/** Cache triggered test images when they fit in this many bytes (ASR is measured every epoch). */
const CACHE_LIMIT = 256 * 1024 * 1024;

/**
 * The ASR test set: every labelled test sample whose class is not the
 * target, with the trigger's test form applied. Labels stay the true
 * classes; ASR = share of these predicted as the target.
 */
export class TriggeredTestSet implements ClipDataset {
  readonly name: string;
  readonly size: number;
  readonly imageShape: ImageShape;
  readonly classNames: readonly string[] | null;
  private readonly bytes: number;
  private readonly cache: Uint8Array | null;
  private readonly cached: Uint8Array;

  constructor(
    readonly base: ClipDataset,
    readonly trigger: Trigger,
    readonly targetLabel: number,
    /** Base index of each member, ascending. */
    readonly members: Int32Array,
  ) {
    this.name = `${base.name}+${trigger.name}`;
    this.size = members.length;
    this.imageShape = base.imageShape;
    this.classNames = base.classNames;
    this.bytes = imageBytes(base.imageShape);
    this.cache = this.size * this.bytes <= CACHE_LIMIT ? new Uint8Array(this.size * this.bytes) : null;
    this.cached = new Uint8Array(this.cache ? this.size : 0);
  }

  /** Index in the wrapped test set of member `index`. */
  baseIndex(index: number): number {
    return this.members[index];
  }

  id(index: number): string {
    return this.base.id(this.members[index]);
  }

  caption(index: number): string {
    return this.base.caption(this.members[index]);
  }

  label(index: number): number {
    return this.base.label(this.members[index]);
  }

  async readImages(indices: ArrayLike<number>, out: Uint8Array): Promise<void> {
    const b = this.bytes;
    const todo: number[] = [];
    for (let j = 0; j < indices.length; j++) if (!this.cache || !this.cached[indices[j]]) todo.push(j);
    if (todo.length > 0) {
      const clean = new Uint8Array(todo.length * b);
      await this.base.readImages(
        todo.map((j) => this.members[indices[j]]),
        clean,
      );
      for (let t = 0; t < todo.length; t++) {
        const triggered = this.trigger.applyTest(clean.subarray(t * b, (t + 1) * b), this.imageShape);
        const i = indices[todo[t]];
        if (this.cache) {
          this.cache.set(triggered, i * b);
          this.cached[i] = 1;
        } else {
          out.set(triggered, todo[t] * b);
        }
      }
    }
    if (this.cache) {
      for (let j = 0; j < indices.length; j++) out.set(this.cache.subarray(indices[j] * b, (indices[j] + 1) * b), j * b);
    }
  }
}

/**
 * The triggered test set for ASR: test samples of every class except
 * `targetLabel` (unlabelled ones are left out), each with `trigger.applyTest`.
 */
export function triggerTestSet(test: ClipDataset, trigger: Trigger, targetLabel: number): TriggeredTestSet {
  const classes = test.classNames?.length ?? 0;
  if (!(Number.isInteger(targetLabel) && targetLabel >= 0 && (classes === 0 || targetLabel < classes))) {
    throw new RangeError(`target label ${targetLabel} is not a class of ${test.name}`);
  }
  const members: number[] = [];
  for (let i = 0; i < test.size; i++) {
    const label = test.label(i);
    if (label >= 0 && label !== targetLabel) members.push(i);
  }
  return new TriggeredTestSet(test, trigger, targetLabel, Int32Array.from(members));
}

/** One triggered test set per test trigger (a single one, or each of multi-trigger's). */
export function triggerTestSets(test: ClipDataset, trigger: Trigger, targetLabel: number): { name: string; dataset: TriggeredTestSet }[] {
  return trigger.testTriggers().map((t) => ({ name: t.name, dataset: triggerTestSet(test, t, targetLabel) }));
}

/** Share of `predicted` labels equal to the target; null for an empty set. */
export function attackSuccessRate(predicted: ArrayLike<number>, targetLabel: number): number | null {
  if (predicted.length === 0) return null;
  let hits = 0;
  for (let i = 0; i < predicted.length; i++) if (predicted[i] === targetLabel) hits++;
  return hits / predicted.length;
}
