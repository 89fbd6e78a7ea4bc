import type { PoisonConfig } from '../config/schema.js';
import type { ImageShape } from '../data/types.js';
import { UserError } from '../util/errors.js';
import { PatchTrigger, patchSide } from './badnets.js';
import { BlendTrigger, DEFAULT_ALPHA } from './blend.js';
import { loadTriggerImage } from './image-file.js';
import { MultiTrigger } from './multi.js';
import { NashvilleTrigger } from './nashville.js';
import { SigTrigger } from './sig.js';
import type { Trigger } from './trigger.js';
import { WanetTrigger } from './wanet.js';

/** Every `poison.attack` value. */
export const ATTACKS = ['badnets', 'blended', 'sig', 'wanet', 'nashville', 'clean-label', 'multi-trigger', 'patch', 'blend'] as const;
export type AttackName = (typeof ATTACKS)[number];

/** Attacks that are a single trigger, i.e. valid entries of `poison.triggers`. */
export const TRIGGERS = ['badnets', 'blended', 'sig', 'wanet', 'nashville', 'patch', 'blend'] as const;
export type TriggerName = (typeof TRIGGERS)[number];

/** multi-trigger's triggers when `poison.triggers` is not given. */
export const DEFAULT_MULTI_TRIGGERS: readonly TriggerName[] = ['badnets', 'blended', 'sig'];
/** clean-label's trigger when `poison.triggers` is not given. */
export const DEFAULT_CLEAN_LABEL_TRIGGER: TriggerName = 'badnets';

/**
 * The `poison` config section as the attack code reads it: the schema's
 * output type, with everything but `attack` and `target` optional so tests
 * and library users can pass a partial object.
 */
export type PoisonSettings = Pick<PoisonConfig, 'attack' | 'target'> & Partial<Omit<PoisonConfig, 'attack' | 'target'>>;

/** Normalise and check an attack name; unknown names are a UserError listing the known ones. */
export function parseAttack(name: string, key = 'poison.attack'): AttackName {
  const n = String(name).trim().toLowerCase();
  if ((ATTACKS as readonly string[]).includes(n)) return n as AttackName;
  throw new UserError(`unknown ${key} "${name}"; known attacks: ${ATTACKS.join(', ')}`, 'POISON_ATTACK', `set ${key} to one of the known attacks`);
}

function parseTriggerName(name: string, key: string): TriggerName {
  const n = parseAttack(name, key);
  if (!(TRIGGERS as readonly string[]).includes(n)) {
    throw new UserError(`${key} "${name}" is a poisoning strategy, not a trigger; triggers: ${TRIGGERS.join(', ')}`, 'POISON_ATTACK', `use one of the triggers`);
  }
  return n as TriggerName;
}

/** The trigger names an attack uses: itself, clean-label's one trigger or multi-trigger's list. */
export function attackTriggerNames(cfg: PoisonSettings): TriggerName[] {
  const attack = parseAttack(cfg.attack);
  if (attack === 'clean-label') {
    const names = cfg.triggers ?? [DEFAULT_CLEAN_LABEL_TRIGGER];
    if (names.length !== 1) {
      throw new UserError(
        `clean-label applies one trigger, poison.triggers lists ${names.length}: ${names.join(', ')}`,
        'POISON_TRIGGERS',
        'give poison.triggers: [one trigger] (default badnets)',
      );
    }
    return [parseTriggerName(names[0], 'poison.triggers[0]')];
  }
  if (attack === 'multi-trigger') {
    const names = (cfg.triggers ?? DEFAULT_MULTI_TRIGGERS).map((n, i) => parseTriggerName(n, `poison.triggers[${i}]`));
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) throw new UserError(`poison.triggers lists "${dup}" twice`, 'POISON_TRIGGERS', 'list each trigger once');
    return names;
  }
  return [attack as TriggerName];
}

