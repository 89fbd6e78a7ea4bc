import { describe, expect, it } from 'vitest';
import { coerceToSchema, flattenConfig, mergeConfigs, overridesFromDotted, resolveConfig } from '../../src/config/load.js';
import { UserError } from '../../src/util/errors.js';

function errorOf(fn: () => unknown): UserError {
  try {
    fn();
  } catch (e) {
    if (e instanceof UserError) return e;
    throw e;
  }
  throw new Error('expected a UserError');
}

describe('config', () => {
  it('fills every default and freezes the result', () => {
    const c = resolveConfig({});
    expect(c.data.kind).toBe('synthetic');
    expect(c.model.embedDim).toBe(128);
    expect(c.filter.detector).toBe('slof');
    expect(c.poison).toBeNull();
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.model.hidden)).toBe(true);
  });

  it('names an unknown key with its full path and the allowed keys', () => {
    const e = errorOf(() => resolveConfig({ model: { nope: 3 } } as never));
    expect(e.message).toContain('"model.nope"');
    expect(e.message).toContain('embedDim');
  });

  it('names the key, the bad value and what is allowed for a wrong type', () => {
    const e = errorOf(() => resolveConfig({ train: { epochs: 'many' } } as never));
    expect(e.message).toContain('"train.epochs"');
    expect(e.message).toContain('"many"');
    expect(e.message).toMatch(/expected a number/);
  });

  it('lists the choices of an enum', () => {
    const e = errorOf(() => resolveConfig({ backend: 'gpu' } as never));
    expect(e.message).toContain('"backend"');
    expect(e.message).toContain('"wasm"');
  });

  it('reports every problem at once', () => {
    const e = errorOf(() => resolveConfig({ model: { nope: 1 }, train: { epochs: 0 } } as never));
    expect(e.message).toContain('model.nope');
    expect(e.message).toContain('train.epochs');
  });

  it('coerces command-line strings to the types the schema expects', () => {
    const raw = coerceToSchema({ train: { epochs: '3' }, filter: { enabled: 'true' }, model: { hidden: '64,32' }, poison: { target: 9, attack: 'badnets' } });
    expect(raw).toEqual({ train: { epochs: 3 }, filter: { enabled: true }, model: { hidden: [64, 32] }, poison: { target: '9', attack: 'badnets' } });
  });

  it('lets the last of a repeated scalar option win, but keeps real lists', () => {
    expect(coerceToSchema({ data: { size: [256, 1024] }, model: { hidden: [64, 32] } })).toEqual({ data: { size: 1024 }, model: { hidden: [64, 32] } });
  });

  it('merges later sources over earlier ones, replacing arrays', () => {
    expect(mergeConfigs({ model: { hidden: [1, 2], embedDim: 4 } }, { model: { hidden: [3] } })).toEqual({ model: { hidden: [3], embedDim: 4 } });
    expect(overridesFromDotted([['data.size', 5], ['seed', 1]])).toEqual({ data: { size: 5 }, seed: 1 });
  });

  it('rejects poison.rate together with poison.count', () => {
    const e = errorOf(() => resolveConfig({ poison: { attack: 'badnets', target: 'x', rate: 0.1, count: 3 } }));
    expect(e.message).toMatch(/either poison.rate or poison.count/);
  });

  it('flattens to dotted params', () => {
    const flat = new Map(flattenConfig(resolveConfig({})));
    expect(flat.get('model.embedDim')).toBe('128');
    expect(flat.get('model.hidden')).toBe('[512,512]');
    expect(flat.get('filter.hnsw.M')).toBe('16');
  });
});
