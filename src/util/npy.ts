import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { UserError } from './errors.js';

/**
 * NumPy `.npy` files (format versions 1, 2 and 3), the exchange format for
 * embeddings, scores and index lists with Python tools. Only what this
 * project needs: little-endian f4/f8/i4/i8/u1/b1 arrays in C order. Data is
 * read straight into a freshly allocated typed array (no intermediate Buffer
 * copy), so a 1 GB embedding file costs 1 GB.
 */

export type NpyDtype = 'f4' | 'f8' | 'i4' | 'i8' | 'u1' | 'b1';
export type NpyData = Float32Array | Float64Array | Int32Array | Uint8Array;

export interface NpyArray {
  /** `i8` is returned as Int32Array (values outside int32 are an error), `b1` as 0/1 bytes. */
  data: NpyData;
  shape: number[];
  /** The dtype stored in the file. */
  dtype: NpyDtype;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ITEM_SIZE: Record<NpyDtype, number> = { f4: 4, f8: 8, i4: 4, i8: 8, u1: 1, b1: 1 };
const SUPPORTED = 'little-endian float32 (<f4), float64 (<f8), int32 (<i4), int64 (<i8), uint8 (|u1) or bool (|b1)';
/** Bytes per readSync call: far below the 2 GiB a single call may transfer. */
const READ_CHUNK = 1 << 26;

interface Header {
  dtype: NpyDtype;
  shape: number[];
  count: number;
  dataOffset: number;
}

const bad = (path: string, what: string, hint?: string) => new UserError(`${path}: ${what}`, 'NPY_INVALID', hint);

function readExactly(fd: number, path: string, target: Uint8Array, position: number, what: string): void {
  let done = 0;
  while (done < target.length) {
    const len = Math.min(READ_CHUNK, target.length - done);
    const got = readSync(fd, target, done, len, position + done);
    if (got === 0) {
      throw bad(path, `file is truncated: ${what} needs ${target.length} bytes at offset ${position}, only ${done} present`, 're-export the array (np.save) or copy the file again');
    }
    done += got;
  }
}

function parseDescr(path: string, header: string): NpyDtype {
  const m = /['"]descr['"]\s*:\s*(['"])([^'"]*)\1/.exec(header);
  if (!m) {
    if (/['"]descr['"]\s*:\s*\[/.test(header)) throw bad(path, `structured (record) dtype is not supported; expected ${SUPPORTED}`, 'save a plain numeric array, e.g. np.save(path, arr.astype(np.float32))');
    throw bad(path, `header has no readable 'descr' entry: ${header.trim()}`);
  }
  const descr = m[2];
  const order = descr[0];
  const code = descr.slice(1);
  if (descr.startsWith('O') || code === 'O') throw bad(path, `object dtype (${descr}) cannot be read without pickle; expected ${SUPPORTED}`, 'save a numeric array, e.g. np.save(path, np.asarray(x, dtype=np.float32))');
  if (order === '>') throw bad(path, `big-endian dtype ${descr} is not supported; expected ${SUPPORTED}`, "convert it first: np.save(path, arr.astype(arr.dtype.newbyteorder('<')))");
  if (!['<', '|', '='].includes(order)) throw bad(path, `unrecognised dtype ${descr}; expected ${SUPPORTED}`);
  if (code === 'f4' || code === 'f8' || code === 'i4' || code === 'i8' || code === 'u1' || code === 'b1') {
    if (order === '|' && ITEM_SIZE[code] > 1) throw bad(path, `dtype ${descr} has no byte order; expected ${SUPPORTED}`);
    return code;
  }
  throw bad(path, `dtype ${descr} is not supported; expected ${SUPPORTED}`, 'convert it first, e.g. np.save(path, arr.astype(np.float32))');
}

function parseHeader(path: string, fd: number, fileSize: number): Header {
  const pre = new Uint8Array(12);
  if (fileSize < 10) throw bad(path, `file is truncated: ${fileSize} bytes, not even an .npy preamble (10 bytes)`);
  readExactly(fd, path, pre.subarray(0, Math.min(12, fileSize)), 0, 'the preamble');
  for (let i = 0; i < MAGIC.length; i++) {
    if (pre[i] !== MAGIC[i]) throw bad(path, 'not an .npy file (missing the \\x93NUMPY magic)', 'write it with numpy.save');
  }
  const major = pre[6];
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = pre[8] | (pre[9] << 8);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (fileSize < 12) throw bad(path, `file is truncated: ${fileSize} bytes, shorter than the version ${major} preamble (12 bytes)`);
    headerLen = (pre[8] | (pre[9] << 8) | (pre[10] << 16)) + pre[11] * 16777216;
    start = 12;
  } else {
    throw bad(path, `unsupported .npy format version ${major}.${pre[7]} (supported: 1, 2, 3)`);
  }
  const headerBytes = new Uint8Array(headerLen);
  if (start + headerLen > fileSize) throw bad(path, `file is truncated: the header needs ${headerLen} bytes, only ${fileSize - start} present`);
  readExactly(fd, path, headerBytes, start, 'the header');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(headerBytes);

  const dtype = parseDescr(path, header);
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header);
  if (!fortran) throw bad(path, `header has no readable 'fortran_order' entry: ${header.trim()}`);
  if (fortran[1] === 'True') throw bad(path, 'Fortran-order (column-major) arrays are not supported; only C order', 'save a C-ordered copy: np.save(path, np.ascontiguousarray(arr))');
  const shapeMatch = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header);
  if (!shapeMatch) throw bad(path, `header has no readable 'shape' entry: ${header.trim()}`);
  const shape = shapeMatch[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const v = Number(s.replace(/L$/, ''));
      if (!Number.isInteger(v) || v < 0) throw bad(path, `invalid shape entry "${s}" in header`);
      return v;
    });
  const count = shape.reduce((p, q) => p * q, 1);
  const dataOffset = start + headerLen;
  const needed = count * ITEM_SIZE[dtype];
  if (dataOffset + needed > fileSize) {
    throw bad(
      path,
      `file is truncated: shape (${shape.join(', ')}) of ${dtype} needs ${needed} data bytes, only ${fileSize - dataOffset} present`,
      're-export the array (np.save) or copy the file again',
    );
  }
  return { dtype, shape, count, dataOffset };
}

