import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readNpy, readNpyMatrix, writeNpy } from '../../src/util/npy.js';
import { UserError } from '../../src/util/errors.js';

// Files written by numpy 1.24 (np.save / np.lib.format.write_array), base64.
const NUMPY = {
  f4v1: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAMA/AAAAwAAAQEAAAIBAAACgQAAAyEA=',
  f8v2: 'k05VTVBZAgB0AAAAeydkZXNjcic6ICc8ZjgnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMywpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqamZmZmZm5P5x1AIg85Dd+AAAAAAAACMA=',
  i8v3: 'k05VTVBZAwB0AAAAeydkZXNjcic6ICc8aTgnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMiksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAAAAAAAAP7/////////////fwAAAAAAAACA/////w==',
  b1: 'k05VTVBZAQB2AHsnZGVzY3InOiAnfGIxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAE=',
  u1: 'k05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDUsIDEsIDEpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAQIDBA==',
  i4scalar: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoHAAAA',
  fortran: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBUcnVlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIA/AACAPwAAgD8AAIA/AACAPwAAgD8=',
  bigEndian: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPmY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAo/gAAAP4AAAD+AAAA=',
  object: 'k05VTVBZAQB2AHsnZGVzY3InOiAnfE8nLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqAA2NudW1weS5jb3JlLm11bHRpYXJyYXkKX3JlY29uc3RydWN0CnEAY251bXB5Cm5kYXJyYXkKcQFLAIVxAkMBYnEDh3EEUnEFKEsBSwKFcQZjbnVtcHkKZHR5cGUKcQdYAgAAAE84cQiJiIdxCVJxCihLA1gBAAAAfHELTk5OSv////9K/////0s/dHEMYoldcQ0oSwFYAQAAAGFxDmV0cQ9iLg==',
  structured: 'k05VTVBZAQB2AHsnZGVzY3InOiBbKCdhJywgJzxmNCcpLCAoJ2InLCAnPGk0JyldLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAAAAAAAAAAAAA',
  float16: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGYyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAPAA8',
  i8TooBig: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAEAAA==',
};

const dir = mkdtempSync(join(tmpdir(), 'npy-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fixture(name: keyof typeof NUMPY, transform?: (b: Buffer) => Buffer): string {
  const path = join(dir, `${name}.npy`);
  const bytes = Buffer.from(NUMPY[name], 'base64');
  writeFileSync(path, transform ? transform(bytes) : bytes);
  return path;
}

function userError(fn: () => unknown): UserError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected a UserError');
}

describe('readNpy on numpy-written files', () => {
  it('v1 float32 2-D', () => {
    const a = readNpy(fixture('f4v1'));
    expect(a.dtype).toBe('f4');
    expect(a.shape).toEqual([2, 3]);
    expect(a.data).toBeInstanceOf(Float32Array);
    expect(Array.from(a.data)).toEqual([1.5, -2, 3, 4, 5, 6.25]);
  });

  it('v2 float64', () => {
    const a = readNpy(fixture('f8v2'));
    expect(a.dtype).toBe('f8');
    expect(a.shape).toEqual([3]);
    expect(a.data).toBeInstanceOf(Float64Array);
    expect(Array.from(a.data)).toEqual([0.1, 1e300, -3]);
  });

  it('v3 int64 -> Int32Array, including the int32 extremes', () => {
    const a = readNpy(fixture('i8v3'));
    expect(a.dtype).toBe('i8');
    expect(a.shape).toEqual([2, 2]);
    expect(a.data).toBeInstanceOf(Int32Array);
    expect(Array.from(a.data)).toEqual([1, -2, 2147483647, -2147483648]);
  });

  it('bool, uint8 3-D and a 0-d int32 scalar', () => {
    const b = readNpy(fixture('b1'));
    expect(b.dtype).toBe('b1');
    expect(Array.from(b.data)).toEqual([1, 0, 1]);
    const u = readNpy(fixture('u1'));
    expect(u.shape).toEqual([5, 1, 1]);
    expect(u.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(u.data)).toEqual([0, 1, 2, 3, 4]);
    const s = readNpy(fixture('i4scalar'));
    expect(s.shape).toEqual([]);
    expect(Array.from(s.data)).toEqual([7]);
  });
});

