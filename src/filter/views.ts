import type { FilterConfig } from '../config/schema.js';
import { createDetector, detectorOptionsFromConfig, type Detector, type DetectorInput } from '../detectors/index.js';
import type { Rng } from '../util/rng.js';
import { robustZ } from './policy.js';

/**
 * The displacement view (`filter.displacement`): a trigger learned after the
 * anchor epoch moves its poisons together, from their own class towards the
 * target, while clean samples move with their class. A round scores the
 * embeddings and their movement with the same detector and combines the two.
 */

/** Each scored row's movement since the anchor: its embedding (rows in scored order) minus the anchor's row of the same sample (sample-index order). */
export function displacementRows(embeddings: Float32Array, anchor: Float32Array, scored: ArrayLike<number>, d: number): Float32Array {
  const out = new Float32Array(scored.length * d);
  for (let r = 0; r < scored.length; r++) {
    const from = scored[r] * d;
    for (let j = 0; j < d; j++) out[r * d + j] = embeddings[r * d + j] - anchor[from + j];
  }
  return out;
}

/**
 * Per sample, the larger of its robust z-scores under two views: suspicious in either is suspicious. The
 * z-scores put the views on one scale; +Infinity (could not be scored) stays +Infinity.
 */
export function largerRobustZ(a: Float64Array, b: Float64Array): Float64Array {
  const za = robustZ(a);
  const zb = robustZ(b);
  return za.map((v, i) => Math.max(v, zb[i]));
}

/** What a round's detector gives: each view's own scores and the round's score (the position view's alone without an anchor). */
export interface ViewScores {
  readonly scores: Float64Array;
  readonly position: Float64Array;
  readonly displacement: Float64Array | null;
}

/**
 * The displacement view's inputs: the anchor's embeddings of every sample, the scored rows' sample indices,
 * the view's reference draws, and its detector — built for image embeddings alone (`embedding: image`):
 * a movement has no caption to join its references.
 */
export interface DisplacementInput {
  readonly detector: Detector;
  readonly anchor: Float32Array;
  readonly rows: ArrayLike<number>;
  readonly rng: Rng;
}

/** The config's detector for the displacement view: image embeddings alone, whatever `filter.embedding` says. */
export function displacementDetector(cfg: FilterConfig): Detector {
  return createDetector(cfg.detector, { ...detectorOptionsFromConfig(cfg), embedding: 'image' });
}

/** Score the embeddings (`input`) and, with an anchor, their displacement, and combine the two (the hook's rounds and offline `score`). */
export async function scoreViews(detector: Detector, input: DetectorInput, displacement: DisplacementInput | null): Promise<ViewScores> {
  const position = await detector.scoreAsync(input);
  if (!displacement) return { scores: position, position, displacement: null };
  const moved = await displacement.detector.scoreAsync({
    embeddings: displacementRows(input.embeddings, displacement.anchor, displacement.rows, input.d),
    n: input.n,
    d: input.d,
    k: input.k,
    rng: displacement.rng,
  });
  return { scores: largerRobustZ(position, moved), position, displacement: moved };
}
