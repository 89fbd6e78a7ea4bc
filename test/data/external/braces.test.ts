import { describe, expect, it } from 'vitest';
import { expandBraces, expandShardSpec } from '../../../src/data/external/braces.js';
import { UserError } from '../../../src/util/errors.js';

describe('brace expansion', () => {
  it('expands zero-padded numeric ranges to the written width', () => {
    expect(expandBraces('data/{00000..00003}.tar')).toEqual(['data/00000.tar', 'data/00001.tar', 'data/00002.tar', 'data/00003.tar']);
    expect(expandBraces('s{8..11}.tar')).toEqual(['s8.tar', 's9.tar', 's10.tar', 's11.tar']);
    expect(expandBraces('s{08..11}.tar')).toEqual(['s08.tar', 's09.tar', 's10.tar', 's11.tar']);
    expect(expandBraces('{3..1}')).toEqual(['3', '2', '1']);
    expect(expandBraces('{0..10..5}')).toEqual(['0', '5', '10']);
    expect(expandBraces('{00099..00101}')).toEqual(['00099', '00100', '00101']);
  });

  it('expands comma lists, several braces (leftmost slowest) and nested braces', () => {
    expect(expandBraces('{a,b}/{1,2}.tar')).toEqual(['a/1.tar', 'a/2.tar', 'b/1.tar', 'b/2.tar']);
    expect(expandBraces('x{a,{b,c}d}')).toEqual(['xa', 'xbd', 'xcd']);
    expect(expandBraces('train-{0..1}-{0..2}.tar')).toHaveLength(6);
    expect(expandBraces('{a,,b}')).toEqual(['a', '', 'b']);
  });

  it('keeps text without braces and single-word braces literal', () => {
    expect(expandBraces('plain.tar')).toEqual(['plain.tar']);
    expect(expandBraces('a{b}c')).toEqual(['a{b}c']);
    expect(expandBraces('{x}{1,2}')).toEqual(['{x}1', '{x}2']);
  });

  it('rejects unmatched braces and absurd ranges', () => {
    expect(() => expandBraces('data/{0..3.tar')).toThrow(UserError);
    expect(() => expandBraces('data/0..3}.tar')).toThrow(/unmatched "}"/);
    expect(() => expandBraces('{0..99999999}')).toThrow(UserError);
  });

  it('splits multiple specs at :: and expands each in order', () => {
    expect(expandShardSpec('a/{0..1}.tar::b/{x,y}.tar')).toEqual(['a/0.tar', 'a/1.tar', 'b/x.tar', 'b/y.tar']);
    expect(() => expandShardSpec(' :: ')).toThrow(UserError);
  });
});