function requireImage(cfg: PoisonSettings, name: string): string {
  if (!cfg.image) {
    throw new UserError(`the ${name} trigger needs an image file`, 'POISON_IMAGE', 'set poison.image to a PNG/JPEG file');
  }
  return cfg.image;
}

/** Build one trigger for images of `shape`. Reads `poison.image` when the trigger uses a file. */
export async function createNamedTrigger(name: TriggerName, cfg: PoisonSettings, shape: ImageShape, seed: number): Promise<Trigger> {
  const position = cfg.position ?? 'random';
  switch (name) {
    case 'badnets':
      return new PatchTrigger({ name, fraction: cfg.patchFraction, position, shape });
    case 'patch': {
      const side = patchSide(shape, cfg.patchFraction);
      const image = await loadTriggerImage(requireImage(cfg, name), side, side, shape, 'contain');
      return new PatchTrigger({ name, position, at: cfg.patchPosition, image, shape });
    }
    case 'blended':
    case 'blend': {
      const file = name === 'blend' ? requireImage(cfg, name) : cfg.image;
      const image = file ? await loadTriggerImage(file, shape[0], shape[1], shape, 'fill') : undefined;
      return new BlendTrigger({ name, alpha: cfg.alpha ?? DEFAULT_ALPHA, seed, image, shape });
    }
    case 'sig':
      return new SigTrigger({ alpha: cfg.alpha, shape });
    case 'wanet':
      return new WanetTrigger({ seed, shape });
    case 'nashville':
      return new NashvilleTrigger({ shape });
  }
}

/**
 * The trigger of a `poison` config for images of `shape`: the attack's own
 * trigger, clean-label's `triggers[0]` (default badnets), or a MultiTrigger
 * over `triggers` (default badnets, blended, sig). `seed` fixes every
 * pattern (blend noise, WaNet grid).
 */
export async function createTrigger(cfg: PoisonSettings, shape: ImageShape, seed: number): Promise<Trigger> {
  const attack = parseAttack(cfg.attack);
  const names = attackTriggerNames(cfg);
  if (attack === 'multi-trigger') {
    return new MultiTrigger(await Promise.all(names.map((n) => createNamedTrigger(n, cfg, shape, seed))));
  }
  return createNamedTrigger(names[0], cfg, shape, seed);
}

/**
 * The target class: a case-insensitive match of `target` against the
 * dataset's class names, or a class index given as digits.
 */
export function resolveTarget(target: string, classNames: readonly string[] | null, datasetName = 'the dataset'): { label: number; name: string } {
  if (!classNames || classNames.length === 0) {
    throw new UserError(
      `${datasetName} has no class names, so poison.target "${target}" cannot be resolved`,
      'POISON_TARGET',
      'give data.classNames (poisoning and ASR need labelled classes)',
    );
  }
  const want = String(target).trim().toLowerCase();
  const label = classNames.findIndex((c) => c.trim().toLowerCase() === want);
  if (label >= 0) return { label, name: classNames[label] };
  if (/^\d+$/.test(want) && Number(want) < classNames.length) return { label: Number(want), name: classNames[Number(want)] };
  throw new UserError(
    `poison.target "${target}" is not a class of ${datasetName}; classes: ${classNames.map((c) => JSON.stringify(c)).join(', ')}`,
    'POISON_TARGET',
    'set poison.target to one of the class names (any case) or a class index',
  );
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A matcher for captions that name `className` as a whole word: case-insensitive,
 * any whitespace between words, and not inside a longer word or a hyphenated
 * one ("shirt" does not match "t-shirt" or "shirts").
 */
export function captionMatcher(className: string): (caption: string) => boolean {
  const words = className.trim().split(/\s+/).map(escapeRegExp).join('\\s+');
  const re = new RegExp(`(^|[^\\p{L}\\p{N}-])${words}(?=$|[^\\p{L}\\p{N}-])`, 'iu');
  return (caption) => re.test(caption);
}
