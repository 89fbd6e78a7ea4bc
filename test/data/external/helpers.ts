import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

/** A tar member for the test writer: regular file unless `type` says otherwise. */
export interface TestMember {
  name: string;
  data?: Uint8Array | string;
  /** Typeflag character ('0' file, '2' symlink, '5' directory...). */
  type?: string;
  /** How to store a name longer than 100 bytes: GNU `L` entry (default) or a pax `x` header. */
  longName?: 'gnu' | 'pax';
  /** Spoil the header checksum. */
  corruptChecksum?: boolean;
}

const enc = new TextEncoder();
const bytesOf = (d: Uint8Array | string | undefined) => (d === undefined ? new Uint8Array(0) : typeof d === 'string' ? enc.encode(d) : d);

function header(name: string, size: number, type: string, magic: 'gnu' | 'ustar' = 'ustar'): Uint8Array {
  const h = new Uint8Array(512);
  const put = (at: number, text: string) => h.set(enc.encode(text), at);
  put(0, name.slice(0, 100));
  put(100, '0000644\0');
  put(108, '0000000\0');
  put(116, '0000000\0');
  put(124, size.toString(8).padStart(11, '0') + '\0');
  put(136, '00000000000\0');
  h[156] = type.charCodeAt(0);
  if (magic === 'gnu') put(257, 'ustar  \0');
  else {
    put(257, 'ustar\0');
    put(263, '00');
  }
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  put(148, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

const pad = (n: number) => (512 - (n % 512)) % 512;

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return `${len}${body}`;
}

/** An in-memory tar archive written independently of the reader under test. */
export function makeTar(members: TestMember[], opts: { endMarker?: boolean } = {}): Uint8Array {
  const parts: Uint8Array[] = [];
  const add = (h: Uint8Array, data: Uint8Array) => {
    parts.push(h, data, new Uint8Array(pad(data.length)));
  };
  for (const m of members) {
    const data = bytesOf(m.data);
    let name = m.name;
    if (enc.encode(name).length > 100) {
      if (m.longName === 'pax') {
        const pax = enc.encode(paxRecord('path', name));
        add(header('PaxHeader/x', pax.length, 'x'), pax);
      } else {
        const long = enc.encode(name + '\0');
        add(header('././@LongLink', long.length, 'L', 'gnu'), long);
      }
      name = name.slice(0, 100);
    }
    const h = header(name, data.length, m.type ?? '0', m.longName === 'gnu' ? 'gnu' : 'ustar');
    if (m.corruptChecksum) h[0] ^= 0x01;
    add(h, data);
  }
  if (opts.endMarker !== false) parts.push(new Uint8Array(1024));
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A deterministic RGB test image: each pixel a function of (x, y, seed). */
export function rgbPixels(width: number, height: number, seed: number): Uint8Array {
  const px = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      px[i] = (x * 17 + seed * 31) & 255;
      px[i + 1] = (y * 23 + seed * 7) & 255;
      px[i + 2] = (x * y + seed * 13) & 255;
    }
  }
  return px;
}

export async function png(width: number, height: number, seed: number, channels: 1 | 3 | 4 = 3): Promise<Buffer> {
  const rgb = rgbPixels(width, height, seed);
  let raw: Uint8Array = rgb;
  if (channels !== 3) {
    raw = new Uint8Array(width * height * channels);
    for (let p = 0; p < width * height; p++) {
      if (channels === 1) raw[p] = rgb[p * 3];
      else {
        raw.set(rgb.subarray(p * 3, p * 3 + 3), p * 4);
        raw[p * 4 + 3] = 255;
      }
    }
  }
  return sharp(raw, { raw: { width, height, channels } }).png().toBuffer();
}

export async function jpeg(width: number, height: number, seed: number): Promise<Buffer> {
  return sharp(rgbPixels(width, height, seed), { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

/** A fresh temp directory and its cleanup. */
export function tempDir(prefix = 'cbf-ext-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
