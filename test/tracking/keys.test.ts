import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fileStoreValue, keyProblem, sanitizeKey, toInteger, toWireValue, truncateValue, TRUNCATION_MARKER } from '../../src/tracking/keys.js';
import { authorizationHeader, makeRedactor, pickTrackingUri, resolveTrackingTarget, stripUrlCredentials } from '../../src/tracking/uri.js';
import { UserError } from '../../src/util/errors.js';
import { pyFloat, pyInt } from './mlflowReader.js';

describe('key names', () => {
  it('accepts what MLflow accepts', () => {
    for (const k of ['train/loss', 'eval/clean_accuracy', 'model.embedDim', 'a-b c_d', 'x/y/z', 'étape', 'data.captionTemplates', 'a'.repeat(250)]) {
      expect(keyProblem(k), k).toBeNull();
    }
  });

  it('rejects what MLflow rejects, saying why', () => {
    expect(keyProblem('')).toMatch(/empty/);
    expect(keyProblem('a'.repeat(251))).toMatch(/251 characters/);
    expect(keyProblem('loss!')).toMatch(/may only contain/);
    expect(keyProblem('/loss')).toMatch(/start with/);
    expect(keyProblem('a//b')).toMatch(/\/\//);
    expect(keyProblem('a/')).toMatch(/end with/);
    expect(keyProblem('../x')).toMatch(/\.\./);
    expect(keyProblem('a/./b')).toMatch(/"\."/);
    expect(keyProblem('.')).toMatch(/"\."/);
  });

  it('sanitises to the closest valid key', () => {
    expect(sanitizeKey('loss!')).toBe('loss_');
    expect(sanitizeKey('/a//b/')).toBe('a/b');
    expect(sanitizeKey('../x')).toBe('__/x');
    expect(sanitizeKey('')).toBe('_');
    expect(sanitizeKey('x'.repeat(300))).toHaveLength(250);
    expect(sanitizeKey('train/loss')).toBe('train/loss');
  });

  it('sanitised keys are always valid', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => keyProblem(sanitizeKey(s)) === null),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', '.', '/', '..', 'é', ' ', '!', '-'), { maxLength: 400 }), (parts) => keyProblem(sanitizeKey(parts.join(''))) === null),
      { numRuns: 500 },
    );
    // Cut in the middle of a path: the tail segment must not end up "." or "..".
    expect(keyProblem(sanitizeKey(`${'a'.repeat(248)}/..x`))).toBeNull();
    expect(keyProblem(sanitizeKey(`${'a'.repeat(248)}/.`))).toBeNull();
  });
});

describe('values', () => {
  it('truncates to the limit with a visible marker', () => {
    const t = truncateValue('x'.repeat(7000), 6000);
    expect(t.truncated).toBe(true);
    expect(t.value).toHaveLength(6000);
    expect(t.value.endsWith(TRUNCATION_MARKER)).toBe(true);
    expect(truncateValue('short', 6000)).toEqual({ value: 'short', truncated: false });
    expect(truncateValue('x'.repeat(6000), 6000).truncated).toBe(false);
  });

  it('never splits a surrogate pair', () => {
    const limit = 20;
    const text = '😀'.repeat(30);
    const t = truncateValue(text, limit);
    expect(t.value.length).toBeLessThanOrEqual(limit);
    const head = t.value.slice(0, -TRUNCATION_MARKER.length);
    expect(head).toBe('😀'.repeat(head.length / 2));
  });

  it('encodes non-finite values as MLflow accepts them', () => {
    expect(toWireValue(NaN)).toBe('NaN');
    expect(toWireValue(Infinity)).toBe('Infinity');
    expect(toWireValue(-Infinity)).toBe('-Infinity');
    expect(toWireValue(0.5)).toBe(0.5);
    expect(JSON.stringify({ v: toWireValue(NaN) })).toBe('{"v":"NaN"}');
    expect(fileStoreValue('NaN')).toBe('nan');
    expect(fileStoreValue('Infinity')).toBe('inf');
    expect(fileStoreValue('-Infinity')).toBe('-inf');
  });

  it('writes finite values that Python float() reads back to the same double', () => {
    fc.assert(
      // -0 is written as "0": equal as a value, which is all MLflow keeps.
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => pyFloat(fileStoreValue(x)) === x),
      { numRuns: 1000 },
    );
    for (const x of [1e-7, 1e21, -3.25, 5e-324, Number.MAX_VALUE]) expect(pyFloat(fileStoreValue(x))).toBe(x);
  });

  it('turns times and steps into integers Python int() accepts', () => {
    for (const x of [1.5, 1e20, 1e300, -1e300, 3, -0]) expect(() => pyInt(String(toInteger(x)))).not.toThrow();
    expect(toInteger(2.5)).toBe(3);
    expect(toInteger(NaN)).toBe(0);
  });
});

