import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer, type TokenizerJson } from '../data/tokenizer.js';
import { UserError } from '../util/errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import { ClipModel, type Normalization } from './clip.js';
import type { ClipArchitecture } from './towers.js';

export const MODEL_FORMAT = 'clip-backdoor-filter-model';

interface ModelJson {
  format: typeof MODEL_FORMAT;
  generatedBy: string;
  modelTopology: { architecture: ClipArchitecture; normalization: Normalization };
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  tokenizer: string;
}

/** Encode named float tensors into tfjs's weights format (one binary, a manifest). */
export async function encodeNamed(values: Map<string, { shape: number[]; data: Float32Array }>): Promise<{ data: Uint8Array; specs: tf.io.WeightsManifestEntry[] }> {
  const tensors: tf.NamedTensorMap = {};
  for (const [name, v] of values) tensors[name] = tf.tensor(v.data, v.shape, 'float32');
  try {
    const { data, specs } = await tf.io.encodeWeights(tensors);
    return { data: new Uint8Array(data as ArrayBuffer), specs };
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

export function decodeNamed(data: Uint8Array, specs: tf.io.WeightsManifestEntry[]): Map<string, { shape: number[]; data: Float32Array }> {
  const buffer = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
  const tensors = tf.io.decodeWeights(buffer, specs);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of Object.entries(tensors)) {
    out.set(name, { shape: t.shape, data: t.dataSync() as Float32Array });
    t.dispose();
  }
  return out;
}

/** Save `model.json` + `weights.bin` (standard tfjs weights manifest) + `tokenizer.json` into `dir`. */
export async function saveModel(model: ClipModel, dir: string): Promise<void> {
  const values = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const p of model.params.list) values.set(p.name, { shape: p.variable.shape, data: (await p.variable.data()) as Float32Array });
  const { data, specs } = await encodeNamed(values);
  writeFileAtomic(join(dir, 'weights.bin'), data);
  writeJsonAtomic(join(dir, 'tokenizer.json'), model.tokenizer.toJSON());
  const json: ModelJson = {
    format: MODEL_FORMAT,
    generatedBy: 'clip-backdoor-filter',
    modelTopology: { architecture: model.arch, normalization: model.normalization },
    weightsManifest: [{ paths: ['weights.bin'], weights: specs }],
    tokenizer: 'tokenizer.json',
  };
  writeJsonAtomic(join(dir, 'model.json'), json);
}

function readJson<T>(path: string, what: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new UserError(`cannot read ${what} ${path}: ${(e as Error).message}`, 'CHECKPOINT_INVALID', 'point at a checkpoint directory written by this tool (e.g. <out>/checkpoints/last)');
  }
}

export async function loadModel(dir: string): Promise<ClipModel> {
  const json = readJson<ModelJson>(join(dir, 'model.json'), 'model file');
  if (json.format !== MODEL_FORMAT) {
    throw new UserError(`${join(dir, 'model.json')} is not a clip-backdoor-filter model (format ${String(json.format)})`, 'CHECKPOINT_INVALID');
  }
  const tokenizer = Tokenizer.fromJSON(readJson<TokenizerJson>(join(dir, json.tokenizer), 'tokenizer'));
  const { architecture, normalization } = json.modelTopology;
  const model = ClipModel.create(architecture, tokenizer, normalization, 0);
  const manifest = json.weightsManifest[0];
  const data = readFileSync(join(dir, manifest.paths[0]));
  model.params.assign(decodeNamed(data, manifest.weights));
  return model;
}
