import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  attackSuccessRate,
  BlendTrigger,
  loadGroundTruth,
  MultiTrigger,
  parseCsv,
  poisonDataset,
  SigTrigger,
  triggerTestSet,
  triggerTestSets,
  writePoisonJson,
} from '../../src/attacks/index.js';
import { UserError } from '../../src/util/errors.js';
import { TinyDataset } from './tiny-dataset.js';

const SHAPE = [8, 8, 1] as const;

describe('triggered test set for ASR', () => {
  it('holds every labelled non-target test image, triggered, with its true label', async () => {
    const test = new TinyDataset(40, { labels: (i) => (i === 5 ? -1 : i % 4) });
    const trigger = new SigTrigger({ alpha: 1, shape: SHAPE });
    const set = triggerTestSet(test, trigger, 3);
    const expected = Array.from({ length: 40 }, (_, i) => i).filter((i) => i !== 5 && i % 4 !== 3);
    expect(set.size).toBe(expected.length);
    expect(Array.from({ length: set.size }, (_, j) => set.baseIndex(j))).toEqual(expected);
    const out = new Uint8Array(set.size * 64);
    await set.readImages(Int32Array.from({ length: set.size }, (_, j) => j), out);
    for (let j = 0; j < set.size; j++) {
      expect(set.label(j)).not.toBe(3);
      expect(set.label(j)).toBe(test.label(expected[j]));
      expect(set.id(j)).toBe(test.id(expected[j]));
      expect(out.subarray(j * 64, (j + 1) * 64)).toEqual(trigger.applyTest(test.image(expected[j]), SHAPE));
    }
  });

  it('caches triggered images across reads and returns them in the order asked', async () => {
    const test = new TinyDataset(12);
    const set = triggerTestSet(test, new SigTrigger({ shape: SHAPE }), 0);
    const a = new Uint8Array(2 * 64);
    await set.readImages([4, 1], a);
    const reads = test.reads;
    const b = new Uint8Array(2 * 64);
    await set.readImages([1, 4], b);
    expect(test.reads).toBe(reads);
    expect(b.subarray(0, 64)).toEqual(a.subarray(64));
    expect(b.subarray(64)).toEqual(a.subarray(0, 64));
  });

  it('gives one set per multi-trigger component', () => {
    const test = new TinyDataset(12);
    const multi = new MultiTrigger([new SigTrigger({ shape: SHAPE }), new BlendTrigger({ name: 'blended', alpha: 0.2, seed: 0, shape: SHAPE })]);
    expect(triggerTestSets(test, multi, 1).map((s) => [s.name, s.dataset.size])).toEqual([
      ['sig', 9],
      ['blended', 9],
    ]);
    expect(() => triggerTestSet(test, multi, 4)).toThrow(RangeError);
  });

  it('computes ASR as the share predicted as the target', () => {
    expect(attackSuccessRate([3, 3, 1, 0], 3)).toBe(0.5);
    expect(attackSuccessRate([], 3)).toBeNull();
  });
});

describe('ground truth files', () => {
  const ds = new TinyDataset(20);
  const dir = mkdtempSync(join(tmpdir(), 'cbf-gt-'));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const catchUser = (fn: () => unknown): UserError => {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      return e as UserError;
    }
    throw new Error('expected a UserError');
  };

  it('reads JSON lists of ids and/or indices', () => {
    const t = loadGroundTruth(file('a.json', JSON.stringify(['tiny:4', 'tiny:17', 2, 4])), ds);
    expect(Array.from(t.indices)).toEqual([2, 4, 17]);
    expect(t.mask[17]).toBe(1);
    expect(t.mask.reduce((a, b) => a + b, 0)).toBe(3);
    expect(t.attack).toBe('external');
  });

  it('reads a poison.json written by a run', async () => {
    const { record } = await poisonDataset(ds, { attack: 'sig', target: 'trouser', count: 3 }, { seed: 1, captionTemplates: ['{}'] });
    const path = await writePoisonJson(dir, record);
    const t = loadGroundTruth(path, ds);
    expect(Array.from(t.indices)).toEqual(record.indices);
    expect([t.attack, t.target]).toEqual(['sig', 'trouser']);
  });

  it('reads CSV/TSV files with an id column', () => {
    expect(parseCsv('id,note\r\n"tiny:1","a, b"\ntiny:3,"say ""hi"""\n', ',')).toEqual([
      ['id', 'note'],
      ['tiny:1', 'a, b'],
      ['tiny:3', 'say "hi"'],
    ]);
    const t = loadGroundTruth(file('gt.csv', 'score,ID\n0.9,tiny:8\n0.7,"tiny:1"\n'), ds);
    expect(Array.from(t.indices)).toEqual([1, 8]);
    expect(Array.from(loadGroundTruth(file('gt.tsv', 'id\tscore\ntiny:5\t1\n'), ds).indices)).toEqual([5]);
    expect(Array.from(loadGroundTruth(file('idx.csv', 'index\n3\n0\n'), ds).indices)).toEqual([0, 3]);
  });

  it('names unknown ids, bad indices and missing columns', () => {
    const e = catchUser(() => loadGroundTruth(file('b.json', JSON.stringify(['tiny:1', 'nope', 'tiny:99'])), ds));
    expect(e.message).toMatch(/2 id\(s\).*"nope", "tiny:99"/);
    expect(e.hint).toContain('tiny:0');
    expect(catchUser(() => loadGroundTruth(file('c.json', '[1, 20, -1, 2.5]'), ds)).message).toMatch(/3 entries.*20, -1, 2.5/);
    expect(catchUser(() => loadGroundTruth(file('d.csv', 'name\ntiny:1\n'), ds)).message).toMatch(/no "id" column \(columns: name\)/);
    expect(catchUser(() => loadGroundTruth(file('e.json', '[]'), ds)).message).toMatch(/lists no samples/);
    expect(catchUser(() => loadGroundTruth(file('f.json', '{"x": 1}'), ds)).message).toMatch(/JSON list/);
    expect(catchUser(() => loadGroundTruth(file('g.json', '[1,'), ds)).message).toMatch(/not valid JSON/);
    expect(catchUser(() => loadGroundTruth(join(dir, 'missing.json'), ds)).message).toMatch(/ENOENT/);
  });
});