describe('tracking URI', () => {
  it('takes tracking.uri, then MLFLOW_TRACKING_URI, then ./mlruns', () => {
    expect(pickTrackingUri('http://a:1', { MLFLOW_TRACKING_URI: 'http://b:2' })).toBe('http://a:1');
    expect(pickTrackingUri(undefined, { MLFLOW_TRACKING_URI: 'http://b:2' })).toBe('http://b:2');
    expect(pickTrackingUri(undefined, {})).toBe('./mlruns');
    expect(pickTrackingUri('', { MLFLOW_TRACKING_URI: ' ' })).toBe('./mlruns');
  });

  it('resolves local stores to absolute paths and file:// URIs', () => {
    expect(resolveTrackingTarget('./mlruns', '/work/x')).toEqual({ kind: 'file', root: '/work/x/mlruns', uri: 'file:///work/x/mlruns' });
    expect(resolveTrackingTarget('/abs/ml runs', '/x')).toEqual({ kind: 'file', root: '/abs/ml runs', uri: 'file:///abs/ml%20runs' });
    expect(resolveTrackingTarget('file:///abs/mlruns', '/x')).toMatchObject({ kind: 'file', root: '/abs/mlruns' });
    expect(resolveTrackingTarget('file:rel/mlruns', '/x')).toMatchObject({ kind: 'file', root: '/x/rel/mlruns' });
  });

  it('strips credentials from server URIs', () => {
    const t = resolveTrackingTarget('https://bob:p%40ss@host:5000/prefix/?x=1');
    expect(t).toEqual({ kind: 'http', baseUrl: 'https://host:5000/prefix', uri: 'https://host:5000/prefix', uriCredentials: { username: 'bob', password: 'p@ss' } });
    expect(authorizationHeader({}, t.kind === 'http' ? t.uriCredentials : null)).toBe(`Basic ${Buffer.from('bob:p@ss').toString('base64')}`);
  });

  it('reports unsupported schemes without credentials', () => {
    let err: unknown;
    try {
      resolveTrackingTarget('postgresql://u:hunter22@db/mlflow');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/postgresql/);
    expect((err as UserError).message).not.toContain('hunter22');
  });

  it('picks basic auth from the environment, then from the URI, then the token, as MLflow does', () => {
    const uriCreds = { username: 'x', password: 'y' };
    expect(authorizationHeader({ MLFLOW_TRACKING_USERNAME: 'u', MLFLOW_TRACKING_PASSWORD: 'p', MLFLOW_TRACKING_TOKEN: 't' }, uriCreds)).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
    expect(authorizationHeader({ MLFLOW_TRACKING_TOKEN: 't' }, uriCreds)).toBe(`Basic ${Buffer.from('x:y').toString('base64')}`);
    expect(authorizationHeader({ MLFLOW_TRACKING_TOKEN: 't' }, null)).toBe('Bearer t');
    expect(authorizationHeader({}, null)).toBeNull();
  });

  it('redacts every form of every secret', () => {
    const env = { MLFLOW_TRACKING_USERNAME: 'alice', MLFLOW_TRACKING_PASSWORD: 'pa ss/word', MLFLOW_TRACKING_TOKEN: 'tok-123456' };
    const redact = makeRedactor(env, ['http://carol:s3cr%2Ft@h:1']);
    const text = `x pa ss/word ${encodeURIComponent('pa ss/word')} tok-123456 ${Buffer.from('alice:pa ss/word').toString('base64')} http://carol:s3cr%2Ft@h:1/api s3cr/t`;
    const out = redact(text);
    for (const secret of ['pa ss/word', 'pa%20ss%2Fword', 'tok-123456', 's3cr%2Ft', 's3cr/t', 'carol:']) expect(out).not.toContain(secret);
    expect(stripUrlCredentials('see http://u:p@h:1/x and https://t@h')).toBe('see http://h:1/x and https://h');
  });
});
