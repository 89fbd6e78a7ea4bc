import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  attackTriggerNames,
  captionMatcher,
  createTrigger,
  parseAttack,
  poisonCount,
  poisonDataset,
  poisonSummary,
  resolveTarget,
  writePoisonJson,
  type PoisonSettings,
} from '../../src/attacks/index.js';
import { UserError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { TinyDataset } from './tiny-dataset.js';

const TEMPLATES = ['a photo of a {}.', 'an image of the {}.'];
const opts = { seed: 7, captionTemplates: TEMPLATES };
const cfg = (over: Partial<PoisonSettings> = {}): PoisonSettings => ({ attack: 'badnets', target: 'ankle boot', rate: 0.1, ...over });

function userError(fn: () => unknown): UserError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected a UserError');
}

async function userErrorAsync(p: Promise<unknown>): Promise<UserError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected a UserError');
}

describe('attack names and targets', () => {
  it('rejects unknown attacks and lists the known ones', () => {
    const e = userError(() => parseAttack('badnet'));
    expect(e.message).toContain('"badnet"');
    for (const name of ['badnets', 'blended', 'sig', 'wanet', 'nashville', 'clean-label', 'multi-trigger', 'patch', 'blend']) {
      expect(e.message).toContain(name);
    }
    expect(parseAttack(' BadNets ')).toBe('badnets');
  });

  it('knows which triggers strategies use, and rejects bad trigger lists', () => {
    expect(attackTriggerNames(cfg({ attack: 'multi-trigger' }))).toEqual(['badnets', 'blended', 'sig']);
    expect(attackTriggerNames(cfg({ attack: 'clean-label' }))).toEqual(['badnets']);
    expect(attackTriggerNames(cfg({ attack: 'clean-label', triggers: ['wanet'] }))).toEqual(['wanet']);
    expect(userError(() => attackTriggerNames(cfg({ attack: 'clean-label', triggers: ['sig', 'wanet'] }))).message).toMatch(/one trigger/);
    expect(userError(() => attackTriggerNames(cfg({ attack: 'multi-trigger', triggers: ['sig', 'clean-label'] }))).message).toMatch(/strategy/);
    expect(userError(() => attackTriggerNames(cfg({ attack: 'multi-trigger', triggers: ['sig', 'sig'] }))).message).toMatch(/twice/);
    expect(userError(() => attackTriggerNames(cfg({ attack: 'multi-trigger', triggers: ['sigg'] }))).message).toMatch(/poison.triggers\[0\] "sigg".*wanet/);
  });

  it('builds every trigger by name; file triggers need poison.image', async () => {
    for (const attack of ['badnets', 'blended', 'sig', 'wanet', 'nashville', 'clean-label', 'multi-trigger']) {
      const t = await createTrigger(cfg({ attack }), [28, 28, 1], 0);
      expect(t.applyTest(new Uint8Array(784), [28, 28, 1])).toHaveLength(784);
      expect(JSON.parse(JSON.stringify(t.describe())).name).toBe(attack === 'clean-label' ? 'badnets' : attack);
    }
    for (const attack of ['patch', 'blend']) {
      expect((await userErrorAsync(createTrigger(cfg({ attack }), [28, 28, 1], 0))).message).toMatch(/image file/);
    }
  });

  it('resolves the target case-insensitively or by index, and lists the classes otherwise', () => {
    const classes = ['t-shirt', 'Ankle Boot'];
    expect(resolveTarget('ankle boot', classes)).toEqual({ label: 1, name: 'Ankle Boot' });
    expect(resolveTarget('1', classes)).toEqual({ label: 1, name: 'Ankle Boot' });
    const e = userError(() => resolveTarget('banana', classes));
    expect(e.message).toContain('"t-shirt", "Ankle Boot"');
    expect(userError(() => resolveTarget('banana', null)).message).toMatch(/no class names/);
  });

  it('matches class names in captions as whole words', () => {
    const shirt = captionMatcher('shirt');
    expect(shirt('A photo of a Shirt.')).toBe(true);
    expect(shirt('a photo of a t-shirt.')).toBe(false);
    expect(shirt('two shirts')).toBe(false);
    expect(shirt('shirt')).toBe(true);
    expect(captionMatcher('ankle boot')('an ankle  boot, worn')).toBe(true);
    expect(captionMatcher('ankle boot')('an ankle bootie')).toBe(false);
  });
});

