import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { UserError } from '../util/errors.js';

export interface IdxArray {
  readonly dims: readonly number[];
  readonly data: Uint8Array;
}

/**
 * Parse an IDX file (the MNIST format): magic 0x00 0x00 <type> <ndim>, ndim
 * big-endian uint32 sizes, then the data. Only unsigned bytes (type 0x08) are
 * used by the datasets here. Every malformation is a UserError naming the file.
 */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  if (bytes.length < 4) throw new UserError(`${file}: truncated IDX file (${bytes.length} bytes, no header)`, 'DATA_CORRUPT', 'reinstall the dataset files');
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new UserError(`${file}: not an IDX file (magic bytes ${bytes[0]} ${bytes[1]}, expected 0 0)`, 'DATA_CORRUPT', 'reinstall the dataset files');
  }
  if (bytes[2] !== 0x08) {
    throw new UserError(`${file}: IDX data type 0x${bytes[2].toString(16)} is not supported (expected 0x08, unsigned bytes)`, 'DATA_CORRUPT');
  }
  const ndim = bytes[3];
  const headerBytes = 4 + 4 * ndim;
  if (ndim === 0 || bytes.length < headerBytes) {
    throw new UserError(`${file}: truncated IDX header (${ndim} dimensions need ${headerBytes} bytes, file has ${bytes.length})`, 'DATA_CORRUPT', 'reinstall the dataset files');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((a, b) => a * b, 1);
  const actual = bytes.length - headerBytes;
  if (actual < expected) {
    throw new UserError(`${file}: truncated IDX data (header says ${dims.join('x')} = ${expected} bytes, file has ${actual})`, 'DATA_CORRUPT', 'reinstall the dataset files');
  }
  if (actual > expected) {
    throw new UserError(`${file}: IDX file has ${actual - expected} bytes after the ${dims.join('x')} data`, 'DATA_CORRUPT', 'reinstall the dataset files');
  }
  return { dims, data: bytes.subarray(headerBytes, headerBytes + expected) };
}

/** Read a (possibly gzipped) IDX file. */
export function readIdxFile(path: string): IdxArray {
  const raw = readFileSync(path);
  let bytes: Uint8Array = raw;
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      bytes = gunzipSync(raw);
    } catch (e) {
      throw new UserError(`${path}: corrupt gzip data (${(e as Error).message})`, 'DATA_CORRUPT', 'reinstall the dataset files (e.g. `apt-get install --reinstall dataset-fashion-mnist`)');
    }
  }
  return parseIdx(bytes, path);
}

/** Encode an IDX ubyte array (tests and fixture builders). */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out[2] = 0x08;
  out[3] = dims.length;
  const view = new DataView(out.buffer);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}
