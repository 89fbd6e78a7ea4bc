import type { Config } from '../config/schema.js';
import { UserError } from '../util/errors.js';
import { openExternalSplits } from './external/open.js';
import { fashionMnistSplits } from './fashionMnist.js';
import { syntheticSplits } from './synthetic.js';
import type { DatasetSplits } from './types.js';

export type { ClipDataset, DatasetSplits, ImageShape, Sample } from './types.js';

/** Open the train and test splits the config names. Unknown kinds are errors, never a fallback. */
export async function loadSplits(config: Config): Promise<DatasetSplits> {
  const data = config.data;
  const seed = data.seed ?? config.seed;
  switch (data.kind) {
    case 'synthetic':
      if (data.size < 2) throw new UserError(`config key "data.size" is ${data.size}; the synthetic dataset needs at least 2 samples`, 'CONFIG_INVALID');
      return syntheticSplits({
        trainSize: data.size,
        testSize: Math.max(1, data.testSize),
        imageSize: data.imageSize,
        seed,
        captionTemplates: data.captionTemplates,
        promptTemplates: data.promptTemplates ?? config.eval.promptTemplates,
      });
    case 'fashion-mnist':
      return fashionMnistSplits({
        dir: data.dir,
        trainSize: data.size,
        testSize: data.testSize,
        seed,
        captionTemplates: data.captionTemplates,
        promptTemplates: data.promptTemplates ?? config.eval.promptTemplates,
      });
    case 'webdataset':
    case 'csv':
    case 'folder':
      return openExternalSplits(data, { seed, promptTemplates: data.promptTemplates ?? config.eval.promptTemplates });
    default:
      throw new UserError(`data.kind "${(data as { kind: string }).kind}" cannot be read by this build`, 'DATA_KIND_UNSUPPORTED', 'use data.kind synthetic, fashion-mnist, webdataset, csv or folder');
  }
}
