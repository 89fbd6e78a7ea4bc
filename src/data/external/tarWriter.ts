import { closeSync, openSync, writeSync } from 'node:fs';

const BLOCK = 512;
const encoder = new TextEncoder();

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/**
 * Writes a tar archive of regular files straight to disk (ustar headers;
 * names over 100 bytes get a pax `path` record), for building webdataset
 * shards. Members are written as they come, so memory holds one member.
 */
export class TarWriter {
  private readonly fd: number;
  private closed = false;

  constructor(
    readonly path: string,
    /** Modification time stamped on every member (fixed by default: identical inputs give identical shards). */
    private readonly mtime = 0,
  ) {
    this.fd = openSync(path, 'w');
  }

  private header(name: string, size: number, type: string): Uint8Array {
    const h = new Uint8Array(BLOCK);
    const put = (at: number, text: string) => h.set(encoder.encode(text), at);
    h.set(encoder.encode(name).subarray(0, 100), 0);
    put(100, octal(0o644, 8));
    put(108, octal(0, 8));
    put(116, octal(0, 8));
    put(124, octal(size, 12));
    put(136, octal(this.mtime, 12));
    put(156, type);
    put(257, 'ustar\0');
    put(263, '00');
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += h[i];
    put(148, octal(sum, 7) + ' ');
    return h;
  }

  private write(bytes: Uint8Array): void {
    let off = 0;
    while (off < bytes.length) off += writeSync(this.fd, bytes, off, bytes.length - off);
  }

  private entry(name: string, data: Uint8Array, type: string): void {
    this.write(this.header(name, data.length, type));
    this.write(data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad) this.write(new Uint8Array(pad));
  }

  /** Append a regular file. */
  add(name: string, data: Uint8Array | string): void {
    if (this.closed) throw new Error(`tar ${this.path} is already closed`);
    const bytes = typeof data === 'string' ? encoder.encode(data) : data;
    if (bytes.length >= 8 ** 11) throw new RangeError(`member ${name} is too large for a ustar header (${bytes.length} bytes)`);
    if (encoder.encode(name).length > 100) {
      const body = ` path=${name}\n`;
      let len = body.length + 1;
      while (String(len).length + encoder.encode(body).length !== len) len = String(len).length + encoder.encode(body).length;
      this.entry(`PaxHeader/${name.slice(-80).replace(/^.*\//, '')}`, encoder.encode(`${len}${body}`), 'x');
    }
    this.entry(name, bytes, '0');
  }

  /** Write the end-of-archive marker and close the file. */
  close(): void {
    if (this.closed) return;
    this.write(new Uint8Array(2 * BLOCK));
    closeSync(this.fd);
    this.closed = true;
  }
}
