import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/**
 * A read-only tar index: one pass over the 512-byte headers of an archive,
 * reporting every member's name, type, data offset and size, so that member
 * bytes can later be read in place with a positioned read. Nothing is ever
 * extracted. Handles ustar (name + prefix), GNU long names (`L`) and pax
 * extended headers (`x`: path, size), GNU base-256 sizes, and archives that
 * end early (the members before the damage are kept).
 */

const BLOCK = 512;
/** Read-ahead window: many tiny members cost one read per window, not one per header. */
const WINDOW = 64 * 1024;

export type TarMemberType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

export interface TarMember {
  /** Full member path (pax `path` / GNU long name / ustar prefix + name). */
  readonly name: string;
  readonly type: TarMemberType;
  /** Byte offset of the member's data in the archive. */
  readonly offset: number;
  readonly size: number;
}

/** Why a scan stopped before the end-of-archive marker. */
export interface TarDamage {
  readonly kind: 'truncated' | 'corrupt-header';
  /** Byte offset of the header where the damage starts. */
  readonly offset: number;
  /** The member being read when the archive broke off, if its header was readable. */
  readonly member?: string;
  readonly message: string;
}

export interface TarScan {
  /** Members seen (every type), complete ones only. */
  readonly members: number;
  readonly damage: TarDamage | null;
  readonly fileSize: number;
}

/**
 * Visitor for each complete member. `readData(max)` returns the member's
 * bytes (valid only during the call) or null when the member is larger than
 * `max`: callers read small text members here and leave images on disk.
 */
export type TarVisitor = (member: TarMember, readData: (max: number) => Uint8Array | null) => void;

const utf8 = new TextDecoder('utf-8');

function cString(bytes: Uint8Array, start: number, length: number): string {
  let end = start;
  const limit = start + length;
  while (end < limit && bytes[end] !== 0) end++;
  return utf8.decode(bytes.subarray(start, end));
}

/** Octal ASCII (space/NUL padded) or GNU base-256 (high bit of the first byte set); NaN when malformed. */
export function parseTarNumber(bytes: Uint8Array, start: number, length: number): number {
  if (bytes[start] & 0x80) {
    if (bytes[start] === 0xff) return NaN; // negative base-256: never a valid size
    let v = bytes[start] & 0x7f;
    for (let i = start + 1; i < start + length; i++) v = v * 256 + bytes[i];
    return v;
  }
  const text = cString(bytes, start, length).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) return NaN;
  return parseInt(text, 8);
}

