import { UserError } from '../../util/errors.js';

/** What kind of problem made a sample (or a whole shard) unusable. */
export type SkipKind =
  | 'corrupt-image'
  | 'missing-image'
  | 'missing-caption'
  | 'missing-file'
  | 'missing-label'
  | 'unreadable-member'
  | 'unsafe-path'
  | 'empty-shard'
  | 'truncated-shard'
  | 'unreadable-shard'
  | 'bad-row';

/** One bad input, located precisely enough for a user to find it. */
export interface SkipEntry {
  readonly kind: SkipKind;
  /** The shard, CSV or image file. */
  readonly file: string;
  /** Tar member name (webdataset). */
  readonly member?: string;
  /** 1-based line of the CSV row. */
  readonly line?: number;
  /** What is wrong, in words. */
  readonly reason: string;
}

/** `dataset.skipped` in summary.json: how many inputs were skipped and why (first few). */
export interface SkipSummary {
  readonly count: number;
  readonly byKind: Partial<Record<SkipKind, number>>;
  readonly reasons: readonly SkipEntry[];
}

/** `file: member x: reason` / `file:line: reason`, the form printed and put in errors. */
export function formatSkip(e: SkipEntry): string {
  const where = e.member !== undefined ? `${e.file}: member ${e.member}` : e.line !== undefined ? `${e.file}:${e.line}` : e.file;
  return `${where}: ${e.reason}`;
}

/**
 * Collects bad inputs. Lenient mode counts every entry and keeps the first
 * `keep` in full; strict mode (`data.strict`) turns the first one into a
 * UserError, so a run never starts on data the user asked to be checked.
 */
export class SkipLog {
  private total = 0;
  private readonly kinds: Partial<Record<SkipKind, number>> = {};
  private readonly kept: SkipEntry[] = [];

  constructor(
    readonly strict: boolean,
    private readonly keep = 10,
  ) {}

  add(entry: SkipEntry): void {
    if (this.strict) {
      throw new UserError(
        `bad input: ${formatSkip(entry)}`,
        'DATA_CORRUPT',
        'fix or remove that sample, or set data.strict: false (--data.strict false) to skip and count bad samples',
      );
    }
    this.total++;
    this.kinds[entry.kind] = (this.kinds[entry.kind] ?? 0) + 1;
    if (this.kept.length < this.keep) this.kept.push(entry);
  }

  get count(): number {
    return this.total;
  }

  summary(): SkipSummary {
    return { count: this.total, byKind: { ...this.kinds }, reasons: [...this.kept] };
  }
}
