import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Write a file so that readers see the old or the new content, never half of it. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

/**
 * Replace directory `target` by a freshly written one: `fill` writes into a
 * temporary sibling, then two renames swap it in. A crash leaves either the old
 * directory or `<target>.prev`, which `resolveReplacedDir` finds.
 */
export async function replaceDirAtomic(target: string, fill: (dir: string) => Promise<void> | void): Promise<void> {
  const parent = dirname(target);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.tmp-${process.pid}-${Date.now()}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  await fill(tmp);
  const prev = `${target}.prev`;
  rmSync(prev, { recursive: true, force: true });
  if (existsSync(target)) renameSync(target, prev);
  renameSync(tmp, target);
  rmSync(prev, { recursive: true, force: true });
}

/** The directory `replaceDirAtomic` left: the target, or its previous version after a crash mid-swap. */
export function resolveReplacedDir(target: string): string | null {
  if (existsSync(target)) return target;
  if (existsSync(`${target}.prev`)) return `${target}.prev`;
  return null;
}