/** The header checksum: the byte sum with the checksum field itself counted as spaces. */
export function tarChecksum(header: Uint8Array): { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : header[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return { unsigned, signed };
}

function isZeroBlock(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** The `key=value` records of a pax extended header (`<len> key=value\n` each). */
export function parsePaxRecords(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    let sp = pos;
    while (sp < data.length && data[sp] !== 0x20) sp++;
    const len = Number(utf8.decode(data.subarray(pos, sp)));
    if (!Number.isInteger(len) || len <= 0 || pos + len > data.length) break;
    const record = utf8.decode(data.subarray(sp + 1, pos + len)).replace(/\n$/, '');
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  return out;
}

function memberType(flag: number): TarMemberType {
  switch (String.fromCharCode(flag)) {
    case '0':
    case '\0':
    case '7':
      return 'file';
    case '5':
      return 'directory';
    case '2':
      return 'symlink';
    case '1':
      return 'hardlink';
    default:
      return 'other';
  }
}

/**
 * True when extracting `name` could write outside the target directory:
 * absolute paths (`/x`, `\x`, `C:x`) and any `..` component. Such members
 * are never used, only reported.
 */
export function isUnsafeMemberPath(name: string): boolean {
  if (name === '' || name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:/.test(name)) return true;
  return name.split(/[/\\]/).some((part) => part === '..');
}

/** Positioned reads through a reusable window, so memory stays one window whatever the archive size. */
class WindowReader {
  private buf = Buffer.alloc(WINDOW);
  private start = 0;
  private length = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
  ) {}

  /** `length` bytes at `offset` (fewer at end of file); valid until the next call. */
  read(offset: number, length: number): Uint8Array {
    if (offset >= this.start && offset + length <= this.start + this.length) {
      return this.buf.subarray(offset - this.start, offset - this.start + length);
    }
    const want = Math.min(length, Math.max(0, this.size - offset));
    if (want > this.buf.length) {
      const big = Buffer.alloc(want);
      this.fill(big, offset, want);
      return big;
    }
    this.start = offset;
    this.length = this.fill(this.buf, offset, Math.min(this.buf.length, this.size - offset));
    return this.buf.subarray(0, Math.min(want, this.length));
  }

  private fill(target: Buffer, offset: number, length: number): number {
    let got = 0;
    while (got < length) {
      const n = readSync(this.fd, target, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return got;
  }
}

/**
 * Walk the members of the tar file at `path`, calling `visit` for each
 * complete one, in archive order. I/O errors (missing file, permissions)
 * are thrown; damage inside the archive is returned in `damage`.
 */
export function scanTar(path: string, visit: TarVisitor): TarScan {
  const fd = openSync(path, 'r');
  try {
    const fileSize = fstatSync(fd).size;
    const reader = new WindowReader(fd, fileSize);
    let members = 0;
    let pos = 0;
    let longName: string | null = null;
    let pax: Map<string, string> | null = null;
    const stop = (damage: TarDamage): TarScan => ({ members, damage, fileSize });
    while (pos < fileSize) {
      if (fileSize - pos < BLOCK) {
        const tail = reader.read(pos, fileSize - pos);
        if (isZeroBlock(tail)) break;
        return stop({ kind: 'truncated', offset: pos, message: `archive ends inside a member header at byte ${pos} (${fileSize - pos} of 512 header bytes)` });
      }
      const header = reader.read(pos, BLOCK);
      if (isZeroBlock(header)) break; // end-of-archive marker
      const stored = parseTarNumber(header, 148, 8);
      const sum = tarChecksum(header);
      if (stored !== sum.unsigned && stored !== sum.signed) {
        return stop({ kind: 'corrupt-header', offset: pos, message: `corrupt tar header at byte ${pos} (checksum mismatch)` });
      }
      const flag = header[156];
      let name = cString(header, 0, 100);
      const magic = cString(header, 257, 6);
      // POSIX ustar splits long paths into prefix/name; GNU tar uses that area for other fields.
      if (magic === 'ustar' && header[263] === 0x30 && header[264] === 0x30) {
        const prefix = cString(header, 345, 155);
        if (prefix) name = `${prefix}/${name}`;
      }
      let size = parseTarNumber(header, 124, 12);
      if (pax?.has('size')) size = Number(pax.get('size'));
      if (!Number.isFinite(size) || size < 0) {
        return stop({ kind: 'corrupt-header', offset: pos, member: name, message: `corrupt tar header at byte ${pos} (unreadable size field)` });
      }
      if (longName !== null) name = longName;
      if (pax?.has('path')) name = pax.get('path')!;
      const dataOffset = pos + BLOCK;
      if (dataOffset + size > fileSize) {
        return stop({
          kind: 'truncated',
          offset: pos,
          member: name,
          message: `archive ends inside member ${name} (${size} data bytes, ${Math.max(0, fileSize - dataOffset)} present)`,
        });
      }
      const next = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
      const flagChar = String.fromCharCode(flag);
      if (flagChar === 'L' || flagChar === 'x') {
        const data = reader.read(dataOffset, size);
        if (flagChar === 'L') longName = cString(data, 0, data.length);
        else pax = parsePaxRecords(data);
      } else if (flagChar === 'g' || flagChar === 'K') {
        // Global pax defaults and GNU long link names do not name members.
      } else {
        const member: TarMember = { name, type: memberType(flag), offset: dataOffset, size };
        members++;
        visit(member, (max) => (size <= max ? reader.read(dataOffset, size) : null));
        longName = null;
        pax = null;
      }
      pos = next;
    }
    return { members, damage: null, fileSize };
  } finally {
    closeSync(fd);
  }
}
