import type { Rng } from '../util/rng.js';
import { quantileSorted } from './policy.js';

/**
 * Re-admission: after the rewind, ask the model that trains on the kept
 * samples — one that has not learned the trigger — whether it agrees with
 * the captions of the samples the filter dropped, and give back the ones it
 * agrees with as much as with a typical kept sample.
 *
 * Why: the rounds drop the atypical samples along with the poisons (16-21% of
 * Fashion-MNIST, 40% of its sandals), and that is what costs clean accuracy;
 * no density ratio tells an atypical clean sample from a poison, because both
 * are atypical. What does tell them apart is the caption. A clean sample's
 * caption describes its image, so a model trained on clean data matches the
 * two; a poison's caption names the target, not what its image shows, and a
 * model that never learned the trigger matches it poorly. The agreement is
 * the CLIP score, cos(image, own caption), the quantity web-scale datasets are
 * filtered by; its threshold is a low quantile of the same score over the
 * kept samples, so it needs no scale of its own. One blind spot is the
 * trigger probe's reason to exist: poisons whose images already look like the
 * target agree with their target captions under a clean model too, so what
 * the probe holds (its drops, and the drops it ranks like its seeds) must
 * agree at least as well as the median kept sample — with the concept hold,
 * only when its caption is like the seeds' largest caption group: a
 * targeted backdoor teaches the trigger to mean the target, so every poison
 * is captioned with the target, while a clean hold need not be (on
 * Fashion-MNIST a third of the probe's holds in a clean run are sandals
 * captioned "sandal"). When no caption group dominates the seeds, they are
 * mostly clean outliers rather than a targeted attack's poisons, the probe
 * has learned what is atypical rather than a trigger, and what it holds faces
 * the lenient bar like any drop. Some poisons pass even that bar, because to
 * a model without the trigger they are the target (Nashville-filtered
 * sneakers captioned "ankle boot"); the probe, which learned the trigger,
 * still ranks them like its seeds, and the veto keeps such holds out whatever
 * the judge says (without a dominant group, at a higher bar of its own, over
 * every hold). It fails by design for clean-label poisons, whose
 * captions do describe their images — those the density rounds do not find
 * either.
 */

/** The q-quantile of the finite values (linear interpolation between order statistics, numpy's default); NaN when there are none. */
export function quantile(values: ArrayLike<number>, q: number): number {
  return quantileSorted(Float64Array.from(values).filter(Number.isFinite).sort(), q);
}

/** Up to `count` distinct entries of `pool`, drawn without replacement (all of them, in order, when the pool is not larger). */
export function sampleRows(pool: Int32Array, count: number, rng: Rng): Int32Array {
  if (pool.length <= count) return pool;
  return rng.shuffle(Int32Array.from(pool)).subarray(0, count).sort();
}

export interface ReadmitDecision {
  /** Agreement a candidate must exceed to come back: the kept samples' `quantile`... */
  readonly threshold: number;
  /** ...or, for a held candidate, their `heldQuantile` (Infinity when held candidates never come back). */
  readonly heldThreshold: number;
  /** Positions (into the candidates) that come back, ascending. */
  readonly readmitted: Int32Array;
}

/** `held` marks: judged at the lenient bar, at the held bar, or kept out whatever the judge says. */
export const NOT_HELD = 0;
export const HELD = 1;
export const VETOED = 2;

/**
 * Which candidates come back: those whose agreement is above the q-quantile of
 * the kept samples' agreement — above the `heldQuantile`-quantile for the
 * candidates marked HELD, which carry evidence against them (`heldQuantile`
 * 1: never); VETOED ones never. Non-finite agreements (an empty image or
 * caption) never come back.
 */
export function decideReadmission(candidateAgreement: Float64Array, held: Uint8Array, keptAgreement: Float64Array, q: number, heldQuantile: number): ReadmitDecision {
  const threshold = quantile(keptAgreement, q);
  const heldThreshold = heldQuantile >= 1 ? Infinity : quantile(keptAgreement, heldQuantile);
  const rows: number[] = [];
  for (let r = 0; r < candidateAgreement.length; r++) {
    if (held[r] === VETOED) continue;
    const bar = held[r] === HELD ? heldThreshold : threshold;
    // NaN bars (no kept sample to compare with) compare false: nothing comes back.
    if (candidateAgreement[r] > bar) rows.push(r);
  }
  return { threshold, heldThreshold, readmitted: Int32Array.from(rows) };
}