describe('readNpy errors name the file and the problem', () => {
  it.each([
    ['fortran', /fortran_order|Fortran-order/i, /ascontiguousarray/],
    ['bigEndian', /big-endian dtype >f4/, /newbyteorder/],
    ['object', /object dtype \(\|O\)/, /np.asarray/],
    ['structured', /structured \(record\) dtype/, /astype/],
    ['float16', /dtype <f2 is not supported/, /astype/],
    ['i8TooBig', /1099511627776 .* does not fit in int32/, /int32/],
  ] as const)('%s', (name, message, hint) => {
    const path = fixture(name);
    const e = userError(() => readNpy(path));
    expect(e.message).toContain(path);
    expect(e.message).toMatch(message);
    expect(e.hint ?? '').toMatch(hint);
  });

  it('truncated data, truncated header, tiny files, bad magic, unknown version, missing file', () => {
    const cut = fixture('f4v1', (b) => b.subarray(0, b.length - 3));
    expect(userError(() => readNpy(cut)).message).toMatch(new RegExp(`${cut}: file is truncated: shape \\(2, 3\\) of f4 needs 24 data bytes, only 21 present`));
    const header = fixture('f8v2', (b) => b.subarray(0, 40));
    expect(userError(() => readNpy(header)).message).toMatch(/truncated: the header needs 116 bytes/);
    const tiny = fixture('b1', (b) => b.subarray(0, 5));
    expect(userError(() => readNpy(tiny)).message).toMatch(/truncated: 5 bytes/);
    const magic = fixture('b1', (b) => Buffer.concat([Buffer.from('XX'), b.subarray(2)]));
    expect(userError(() => readNpy(magic)).message).toMatch(/not an \.npy file/);
    const version = fixture('b1', (b) => {
      const c = Buffer.from(b);
      c[6] = 9;
      return c;
    });
    expect(userError(() => readNpy(version)).message).toMatch(/unsupported \.npy format version 9/);
    expect(userError(() => readNpy(join(dir, 'missing.npy'))).message).toMatch(/cannot open .*missing\.npy: ENOENT/);
  });
});

describe('readNpyMatrix', () => {
  it('reads 2-D float32 as is and narrows float64', () => {
    const a = readNpyMatrix(fixture('f4v1'));
    expect([a.rows, a.cols]).toEqual([2, 3]);
    expect(Array.from(a.data)).toEqual([1.5, -2, 3, 4, 5, 6.25]);
    const path = join(dir, 'm64.npy');
    writeNpy(path, Float64Array.from([0.1, 0.2, 0.3, 0.4]), [2, 2]);
    const b = readNpyMatrix(path);
    expect(b.data).toBeInstanceOf(Float32Array);
    expect(Array.from(b.data)).toEqual([0.1, 0.2, 0.3, 0.4].map(Math.fround));
  });

  it('rejects other dtypes and ranks, naming dtype, shape and what is accepted', () => {
    for (const [name, what] of [
      ['f8v2', 'dtype f8 with shape (3)'],
      ['u1', 'dtype u1 with shape (5, 1, 1)'],
      ['i8v3', 'dtype i8 with shape (2, 2)'],
    ] as const) {
      const path = fixture(name);
      const e = userError(() => readNpyMatrix(path));
      expect(e.message).toContain(path);
      expect(e.message).toContain(what);
      expect(e.message).toMatch(/expected a 2-D float32 or float64 matrix/);
    }
  });
});

describe('writeNpy', () => {
  it.each([
    ['f4', Float32Array.from([1.25, -3, 1e-7, 4, 5, 6]), [2, 3]],
    ['i4', Int32Array.from([-2147483648, 0, 2147483647]), [3]],
    ['u1', Uint8Array.from([0, 255, 7, 9]), [2, 1, 2]],
    ['f8', Float64Array.from([Math.PI, -0]), [2]],
  ] as const)('round-trips %s', (dtype, data, shape) => {
    const path = join(dir, `rt-${dtype}.npy`);
    writeNpy(path, data, shape);
    const back = readNpy(path);
    expect(back.dtype).toBe(dtype);
    expect(back.shape).toEqual(shape);
    expect(back.data.constructor).toBe(data.constructor);
    expect(Array.from(back.data)).toEqual(Array.from(data));
    // numpy's layout: magic, version 1.0, data aligned to 64 bytes, header ends in a newline
    const raw = readFileSync(path);
    expect(raw.subarray(0, 8)).toEqual(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]));
    const headerLen = raw.readUInt16LE(8);
    expect((10 + headerLen) % 64).toBe(0);
    expect(raw[10 + headerLen - 1]).toBe(0x0a);
  });

  it('writes the shape as numpy does for 1-D and empty arrays', () => {
    const path = join(dir, 'empty.npy');
    writeNpy(path, new Float32Array(0), [0, 4]);
    expect(readNpy(path).shape).toEqual([0, 4]);
    expect(readFileSync(path, 'latin1')).toContain("'shape': (0, 4)");
    writeNpy(path, new Float32Array(2), [2]);
    expect(readFileSync(path, 'latin1')).toContain("'shape': (2,)");
  });

  it('rejects a shape that does not match the data', () => {
    expect(() => writeNpy(join(dir, 'bad.npy'), new Float32Array(5), [2, 3])).toThrow(/holds 6 values but data has 5/);
  });
});
