import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isUnsafeMemberPath, parsePaxRecords, parseTarNumber, scanTar, type TarMember } from '../../../src/data/external/tar.js';
import { makeTar, tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(tmp.cleanup);
let n = 0;
const write = (bytes: Uint8Array) => {
  const path = join(tmp.dir, `t${n++}.tar`);
  writeFileSync(path, bytes);
  return path;
};

function scanAll(path: string) {
  const members: (TarMember & { text: string | null })[] = [];
  const scan = scanTar(path, (m, read) => {
    const data = read(1 << 20);
    members.push({ ...m, text: data ? new TextDecoder().decode(data) : null });
  });
  return { members, scan };
}

describe('tar index', () => {
  it('lists ustar members with their data offsets and sizes', () => {
    const bytes = makeTar([
      { name: 'a.txt', data: 'hello' },
      { name: 'dir/', type: '5' },
      { name: 'dir/b.bin', data: new Uint8Array(1000).fill(7) },
      { name: 'empty.txt', data: '' },
    ]);
    const path = write(bytes);
    const { members, scan } = scanAll(path);
    expect(scan.damage).toBeNull();
    expect(members.map((m) => [m.name, m.type, m.size])).toEqual([
      ['a.txt', 'file', 5],
      ['dir/', 'directory', 0],
      ['dir/b.bin', 'file', 1000],
      ['empty.txt', 'file', 0],
    ]);
    // Offsets point at the data: header (512) + a.txt padded (512) + dir header (512) + b.bin header (512).
    expect(members[0].offset).toBe(512);
    expect(members[2].offset).toBe(2048);
    expect(Array.from(bytes.subarray(2048, 2048 + 1000)).every((b) => b === 7)).toBe(true);
    expect(members[0].text).toBe('hello');
  });

  it('reads GNU long names and pax paths', () => {
    const long = `${'d'.repeat(80)}/${'f'.repeat(60)}.txt`;
    const longPax = `${'p'.repeat(90)}/${'q'.repeat(70)}.txt`;
    const path = write(makeTar([{ name: long, data: 'gnu', longName: 'gnu' }, { name: longPax, data: 'pax', longName: 'pax' }, { name: 'short.txt', data: 's' }]));
    const { members } = scanAll(path);
    expect(members.map((m) => [m.name, m.text])).toEqual([
      [long, 'gnu'],
      [longPax, 'pax'],
      ['short.txt', 's'],
    ]);
  });

  it('matches archives written by GNU tar in gnu and pax formats', () => {
    const src = join(tmp.dir, 'src');
    const deep = join(src, 'x'.repeat(70), 'y'.repeat(70));
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, 'sample.txt'), 'deep caption');
    writeFileSync(join(src, 'top.txt'), 'top');
    for (const format of ['gnu', 'pax', 'ustar']) {
      const out = join(tmp.dir, `sys-${format}.tar`);
      try {
        execFileSync('tar', ['--format', format, '-cf', out, '-C', src, 'top.txt', `${'x'.repeat(70)}/${'y'.repeat(70)}/sample.txt`]);
      } catch {
        continue; // no system tar: the hand-written archives above still cover the formats
      }
      const { members, scan } = scanAll(out);
      expect(scan.damage).toBeNull();
      const files = members.filter((m) => m.type === 'file');
      expect(files.map((m) => [m.name, m.text])).toEqual([
        ['top.txt', 'top'],
        [`${'x'.repeat(70)}/${'y'.repeat(70)}/sample.txt`, 'deep caption'],
      ]);
    }
  });

  it('keeps the complete members of an archive cut inside a member', () => {
    const full = makeTar([
      { name: 'a.txt', data: 'first' },
      { name: 'b.bin', data: new Uint8Array(2000) },
    ]);
    const { members, scan } = scanAll(write(full.subarray(0, 1024 + 512 + 700)));
    expect(members.map((m) => m.name)).toEqual(['a.txt']);
    expect(scan.damage?.kind).toBe('truncated');
    expect(scan.damage?.member).toBe('b.bin');
    expect(scan.damage?.message).toMatch(/2000 data bytes, 700 present/);
  });

  it('reports an archive cut inside a header', () => {
    const full = makeTar([{ name: 'a.txt', data: 'x' }, { name: 'b.txt', data: 'y' }]);
    const { members, scan } = scanAll(write(full.subarray(0, 1024 + 100)));
    expect(members.map((m) => m.name)).toEqual(['a.txt']);
    expect(scan.damage?.kind).toBe('truncated');
  });

  it('accepts an archive without the end-of-archive marker', () => {
    const { members, scan } = scanAll(write(makeTar([{ name: 'a.txt', data: 'x' }], { endMarker: false })));
    expect(members).toHaveLength(1);
    expect(scan.damage).toBeNull();
  });

  it('stops at a header whose checksum is wrong', () => {
    const path = write(makeTar([{ name: 'a.txt', data: 'x' }, { name: 'b.txt', data: 'y', corruptChecksum: true }, { name: 'c.txt', data: 'z' }]));
    const { members, scan } = scanAll(path);
    expect(members.map((m) => m.name)).toEqual(['a.txt']);
    expect(scan.damage).toMatchObject({ kind: 'corrupt-header', offset: 1024 });
  });

  it('reports an empty file as zero members', () => {
    const { members, scan } = scanAll(write(new Uint8Array(0)));
    expect(members).toHaveLength(0);
    expect(scan).toMatchObject({ members: 0, damage: null, fileSize: 0 });
  });

  it('does not hold more than one read window however large the members are', () => {
    const path = write(makeTar([{ name: 'big.bin', data: new Uint8Array(3 << 20) }, { name: 'after.txt', data: 'ok' }]));
    const { members } = scanAll(path);
    expect(members.map((m) => [m.name, m.text === null])).toEqual([
      ['big.bin', true],
      ['after.txt', false],
    ]);
    expect(readFileSync(path).length).toBe(512 + (3 << 20) + 512 + 512 + 1024);
  });
});

