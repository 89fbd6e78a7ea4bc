import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { imageBytes, type ClipDataset, type ImageShape } from '../data/types.js';
import type { PoisonTruth } from '../train/hooks.js';
import type { PoisonSummary } from '../train/summary.js';
import { UserError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { MultiTrigger } from './multi.js';
import { captionMatcher, createTrigger, parseAttack, resolveTarget, type PoisonSettings } from './registry.js';
import type { Trigger } from './trigger.js';

/** What a poisoned run writes to `<out>/poison.json`. */
export interface PoisonRecord {
  attack: string;
  /** The target class name as the dataset spells it. */
  target: string;
  targetLabel: number;
  /** The configured rate, or count / train size when a count was given. */
  rate: number;
  count: number;
  seed: number;
  /** Samples the poisons were drawn from (label != target; clean-label: caption names the target). */
  candidates: number;
  /** Poisoned sample indices, ascending. */
  indices: number[];
  /** Their ids, aligned with `indices`. */
  ids: string[];
  trigger: Record<string, unknown>;
  /** multi-trigger: the trigger each poisoned sample got, aligned with `indices`. */
  sampleTriggers?: string[];
}

export interface PoisonOptions {
  /** The run seed; `poison.seed` overrides it. */
  readonly seed: number;
  /** The dataset's caption templates; `poison.captionTemplates` overrides them. */
  readonly captionTemplates: readonly string[];
}

export interface PoisonResult {
  readonly dataset: PoisonedDataset;
  readonly truth: PoisonTruth;
  readonly record: PoisonRecord;
  /** The trigger to measure ASR with (iterate `trigger.testTriggers()`). */
  readonly trigger: Trigger;
}

/**
 * The training set as the model sees it: the wrapped dataset, except that
 * poisoned samples return their triggered image and (unless clean-label)
 * their target caption. Ids, labels and size are the original ones.
 */
export class PoisonedDataset implements ClipDataset {
  readonly name: string;
  readonly size: number;
  readonly imageShape: ImageShape;
  readonly classNames: readonly string[] | null;
  private readonly bytes: number;

  constructor(
    readonly base: ClipDataset,
    /** slot[i] = row of sample i in `images`, or -1 when i is clean. */
    private readonly slot: Int32Array,
    private readonly images: Uint8Array,
    private readonly captions: ReadonlyMap<number, string>,
  ) {
    this.name = base.name;
    this.size = base.size;
    this.imageShape = base.imageShape;
    this.classNames = base.classNames;
    this.bytes = imageBytes(base.imageShape);
  }

  isPoisoned(index: number): boolean {
    return this.slot[index] >= 0;
  }

  id(index: number): string {
    return this.base.id(index);
  }

  caption(index: number): string {
    return this.captions.get(index) ?? this.base.caption(index);
  }

  label(index: number): number {
    return this.base.label(index);
  }

  readImages(indices: ArrayLike<number>, out: Uint8Array): void | Promise<void> {
    const pending = this.base.readImages(indices, out);
    if (pending instanceof Promise) return pending.then(() => this.overlay(indices, out));
    this.overlay(indices, out);
  }

  private overlay(indices: ArrayLike<number>, out: Uint8Array): void {
    const b = this.bytes;
    for (let j = 0; j < indices.length; j++) {
      const s = this.slot[indices[j]];
      if (s >= 0) out.set(this.images.subarray(s * b, (s + 1) * b), j * b);
    }
  }
}

/** Shortest decimal >= 0.5 / size (3 significant digits) that still rounds to one sample. */
function smallestRate(size: number): number {
  const exact = 0.5 / size;
  const f = 10 ** (2 - Math.floor(Math.log10(exact)));
  let r = Math.ceil(exact * f) / f;
  while (Math.round(r * size) < 1) r += 1 / f;
  return Number(r.toPrecision(3));
}

/** The number of samples to poison from `rate` or `count`, with errors a user can act on. */
export function poisonCount(cfg: Pick<PoisonSettings, 'rate' | 'count'>, size: number): number {
  const { rate, count } = cfg;
  if (!(size > 0)) throw new UserError('cannot poison an empty training set', 'POISON_RATE', 'check data.size and the data source');
  if (rate !== undefined && count !== undefined) {
    throw new UserError('give either poison.rate or poison.count, not both', 'POISON_RATE');
  }
  if (count !== undefined) {
    // count 0 is a clean run that still measures the trigger's ASR: the baseline a poisoned run is compared with.
    if (!(Number.isInteger(count) && count >= 0)) {
      throw new UserError(`poison.count must be a non-negative integer, got ${count}`, 'POISON_RATE', 'poison.count 0 poisons nothing but still measures the trigger\'s attack success rate (a clean baseline)');
    }
    return count;
  }
  if (rate === undefined) {
    throw new UserError('poison needs a rate or a count', 'POISON_RATE', 'set poison.rate (e.g. 0.01) or poison.count');
  }
  if (!(typeof rate === 'number' && rate > 0 && rate < 1)) {
    throw new UserError(`poison.rate must be in (0, 1), got ${rate}`, 'POISON_RATE', 'e.g. 0.01 for 1%, 0.0001 for 0.01%');
  }
  const n = Math.round(rate * size);
  if (n < 1) {
    const min = smallestRate(size);
    throw new UserError(
      `poison.rate ${rate} of ${size} training samples rounds to 0 poisoned samples`,
      'POISON_RATE',
      `the smallest rate that poisons a sample here is ${min}; raise poison.rate to at least ${min} or set poison.count`,
    );
  }
  return n;
}

function checkTemplates(templates: readonly string[]): void {
  if (templates.length === 0) throw new UserError('poison.captionTemplates is empty', 'POISON_TEMPLATES', 'give at least one template with {}');
  const bad = templates.find((t) => !t.includes('{}'));
  if (bad !== undefined) {
    throw new UserError(`caption template "${bad}" has no {} for the target class`, 'POISON_TEMPLATES', 'e.g. "a photo of a {}."');
  }
}

/** Images of `indices` read in chunks (a dataset may stream from disk). */
async function readMany(ds: ClipDataset, indices: Int32Array, chunk = 512): Promise<Uint8Array> {
  const b = imageBytes(ds.imageShape);
  const out = new Uint8Array(indices.length * b);
  for (let s = 0; s < indices.length; s += chunk) {
    const part = indices.subarray(s, Math.min(indices.length, s + chunk));
    await ds.readImages(part, out.subarray(s * b, (s + part.length) * b));
  }
  return out;
}

/**
 * Poison a training set. Candidates are the samples whose label is not the
 * target (unlabelled ones: whose caption does not name it), or for
 * clean-label those whose caption names it. `count` of them (poison.count,
 * or round(rate x size)) are drawn without replacement from
 * `Rng.derive(seed, 'poison')`; each gets `applyTrain` with its own stream
 * `Rng.derive(seed, 'poison-trigger:<index>')` and, except for clean-label,
 * the caption `template.replace('{}', target)` with the template drawn from
 * `Rng.derive(seed, 'poison-caption:<index>')`. Same config, same poisons.
 */
export async function poisonDataset(train: ClipDataset, cfg: PoisonSettings, opts: PoisonOptions): Promise<PoisonResult> {
  const attack = parseAttack(cfg.attack);
  const seed = cfg.seed ?? opts.seed;
  if (!(Number.isInteger(seed) && seed >= 0)) throw new UserError(`poison.seed must be a non-negative integer, got ${seed}`, 'POISON_SEED');
  const target = resolveTarget(cfg.target, train.classNames, `dataset ${train.name}`);
  const templates = cfg.captionTemplates ?? opts.captionTemplates;
  const cleanLabel = attack === 'clean-label';
  if (!cleanLabel) checkTemplates(templates);
  const count = poisonCount(cfg, train.size);
  const trigger = await createTrigger(cfg, train.imageShape, seed);

  const namesTarget = captionMatcher(target.name);
  const pool: number[] = [];
  for (let i = 0; i < train.size; i++) {
    if (cleanLabel) {
      if (namesTarget(train.caption(i))) pool.push(i);
    } else {
      const label = train.label(i);
      if (label >= 0 ? label !== target.label : !namesTarget(train.caption(i))) pool.push(i);
    }
  }
  if (count > pool.length) {
    const what = cleanLabel ? `training captions name "${target.name}"` : `training samples are not of class "${target.name}"`;
    throw new UserError(
      `cannot poison ${count} samples: only ${pool.length} ${what}`,
      'POISON_RATE',
      pool.length > 0 ? `lower poison.rate / poison.count to at most ${pool.length} samples` : 'choose another poison.target',
    );
  }

  const indices = Rng.derive(seed, 'poison').sample(pool, count).sort();
  const shape = train.imageShape;
  const b = imageBytes(shape);
  const images = await readMany(train, indices);
  const slot = new Int32Array(train.size).fill(-1);
  const captions = new Map<number, string>();
  const sampleTriggers: string[] = [];
  for (let s = 0; s < indices.length; s++) {
    const i = indices[s];
    const rng = Rng.derive(seed, `poison-trigger:${i}`);
    const used = trigger instanceof MultiTrigger ? trigger.pick(rng) : trigger;
    sampleTriggers.push(used.name);
    images.set(used.applyTrain(images.subarray(s * b, (s + 1) * b), shape, rng), s * b);
    slot[i] = s;
    if (!cleanLabel) {
      const template = templates[Rng.derive(seed, `poison-caption:${i}`).int(templates.length)];
      captions.set(i, template.split('{}').join(target.name));
    }
  }

  const mask = new Uint8Array(train.size);
  for (const i of indices) mask[i] = 1;
  const indexList = Array.from(indices);
  const record: PoisonRecord = {
    attack,
    target: target.name,
    targetLabel: target.label,
    rate: cfg.rate ?? count / train.size,
    count,
    seed,
    candidates: pool.length,
    indices: indexList,
    ids: indexList.map((i) => train.id(i)),
    trigger: trigger.describe(),
    ...(trigger instanceof MultiTrigger ? { sampleTriggers } : {}),
  };
  return {
    dataset: new PoisonedDataset(train, slot, images, captions),
    truth: { attack, target: target.name, indices, mask },
    record,
    trigger,
  };
}

/** The `poison` section of summary.json. */
export function poisonSummary(record: PoisonRecord): PoisonSummary {
  return { attack: record.attack, target: record.target, rate: record.rate, count: record.count };
}

/** JSON with one key per line and each value (long index lists included) on its line. */
function formatRecord(record: PoisonRecord): string {
  const lines = Object.entries(record)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  return `{\n${lines.join(',\n')}\n}\n`;
}

/** Write `<outDir>/poison.json` atomically (temp file + rename); returns its path. */
export async function writePoisonJson(outDir: string, record: PoisonRecord): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const path = join(outDir, 'poison.json');
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  await writeFile(tmp, formatRecord(record));
  await rename(tmp, path);
  return path;
}