function withFile<T>(path: string, fn: (fd: number, size: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new UserError(`cannot open ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 'NPY_MISSING', 'check the path');
  }
  try {
    return fn(fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

function readBody(fd: number, path: string, h: Header): NpyData {
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (h.dtype) {
    case 'f4': {
      const out = new Float32Array(h.count);
      readExactly(fd, path, bytes(out), h.dataOffset, 'the data');
      return out;
    }
    case 'f8': {
      const out = new Float64Array(h.count);
      readExactly(fd, path, bytes(out), h.dataOffset, 'the data');
      return out;
    }
    case 'i4': {
      const out = new Int32Array(h.count);
      readExactly(fd, path, bytes(out), h.dataOffset, 'the data');
      return out;
    }
    case 'u1':
    case 'b1': {
      const out = new Uint8Array(h.count);
      readExactly(fd, path, out, h.dataOffset, 'the data');
      return out;
    }
    case 'i8': {
      // Narrowed chunk by chunk so the int64 copy never exists in full.
      const out = new Int32Array(h.count);
      const chunk = new BigInt64Array(Math.max(1, Math.min(h.count, READ_CHUNK / 8)));
      for (let at = 0; at < h.count; at += chunk.length) {
        const len = Math.min(chunk.length, h.count - at);
        const view = chunk.subarray(0, len);
        readExactly(fd, path, bytes(view), h.dataOffset + at * 8, 'the data');
        for (let i = 0; i < len; i++) {
          const v = view[i];
          if (v > 2147483647n || v < -2147483648n) {
            throw bad(path, `int64 value ${v} at flat index ${at + i} does not fit in int32 (int64 arrays are read as int32)`, 'store indices/labels as int32, or scale the values');
          }
          out[at + i] = Number(v);
        }
      }
      return out;
    }
  }
}

/** Read a whole `.npy` file. Errors (UserError) name the file and what is wrong. */
export function readNpy(path: string): NpyArray {
  return withFile(path, (fd, size) => {
    const h = parseHeader(path, fd, size);
    return { data: readBody(fd, path, h), shape: h.shape, dtype: h.dtype };
  });
}

export interface NpyMatrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

/**
 * Read a 2-D float32/float64 `.npy` file as a row-major Float32Array (float64
 * is narrowed chunk by chunk). Anything else is a UserError naming the file,
 * its dtype/shape and what is accepted.
 */
export function readNpyMatrix(path: string): NpyMatrix {
  return withFile(path, (fd, size) => {
    const h = parseHeader(path, fd, size);
    if (h.shape.length !== 2 || (h.dtype !== 'f4' && h.dtype !== 'f8')) {
      throw bad(
        path,
        `expected a 2-D float32 or float64 matrix (rows x dims), got dtype ${h.dtype} with shape (${h.shape.join(', ')})`,
        'save an N x D float array, e.g. np.save(path, emb.reshape(len(emb), -1).astype(np.float32))',
      );
    }
    const [rows, cols] = h.shape;
    if (h.dtype === 'f4') return { data: readBody(fd, path, h) as Float32Array, rows, cols };
    const out = new Float32Array(h.count);
    const chunk = new Float64Array(Math.max(1, Math.min(h.count, READ_CHUNK / 8)));
    for (let at = 0; at < h.count; at += chunk.length) {
      const len = Math.min(chunk.length, h.count - at);
      const view = chunk.subarray(0, len);
      readExactly(fd, path, new Uint8Array(view.buffer, 0, len * 8), h.dataOffset + at * 8, 'the data');
      out.set(view, at);
    }
    return { data: out, rows, cols };
  });
}

function descrOf(data: NpyData): string {
  if (data instanceof Float32Array) return '<f4';
  if (data instanceof Float64Array) return '<f8';
  if (data instanceof Int32Array) return '<i4';
  return '|u1';
}

/**
 * Write a C-order `.npy` file (version 1, or 2 if the header is too long):
 * Float32Array -> <f4, Float64Array -> <f8, Int32Array -> <i4, Uint8Array -> |u1.
 */
export function writeNpy(path: string, data: NpyData, shape: readonly number[]): void {
  const count = shape.reduce((p, q) => p * q, 1);
  if (shape.some((s) => !Number.isInteger(s) || s < 0)) throw new RangeError(`writeNpy ${path}: invalid shape (${shape.join(', ')})`);
  if (count !== data.length) throw new RangeError(`writeNpy ${path}: shape (${shape.join(', ')}) holds ${count} values but data has ${data.length}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${descrOf(data)}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Data starts at a multiple of 64 bytes, as numpy writes it.
  let version = 1;
  let pre = 10;
  if (Math.ceil((pre + dict.length + 1) / 64) * 64 - pre > 0xffff) {
    version = 2;
    pre = 12;
  }
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  const headerLen = total - pre;
  const head = Buffer.alloc(total, 0x20);
  head.set(MAGIC, 0);
  head[6] = version;
  head[7] = 0;
  if (version === 1) head.writeUInt16LE(headerLen, 8);
  else head.writeUInt32LE(headerLen, 8);
  head.write(dict, pre, 'latin1');
  head[total - 1] = 0x0a;
  const body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const fd = openSync(path, 'w');
  try {
    writeAll(fd, head);
    writeAll(fd, body);
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, Math.min(READ_CHUNK, bytes.length - done));
}
