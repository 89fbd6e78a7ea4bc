import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { UserError } from '../../util/errors.js';
import { isImageExtension } from './decode.js';
import { SampleTable } from './table.js';
import type { ScanOptions } from './webdataset.js';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Relative paths (`/`-separated) of the regular files under `dir`, hidden entries left out, in code-unit order. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of readdirSync(join(dir, rel), { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      // Symlinked files are followed; symlinked directories are not (no cycles).
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() || (entry.isSymbolicLink() && statSync(join(dir, path), { throwIfNoEntry: false })?.isFile())) out.push(path);
    }
  };
  walk('');
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export interface FolderScanOptions extends ScanOptions {
  /** Labelled test folder: the first directory level names the class. */
  readonly labelled?: boolean;
}

/**
 * Index a folder of images (`.jpg .jpeg .png .webp`) with same-name `.txt`
 * captions (`a/b.jpg` + `a/b.txt`), in sorted relative-path order; ids are
 * the relative paths. A labelled folder holds one subdirectory per class.
 */
export function scanFolder(dir: string, opts: FolderScanOptions): SampleTable {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UserError(`image folder ${dir} does not exist or is not a directory`, 'DATA_MISSING', 'check data.path / data.testPath');
  }
  const files = listFiles(dir);
  const present = new Set(files);
  const table = new SampleTable();
  const images = files.filter((f) => isImageExtension(extname(f).slice(1)));
  images.forEach((rel, n) => {
    const path = join(dir, rel);
    const slash = rel.indexOf('/');
    const label = opts.labelled ? (slash > 0 ? rel.slice(0, slash) : null) : null;
    if (opts.labelled && label === null) {
      opts.skips.add({ kind: 'missing-label', file: path, reason: 'image is not inside a class subdirectory' });
      return;
    }
    const captionRel = rel.slice(0, rel.length - extname(rel).length) + '.txt';
    let caption: string | undefined;
    if (present.has(captionRel)) {
      try {
        caption = strictUtf8.decode(readFileSync(join(dir, captionRel))).trim();
      } catch (e) {
        const msg = e instanceof TypeError ? 'is not valid UTF-8 text' : `cannot be read (${(e as Error).message})`;
        opts.skips.add({ kind: 'missing-caption', file: path, reason: `caption file ${captionRel} ${msg}` });
        return;
      }
    }
    const given = caption;
    if (!caption) caption = opts.captionFallback?.(label) ?? undefined;
    if (!caption) {
      opts.skips.add({ kind: 'missing-caption', file: path, reason: given === '' ? `empty caption file ${captionRel}` : `missing caption: no ${captionRel}` });
      return;
    }
    table.push({ id: rel, caption, label, imageFile: path, origin: { file: path } });
    if ((n + 1) % 1000 === 0) opts.onProgress?.(n + 1, images.length);
  });
  opts.onProgress?.(images.length, images.length);
  return table;
}