describe('tar fields', () => {
  it('parses octal and GNU base-256 numbers', () => {
    const enc = new TextEncoder();
    expect(parseTarNumber(enc.encode('00000001750\0'), 0, 12)).toBe(1000);
    expect(parseTarNumber(enc.encode('  1750 \0'), 0, 8)).toBe(1000);
    const b256 = new Uint8Array(12);
    b256[0] = 0x80;
    b256[7] = 0x02; // 2 * 2^32
    expect(parseTarNumber(b256, 0, 12)).toBe(2 * 2 ** 32);
    expect(parseTarNumber(enc.encode('12x4\0'), 0, 5)).toBeNaN();
  });

  it('parses pax records with their length prefixes', () => {
    const recs = parsePaxRecords(new TextEncoder().encode('18 path=a/b/c.jpg\n11 size=42\n'));
    expect(recs.get('path')).toBe('a/b/c.jpg');
    expect(recs.get('size')).toBe('42');
  });

  it('flags names that would escape the extraction directory', () => {
    for (const bad of ['../x.jpg', 'a/../../x.jpg', '/etc/passwd', '\\x.jpg', 'C:/x.jpg', 'a\\..\\x.jpg', '..']) expect(isUnsafeMemberPath(bad), bad).toBe(true);
    for (const ok of ['a.jpg', 'dir/a.jpg', 'a..b.jpg', './a.jpg']) expect(isUnsafeMemberPath(ok), ok).toBe(false);
  });
});

describe('TarWriter', () => {
  it('writes archives that both this reader and GNU tar list identically', async () => {
    const { TarWriter } = await import('../../../src/data/external/tarWriter.js');
    const path = join(tmp.dir, 'written.tar');
    const long = `${'n'.repeat(90)}/${'m'.repeat(40)}.txt`;
    const w = new TarWriter(path);
    w.add('00001.png', new Uint8Array([1, 2, 3]));
    w.add('00001.txt', 'a caption');
    w.add(long, 'long name');
    w.add('empty.txt', '');
    w.close();
    const { members, scan } = scanAll(path);
    expect(scan.damage).toBeNull();
    expect(members.map((m) => [m.name, m.size])).toEqual([
      ['00001.png', 3],
      ['00001.txt', 9],
      [long, 9],
      ['empty.txt', 0],
    ]);
    let listing: string;
    try {
      listing = execFileSync('tar', ['-tf', path], { encoding: 'utf8' });
    } catch {
      return;
    }
    expect(listing.trim().split('\n')).toEqual(['00001.png', '00001.txt', long, 'empty.txt']);
    expect(execFileSync('tar', ['-xOf', path, long], { encoding: 'utf8' })).toBe('long name');
  });
});
