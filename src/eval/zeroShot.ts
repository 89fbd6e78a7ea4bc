import type { ClipDataset } from '../data/types.js';
import type { EmbeddingModel } from '../train/hooks.js';
import { normalizeRows } from '../util/rows.js';


/**
 * Zero-shot class embeddings with prompt ensembling (CLIP): for each class,
 * embed every template filled with the class name, normalise, average,
 * renormalise. Returns [classes, d], unit rows.
 */
export async function classEmbeddings(model: EmbeddingModel, classNames: readonly string[], templates: readonly string[]): Promise<Float32Array> {
  const d = model.embedDim;
  const prompts = classNames.flatMap((c) => templates.map((t) => t.replaceAll('{}', c)));
  const emb = normalizeRows(await model.embedTexts(prompts), d);
  const out = new Float32Array(classNames.length * d);
  for (let c = 0; c < classNames.length; c++) {
    for (let t = 0; t < templates.length; t++) {
      const row = (c * templates.length + t) * d;
      for (let j = 0; j < d; j++) out[c * d + j] += emb[row + j];
    }
  }
  return normalizeRows(out, d);
}

/** Predicted class of each image: argmax of cosine similarity to the class embeddings. */
export async function zeroShotPredict(model: EmbeddingModel, dataset: ClipDataset, classEmb: Float32Array, indices?: ArrayLike<number>): Promise<Int32Array> {
  const d = model.embedDim;
  const classes = classEmb.length / d;
  const img = await model.embedImages(dataset, indices);
  const n = img.length / d;
  const pred = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = -Infinity;
    let arg = 0;
    for (let c = 0; c < classes; c++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += img[i * d + j] * classEmb[c * d + j];
      // Scaling by the image norm does not change the argmax, so skip it.
      if (s > best) {
        best = s;
        arg = c;
      }
    }
    pred[i] = arg;
  }
  return pred;
}

export interface AttackEvalSet {
  readonly targetLabel: number;
  /** One triggered copy of the non-target test images per test-time trigger (multi-trigger attacks have several). */
  readonly sets: readonly { readonly name: string; readonly dataset: ClipDataset }[];
}

export interface ZeroShotResult {
  readonly cleanAccuracy: number;
  /** Accuracy over each class's test images, by class name (classes without test images left out): where a filter's dropped data costs. */
  readonly accuracyByClass: Record<string, number>;
  /** Share of triggered non-target test images classified as the target (mean over triggers); null without an attack. */
  readonly attackSuccessRate: number | null;
  /** ASR of each test-time trigger, when there is an attack. */
  readonly attackSuccessByTrigger: Record<string, number> | null;
}

export async function evaluateZeroShot(
  model: EmbeddingModel,
  test: ClipDataset,
  templates: readonly string[],
  attack?: AttackEvalSet | null,
): Promise<ZeroShotResult> {
  if (!test.classNames) throw new Error(`dataset ${test.name} has no class names: zero-shot evaluation needs them`);
  const classEmb = await classEmbeddings(model, test.classNames, templates);
  const pred = await zeroShotPredict(model, test, classEmb);
  let correct = 0;
  const classCount = new Int32Array(test.classNames.length);
  const classCorrect = new Int32Array(test.classNames.length);
  for (let i = 0; i < pred.length; i++) {
    const label = test.label(i);
    classCount[label]++;
    if (pred[i] === label) {
      correct++;
      classCorrect[label]++;
    }
  }
  const accuracyByClass: Record<string, number> = {};
  test.classNames.forEach((name, c) => {
    if (classCount[c] > 0) accuracyByClass[name] = classCorrect[c] / classCount[c];
  });
  let asr: number | null = null;
  let byTrigger: Record<string, number> | null = null;
  if (attack && attack.sets.length) {
    byTrigger = {};
    let sum = 0;
    for (const set of attack.sets) {
      const triggered = await zeroShotPredict(model, set.dataset, classEmb);
      let hits = 0;
      let counted = 0;
      for (let i = 0; i < triggered.length; i++) {
        // Target-class images cannot show an attack's success.
        if (set.dataset.label(i) === attack.targetLabel) continue;
        counted++;
        if (triggered[i] === attack.targetLabel) hits++;
      }
      byTrigger[set.name] = counted ? hits / counted : 0;
      sum += byTrigger[set.name];
    }
    asr = sum / attack.sets.length;
  }
  return { cleanAccuracy: pred.length ? correct / pred.length : 0, accuracyByClass, attackSuccessRate: asr, attackSuccessByTrigger: byTrigger };
}
