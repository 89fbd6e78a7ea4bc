import { basename } from 'node:path';
import { UserError } from '../../util/errors.js';
import { isImageExtension } from './decode.js';
import type { SkipLog } from './skips.js';
import type { RawLabel } from './table.js';
import { SampleTable } from './table.js';
import { isUnsafeMemberPath, scanTar, type TarMember } from './tar.js';

/** Captions and JSON side files above this are not captions: the sample is reported instead of read. */
const MAX_TEXT_BYTES = 1 << 20;

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export interface ScanOptions {
  readonly skips: SkipLog;
  /**
   * Caption for a sample without one, from its label (test splits only need
   * labels); absent = a missing caption skips the sample.
   */
  readonly captionFallback?: (label: RawLabel) => string | null;
  /** Skip samples without a label (labelled test splits). */
  readonly requireLabel?: boolean;
  /** Called after each shard / file with (done, total). */
  readonly onProgress?: (done: number, total: number) => void;
}

interface Group {
  image?: TarMember;
  caption?: string;
  label: RawLabel;
  /** A member of this sample was already reported: drop the sample without a second report. */
  bad: boolean;
}

/**
 * Split a member path by the webdataset convention: the key is the path up
 * to the first dot of the basename, the extension the rest (`a/b.seg.png` →
 * `a/b`, `seg.png`). Hidden files and names without a dot are not sample parts.
 */
export function splitMemberName(name: string): { key: string; ext: string } | null {
  const slash = name.lastIndexOf('/');
  const base = name.slice(slash + 1);
  const dot = base.indexOf('.');
  if (dot <= 0 || dot === base.length - 1) return null;
  return { key: name.slice(0, slash + 1) + base.slice(0, dot), ext: base.slice(dot + 1).toLowerCase() };
}

/** A JSON side file's `label`: a class name or an index into data.classNames. */
function jsonLabel(value: unknown): RawLabel {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return null;
  const label = (value as Record<string, unknown>).label;
  if (typeof label === 'string' && label.trim() !== '') return label.trim();
  if (typeof label === 'number' && Number.isInteger(label) && label >= 0) return label;
  return null;
}

/**
 * Id prefixes of the shards: their basenames (`00012.tar`), or the paths as
 * given when two shards share a basename, so that ids stay unique.
 */
function shardPrefixes(shards: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const s of shards) {
    if (seen.has(s)) throw new UserError(`shard ${s} is listed twice in data.path`, 'DATA_SPEC_INVALID', 'list each shard once');
    seen.add(s);
  }
  const bases = shards.map((s) => basename(s));
  return new Set(bases).size === bases.length ? bases : [...shards];
}

/**
 * Index the samples of webdataset tar shards, in shard order then member
 * order (a sample's position is that of its first member). Only the
 * captions, labels and image offsets are kept; damaged shards and bad
 * samples go to `opts.skips`.
 */
export function scanWebdataset(shards: readonly string[], opts: ScanOptions): SampleTable {
  const table = new SampleTable();
  const prefixes = shardPrefixes(shards);
  shards.forEach((shard, s) => {
    const groups = new Map<string, Group>();
    const group = (key: string): Group => {
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { label: null, bad: false }));
      return g;
    };
    const reportMember = (member: string, reason: string, key?: string) => {
      opts.skips.add({ kind: 'unreadable-member', file: shard, member, reason });
      if (key !== undefined) group(key).bad = true;
    };
    let scan;
    try {
      scan = scanTar(shard, (member, readData) => {
        if (member.type === 'directory') return;
        if (isUnsafeMemberPath(member.name)) {
          opts.skips.add({ kind: 'unsafe-path', file: shard, member: member.name, reason: 'unsafe path (absolute or with "..": it would escape the extraction directory); not used' });
          return;
        }
        const parts = splitMemberName(member.name);
        if (!parts) return;
        const { key, ext } = parts;
        const isImage = isImageExtension(ext);
        if (!isImage && ext !== 'txt' && ext !== 'json') return;
        if (member.type !== 'file') return reportMember(member.name, `${member.type} member, not a regular file`, key);
        const g = group(key);
        if (isImage) {
          // A later member of the same name replaces the earlier one (tar append semantics).
          if (!g.image || g.image.name === member.name) g.image = member;
          return;
        }
        const data = readData(MAX_TEXT_BYTES);
        if (!data) return reportMember(member.name, `${ext} member of ${member.size} bytes is larger than ${MAX_TEXT_BYTES}`, key);
        let text: string;
        try {
          text = strictUtf8.decode(data);
        } catch {
          return reportMember(member.name, `${ext} member is not valid UTF-8 text`, key);
        }
        if (ext === 'txt') {
          g.caption = text.trim();
          return;
        }
        try {
          g.label = jsonLabel(JSON.parse(text));
        } catch (e) {
          reportMember(member.name, `invalid JSON (${(e as Error).message})`, key);
        }
      });
    } catch (e) {
      if (e instanceof UserError) throw e;
      const err = e as NodeJS.ErrnoException;
      const reason = err.code === 'ENOENT' ? 'shard file not found' : `cannot read shard (${err.message})`;
      opts.skips.add({ kind: 'unreadable-shard', file: shard, reason });
      opts.onProgress?.(s + 1, shards.length);
      return;
    }
    if (scan.damage) {
      const d = scan.damage;
      const kind = d.kind === 'truncated' ? 'truncated-shard' : 'unreadable-member';
      const note = d.kind === 'truncated' ? '; the complete members before it are kept' : '; the rest of the shard is unreadable, the members before it are kept';
      opts.skips.add({ kind, file: shard, ...(d.member !== undefined ? { member: d.member } : {}), reason: d.message + note });
      const parts = d.member !== undefined ? splitMemberName(d.member) : null;
      if (parts && groups.has(parts.key)) groups.get(parts.key)!.bad = true;
    } else if (scan.members === 0) {
      opts.skips.add({ kind: 'empty-shard', file: shard, reason: scan.fileSize === 0 ? 'empty shard (0 bytes)' : 'empty shard (no members)' });
    }
    for (const [key, g] of groups) {
      if (g.bad) continue;
      if (!g.image) {
        opts.skips.add({ kind: 'missing-image', file: shard, member: `${key}.*`, reason: 'sample has no image member (.jpg, .jpeg, .png or .webp)' });
        continue;
      }
      if (opts.requireLabel && g.label === null) {
        opts.skips.add({ kind: 'missing-label', file: shard, member: `${key}.json`, reason: 'sample has no label (a .json member with "label": class name or index)' });
        continue;
      }
      let caption = g.caption;
      if (!caption) caption = opts.captionFallback?.(g.label) ?? undefined;
      if (!caption) {
        const why = g.caption === '' ? `empty caption in ${key}.txt` : `missing caption: no ${key}.txt member`;
        opts.skips.add({ kind: 'missing-caption', file: shard, member: g.image.name, reason: why });
        continue;
      }
      table.push({
        id: `${prefixes[s]}:${key}`,
        caption,
        label: g.label,
        imageFile: shard,
        offset: g.image.offset,
        length: g.image.size,
        origin: { file: shard, member: g.image.name },
      });
    }
    opts.onProgress?.(s + 1, shards.length);
  });
  return table;
}