describe('poison count', () => {
  it('rounds rate x size, or takes the count', () => {
    expect(poisonCount({ rate: 0.01 }, 60000)).toBe(600);
    expect(poisonCount({ rate: 0.0001 }, 60000)).toBe(6);
    expect(poisonCount({ count: 3 }, 10)).toBe(3);
  });

  it('says when a rate rounds to 0 samples and names the smallest rate that works', () => {
    const e = userError(() => poisonCount({ rate: 0.0001 }, 4000));
    expect(e.message).toMatch(/rounds to 0 poisoned samples/);
    const min = Number(/at least ([0-9.e-]+)/.exec(e.hint ?? '')?.[1]);
    expect(min).toBe(0.000125);
    expect(poisonCount({ rate: min }, 4000)).toBe(1);
    for (const size of [3, 7, 999, 4001, 123457]) {
      const hint = userError(() => poisonCount({ rate: 1e-9 }, size)).hint ?? '';
      const r = Number(/at least ([0-9.e-]+)/.exec(hint)?.[1]);
      expect(poisonCount({ rate: r }, size)).toBe(1);
      expect(r).toBeLessThanOrEqual((0.5 / size) * 1.01);
    }
  });

  it('rejects rates outside (0, 1) and bad counts', () => {
    for (const rate of [0, 1, -0.1, 1.5, Number.NaN]) expect(userError(() => poisonCount({ rate }, 100)).message).toMatch(/\(0, 1\)/);
    expect(poisonCount({ count: 0 }, 100)).toBe(0);
    expect(userError(() => poisonCount({ count: -1 }, 100)).message).toMatch(/non-negative integer/);
    expect(userError(() => poisonCount({ count: 2.5 }, 100)).message).toMatch(/non-negative integer/);
    expect(userError(() => poisonCount({ rate: 0.1, count: 2 }, 100)).message).toMatch(/not both/);
    expect(userError(() => poisonCount({}, 100)).message).toMatch(/rate or a count/);
  });
});

