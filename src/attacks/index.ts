/**
 * Backdoor poisoning attacks, their ground truth and attack-success sets.
 *
 * All images are HWC uint8; every trigger returns a new array, rounds half up
 * and clamps to 0..255 once at the end. Geometry is given for the paper's
 * 224 px images and scaled to the image size in use (side = the shorter side).
 *
 * badnets   A square patch, black with white pixels where the patch row AND
 *           column are both even (the paper's pattern; our PyTorch reference
 *           used a (r + c) even checkerboard, which differs only in the 3x3
 *           centre pixel). Side = max(3, round(16/224 x side)) = 16 px at 224,
 *           5 at 64, 3 at 28 and 16 (`poison.patchFraction` replaces 16/224).
 *           Test position: the bottom-right corner, flush with both edges.
 *           `position: fixed` trains there. `position: random` (default)
 *           trains at a random corner, offset 0..J px from both edges of
 *           that corner, J = patch side (3 at 28 px: 64 placements, the
 *           scheme of our PyTorch reference). The paper instead places the
 *           patch anywhere in training and at the centre at test. We keep the
 *           reference's scheme so that (a) the test position is one of the
 *           training positions, and (b) ASR is comparable with the reference
 *           table in RESEARCH.md. At 28 px, placing it anywhere gives 676
 *           positions for a few hundred poisons, which a non-convolutional
 *           tower cannot learn.
 * patch     A user image (`poison.image`) resized to the badnets side with
 *           its aspect ratio kept and transparent padding. Its alpha channel
 *           blends the edges. Placed like badnets, or when
 *           `poison.patchPosition` [x, y] is given, at that top-left corner
 *           both in training and at test.
 * blended   out = round(0.8 x img + 0.2 x pattern) (alpha = `poison.alpha`,
 *           default 0.2). Pattern: uniform noise 0..255 per pixel and channel
 *           from `Rng.derive(seed, 'blended-pattern:HxWxC')` (fixed given the
 *           seed), or `poison.image` stretched to H x W. The same in training
 *           and at test. No geometry: the pattern is made at the image's resolution.
 * blend     blended with a required `poison.image`.
 * sig       out = round(img + alpha x 60 x sin(2 pi 6 x / W)), x = column:
 *           the alpha-mix of the clean image and the textbook additive SIG
 *           image (Barni et al.), amplitude 60 levels (= 60/255), 6 periods
 *           across the width at every size, the same on all rows and channels.
 *           At alpha 0.2 the added signal swings +-12 levels and the content
 *           is not dimmed. (The literal "0.8 img + 0.2 sinusoid" would also
 *           darken the image by 20%; alpha = 1 gives plain additive SIG.)
 * wanet     One fixed warping field: a 4 x 4 grid of 2-D control vectors,
 *           uniform in [-1, 1]^2 from `Rng.derive(seed, 'wanet-grid')`, is
 *           upsampled bicubically (grid corners on the corner pixels) and
 *           scaled so that the longest displacement is exactly
 *           max(1, side / 28) px: 1 px at 28 and 16 px, 2 at 56, 8 at 224.
 *           out(y, x) = bilinear sample of img at (y + dy, x + dx), with the
 *           sample point clamped to the image. The paper's ~1 px at 256 px
 *           would be 0.1 px at 28 px, which uint8 rounding nearly erases. So
 *           the warp is kept at a fixed 1/28 of the side, which at 224 px is
 *           stronger than the paper's.
 * nashville A pointwise colour filter: a piecewise-linear tone curve per RGB
 *           channel (lifted, blue-leaning blacks, warm highlights), then
 *           15% of a warm tint (255, 214, 170). It is our own Nashville-like
 *           filter, not Instagram's exact one. 1-channel images are filtered
 *           as replicated RGB and averaged back to one channel (a tone curve
 *           mapping 0..255 onto about 69..223). A grey image stored with 3
 *           channels comes out coloured. No geometry.
 * clean-label  Poisons only samples whose caption already names the target
 *           (a whole-word, case-insensitive match), keeps their captions and
 *           applies `poison.triggers[0]` (default badnets).
 * multi-trigger  Each poisoned sample draws one of `poison.triggers`
 *           (default badnets, blended, sig) uniformly. All of them share the
 *           one target. ASR is measured per trigger (`trigger.testTriggers()`).
 *
 * Poisoning (`poisonDataset`): candidates are samples whose label is not
 * the target (unlabelled ones: whose caption does not name it).
 * count = poison.count ?? round(rate x train size). The indices are drawn
 * without replacement from `Rng.derive(seed, 'poison')`, seed = poison.seed
 * ?? the run seed. Sample i's trigger randomness comes from
 * `Rng.derive(seed, 'poison-trigger:i')` and its caption template from
 * `Rng.derive(seed, 'poison-caption:i')`. So the same config always poisons
 * the same samples with the same pixels and captions.
 */
export type { Trigger } from './trigger.js';
export { checkImage, toByte } from './trigger.js';
export { PatchTrigger, checkerboard, patchSide, PAPER_PATCH_FRACTION, MIN_PATCH_SIDE, type PatchPlacement } from './badnets.js';
export { BlendTrigger, blendPixels, noisePattern, DEFAULT_ALPHA } from './blend.js';
export { SigTrigger, sigSignal, SIG_AMPLITUDE, SIG_PERIODS } from './sig.js';
export { WanetTrigger, wanetBound, bilinearSample, WANET_GRID, type WarpField } from './wanet.js';
export { NashvilleTrigger, nashvilleTables, NASHVILLE_CURVES } from './nashville.js';
export { MultiTrigger } from './multi.js';
export { loadTriggerImage, type TriggerImage } from './image-file.js';
export {
  ATTACKS,
  TRIGGERS,
  DEFAULT_MULTI_TRIGGERS,
  DEFAULT_CLEAN_LABEL_TRIGGER,
  parseAttack,
  attackTriggerNames,
  createTrigger,
  createNamedTrigger,
  resolveTarget,
  captionMatcher,
  type AttackName,
  type TriggerName,
  type PoisonSettings,
} from './registry.js';
export {
  poisonDataset,
  poisonCount,
  poisonSummary,
  writePoisonJson,
  PoisonedDataset,
  type PoisonRecord,
  type PoisonOptions,
  type PoisonResult,
} from './poison.js';
export { triggerTestSet, triggerTestSets, attackSuccessRate, TriggeredTestSet } from './test-set.js';
export { loadGroundTruth, parseCsv } from './ground-truth.js';
export { writePreviewGrid, type PreviewOptions, type PreviewResult } from './preview.js';
