import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClipModel } from '../model/clip.js';
import { decodeNamed, encodeNamed, loadModel, saveModel } from '../model/io.js';
import { UserError } from '../util/errors.js';
import { replaceDirAtomic, resolveReplacedDir, writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import type { RngState } from '../util/rng.js';
import type { AdamWOptions } from './optimizer.js';
import type { OptimizerState } from './stepper.js';
import type { MetricPoint } from './recorder.js';
import type { RunSummary } from './summary.js';
import type { SampleWeightTable } from './weights.js';

export const CHECKPOINT_DIR = 'checkpoints';
export const LAST = 'last';

/** Everything besides tensors that a resumed run needs to continue exactly. */
export interface TrainingState {
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps taken. */
  step: number;
  /** The shuffling RNG's state after `epoch` epochs. */
  rng: RngState;
  summary: RunSummary;
  history: MetricPoint[];
  /** Per-hook state (e.g. the filter's rounds), keyed by hook name. */
  hooks: Record<string, unknown>;
  /** Planned epochs in all (grows when a hook rewinds the model). */
  totalEpochs?: number;
  /** Epochs after which the model was rewound. */
  rewinds?: number[];
  /** Samples the learning-rate schedule is sized for (active when it last started). */
  scheduleSamples?: number;
  savedAt: string;
}

export interface Checkpoint {
  dir: string;
  model: ClipModel;
  state: TrainingState;
  sampleWeights: Float32Array;
  optimizer: { step: number; moments: Map<string, { m: Float32Array; v: Float32Array }> };
}

export function checkpointPath(outDir: string): string {
  return join(outDir, CHECKPOINT_DIR, LAST);
}

/**
 * Write `<out>/checkpoints/last/` atomically: model.json + weights.bin +
 * tokenizer.json (loadable on their own), optimizer moments, the sample-weight
 * table and the training state.
 */
export async function saveCheckpoint(
  outDir: string,
  parts: { model: ClipModel; optimizer: { state: OptimizerState; options: AdamWOptions }; weights: SampleWeightTable; state: TrainingState },
): Promise<string> {
  const target = checkpointPath(outDir);
  const optimizerState = parts.optimizer.state;
  await replaceDirAtomic(target, async (dir) => {
    await saveModel(parts.model, dir);
    const named = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, s] of optimizerState.moments) {
      named.set(`m/${name}`, { shape: s.shape, data: s.m });
      named.set(`v/${name}`, { shape: s.shape, data: s.v });
    }
    const { data, specs } = await encodeNamed(named);
    writeFileAtomic(join(dir, 'optimizer.bin'), data);
    writeJsonAtomic(join(dir, 'optimizer.json'), { format: 'adamw', step: optimizerState.step, options: parts.optimizer.options, weights: specs });
    const w = parts.weights.values;
    writeFileAtomic(join(dir, 'sample-weights.f32'), new Uint8Array(w.buffer, w.byteOffset, w.byteLength));
    writeJsonAtomic(join(dir, 'state.json'), parts.state);
  });
  return target;
}

export async function loadCheckpoint(outDir: string): Promise<Checkpoint> {
  const dir = resolveReplacedDir(checkpointPath(outDir));
  if (!dir || !existsSync(join(dir, 'state.json'))) {
    throw new UserError(`no checkpoint to resume in ${outDir} (looked for ${checkpointPath(outDir)})`, 'CHECKPOINT_MISSING', 'pass the --out directory of a run that finished at least one epoch');
  }
  const model = await loadModel(dir);
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as TrainingState;
  const optJson = JSON.parse(readFileSync(join(dir, 'optimizer.json'), 'utf8')) as { step: number; weights: Parameters<typeof decodeNamed>[1] };
  const decoded = decodeNamed(readFileSync(join(dir, 'optimizer.bin')), optJson.weights);
  const moments = new Map<string, { m: Float32Array; v: Float32Array }>();
  for (const p of model.params.list) {
    const m = decoded.get(`m/${p.name}`);
    const v = decoded.get(`v/${p.name}`);
    if (!m || !v) throw new UserError(`checkpoint ${dir} lacks optimizer moments for ${p.name}`, 'CHECKPOINT_INVALID');
    moments.set(p.name, { m: m.data, v: v.data });
  }
  const raw = readFileSync(join(dir, 'sample-weights.f32'));
  const sampleWeights = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  return { dir, model, state, sampleWeights, optimizer: { step: optJson.step, moments } };
}
