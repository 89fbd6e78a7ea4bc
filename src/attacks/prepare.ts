import type { Config } from '../config/schema.js';
import type { DatasetSplits } from '../data/types.js';
import type { PreparedPoison } from '../train/run.js';
import { loadGroundTruth } from './ground-truth.js';
import { poisonDataset, poisonSummary, writePoisonJson } from './poison.js';
import { ATTACKS, createTrigger, resolveTarget } from './registry.js';
import { triggerTestSets } from './test-set.js';

/**
 * The run's poisoning step: poison the training split as `config.poison`
 * says, write `<out>/poison.json`, and build the triggered test sets for the
 * attack success rate. With `poison.groundTruth` the data was poisoned
 * elsewhere: nothing is changed, the list is only the ground truth for the
 * detection metrics (and ASR is measured when `poison.attack` names one of
 * our triggers).
 */
export async function preparePoison(config: Config, splits: DatasetSplits, outDir: string): Promise<PreparedPoison | null> {
  const p = config.poison;
  if (!p) return null;
  const seed = p.seed ?? config.seed;
  const { label: targetLabel, name: target } = resolveTarget(p.target, splits.test.classNames ?? splits.train.classNames, splits.train.name);
  if (p.groundTruth) {
    const truth = loadGroundTruth(p.groundTruth, splits.train);
    const known = (ATTACKS as readonly string[]).includes(p.attack.toLowerCase());
    const trigger = known ? await createTrigger(p, splits.test.imageShape, seed) : null;
    return {
      train: splits.train,
      truth: { ...truth, attack: p.attack, target },
      summary: { attack: p.attack, target, rate: truth.indices.length / splits.train.size, count: truth.indices.length },
      attackEval: trigger ? { targetLabel, sets: triggerTestSets(splits.test, trigger, targetLabel) } : null,
    };
  }
  const result = await poisonDataset(splits.train, p, { seed, captionTemplates: splits.captionTemplates });
  await writePoisonJson(outDir, result.record);
  return {
    train: result.dataset,
    truth: result.truth,
    summary: poisonSummary(result.record),
    attackEval: { targetLabel, sets: triggerTestSets(splits.test, result.trigger, targetLabel) },
  };
}