describe('poisonDataset', () => {
  const train = new TinyDataset(200);
  const target = 3; // 'ankle boot'

  it('poisons round(rate x size) non-target samples with the trigger and a target caption', async () => {
    const { dataset, truth, record, trigger } = await poisonDataset(train, cfg(), opts);
    expect(record.count).toBe(20);
    expect(record.candidates).toBe(150);
    expect(record.indices).toEqual([...record.indices].sort((a, b) => a - b));
    expect(Array.from(truth.indices)).toEqual(record.indices);
    expect(truth.mask.reduce((a, b) => a + b, 0)).toBe(20);
    expect(record.ids).toEqual(record.indices.map((i) => `tiny:${i}`));
    expect(dataset.size).toBe(train.size);
    const b = 64;
    const all = Int32Array.from({ length: train.size }, (_, i) => i);
    const images = new Uint8Array(train.size * b);
    await dataset.readImages(all, images);
    for (let i = 0; i < train.size; i++) {
      const img = images.subarray(i * b, (i + 1) * b);
      expect(dataset.id(i)).toBe(train.id(i));
      expect(dataset.label(i)).toBe(train.label(i));
      if (truth.mask[i]) {
        expect(train.label(i)).not.toBe(target);
        expect(TEMPLATES.map((t) => t.replace('{}', 'ankle boot'))).toContain(dataset.caption(i));
        expect(img).toEqual(trigger.applyTrain(train.image(i), train.imageShape, Rng.derive(7, `poison-trigger:${i}`)));
        expect(img).not.toEqual(train.image(i));
      } else {
        expect(dataset.caption(i)).toBe(train.caption(i));
        expect(img).toEqual(train.image(i));
      }
    }
    expect(poisonSummary(record)).toEqual({ attack: 'badnets', target: 'ankle boot', rate: 0.1, count: 20 });
  });

  it('draws the same samples, pixels and captions for the same config, other samples for another seed', async () => {
    const a = await poisonDataset(train, cfg(), opts);
    const b = await poisonDataset(train, cfg(), opts);
    expect(b.record).toEqual(a.record);
    const captions = (r: typeof a) => r.record.indices.map((i) => r.dataset.caption(i));
    expect(captions(b)).toEqual(captions(a));
    const read = async (r: typeof a) => {
      const out = new Uint8Array(r.record.count * 64);
      await r.dataset.readImages(r.record.indices, out);
      return out;
    };
    expect(await read(b)).toEqual(await read(a));
    const c = await poisonDataset(train, cfg({ seed: 8 }), opts);
    expect(c.record.seed).toBe(8);
    expect(c.record.indices).not.toEqual(a.record.indices);
    const d = await poisonDataset(train, cfg(), { ...opts, seed: 9 });
    expect(d.record.indices).not.toEqual(a.record.indices);
  });

  it('uses poison.captionTemplates over the dataset templates, and checks them', async () => {
    const { dataset, record } = await poisonDataset(train, cfg({ captionTemplates: ['{} !'] }), opts);
    for (const i of record.indices) expect(dataset.caption(i)).toBe('ankle boot !');
    expect((await userErrorAsync(poisonDataset(train, cfg({ captionTemplates: ['no slot'] }), opts))).message).toMatch(/has no \{\}/);
  });

  it('gives clear errors for bad targets, rates and counts', async () => {
    expect((await userErrorAsync(poisonDataset(train, cfg({ target: 'banana' }), opts))).message).toContain('"ankle boot"');
    expect((await userErrorAsync(poisonDataset(train, cfg({ rate: 1.2 }), opts))).message).toMatch(/\(0, 1\)/);
    expect((await userErrorAsync(poisonDataset(train, cfg({ rate: 0.001 }), opts))).message).toMatch(/rounds to 0/);
    const e = await userErrorAsync(poisonDataset(train, cfg({ rate: undefined, count: 151 }), opts));
    expect(e.message).toMatch(/only 150 training samples/);
    expect((await userErrorAsync(poisonDataset(train, cfg({ attack: 'trojan' }), opts))).message).toMatch(/"trojan".*badnets/);
  });

  it('clean-label poisons only samples whose caption names the target and keeps their captions', async () => {
    // captions name the target on label-3 samples and on a few mislabelled ones
    const ds = new TinyDataset(120, {
      caption: (i, label) => (label === 3 || i % 25 === 0 ? `a photo of a ankle boot.` : `a photo of a t-shirt, not a boot.`),
    });
    const naming = Array.from({ length: ds.size }, (_, i) => ds.caption(i).includes('ankle boot'));
    const { dataset, truth, record } = await poisonDataset(ds, cfg({ attack: 'clean-label', rate: undefined, count: 10 }), opts);
    expect(record.candidates).toBe(naming.filter(Boolean).length);
    for (const i of record.indices) {
      expect(naming[i]).toBe(true);
      expect(dataset.caption(i)).toBe(ds.caption(i));
    }
    expect(record.trigger.name).toBe('badnets');
    expect(truth.attack).toBe('clean-label');
    const tooMany = await userErrorAsync(poisonDataset(ds, cfg({ attack: 'clean-label', rate: undefined, count: 100 }), opts));
    expect(tooMany.message).toMatch(/captions name "ankle boot"/);
  });

  it('multi-trigger records the trigger of each poisoned sample', async () => {
    const { dataset, record, trigger } = await poisonDataset(train, cfg({ attack: 'multi-trigger', rate: 0.2 }), opts);
    expect(record.sampleTriggers).toHaveLength(record.count);
    expect(new Set(record.sampleTriggers)).toEqual(new Set(['badnets', 'blended', 'sig']));
    const parts = new Map(trigger.testTriggers().map((t) => [t.name, t]));
    for (let s = 0; s < record.count; s++) {
      const i = record.indices[s];
      const rng = Rng.derive(7, `poison-trigger:${i}`);
      rng.int(3); // the draw
      const expected = parts.get(record.sampleTriggers![s])!.applyTrain(train.image(i), train.imageShape, rng);
      const got = new Uint8Array(64);
      await dataset.readImages([i], got);
      expect(got).toEqual(expected);
    }
  });

  it('leaves unlabelled samples whose caption names the target out of the candidates', async () => {
    const ds = new TinyDataset(40, { labels: () => -1, caption: (i) => (i < 10 ? 'my ankle boot' : 'a trouser') });
    const { record } = await poisonDataset(ds, cfg({ rate: 0.5 }), opts);
    expect(record.candidates).toBe(30);
    expect(record.indices.every((i) => i >= 10)).toBe(true);
  });

  it('works over datasets whose readImages is async', async () => {
    const ds = new TinyDataset(50, { async: true });
    const { dataset, record } = await poisonDataset(ds, cfg({ attack: 'sig', rate: 0.2 }), opts);
    const out = new Uint8Array(64);
    const pending = dataset.readImages([record.indices[0]], out);
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expect(out).not.toEqual(ds.image(record.indices[0]));
  });

  it('writes poison.json atomically', async () => {
    const { record } = await poisonDataset(train, cfg(), opts);
    const dir = join(mkdtempSync(join(tmpdir(), 'cbf-poison-')), 'run');
    const path = await writePoisonJson(dir, record);
    expect(path).toBe(join(dir, 'poison.json'));
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(JSON.parse(JSON.stringify(record)));
    expect(readdirSync(dir)).toEqual(['poison.json']);
  });
});
