import { open, readFile } from 'node:fs/promises';

/** A label as the source spells it: a class name, an index, or nothing. */
export type RawLabel = string | number | null;

/** Where a sample came from, for messages: shard + member, CSV + line, or the image file. */
export interface SampleOrigin {
  readonly file: string;
  readonly member?: string;
  readonly line?: number;
}

export interface SampleInput {
  readonly id: string;
  readonly caption: string;
  readonly label: RawLabel;
  /** The file holding the encoded image. */
  readonly imageFile: string;
  /** Byte range inside it (tar members); omitted = the whole file. */
  readonly offset?: number;
  readonly length?: number;
  readonly origin: SampleOrigin;
}

/**
 * The index of an external dataset: per sample its id, caption, raw label
 * and where its encoded image lives. Image bytes are never held: they are
 * read on demand. File names are interned, so a shard of 10k members stores
 * its path once and per-sample numbers otherwise.
 */
export class SampleTable {
  private readonly fileNames: string[] = [];
  private readonly fileIndex = new Map<string, number>();
  readonly ids: string[] = [];
  readonly captions: string[] = [];
  readonly labels: RawLabel[] = [];
  private readonly imageFile: number[] = [];
  private readonly offsets: number[] = [];
  /** -1 = whole file. */
  private readonly lengths: number[] = [];
  private readonly originFile: number[] = [];
  private readonly members: (string | undefined)[] = [];
  private readonly lines: number[] = [];

  get size(): number {
    return this.ids.length;
  }

  private intern(name: string): number {
    let at = this.fileIndex.get(name);
    if (at === undefined) {
      at = this.fileNames.length;
      this.fileNames.push(name);
      this.fileIndex.set(name, at);
    }
    return at;
  }

  push(s: SampleInput): void {
    this.ids.push(s.id);
    this.captions.push(s.caption);
    this.labels.push(s.label);
    this.imageFile.push(this.intern(s.imageFile));
    this.offsets.push(s.offset ?? 0);
    this.lengths.push(s.length ?? -1);
    this.originFile.push(this.intern(s.origin.file));
    this.members.push(s.origin.member);
    this.lines.push(s.origin.line ?? 0);
  }

  origin(row: number): SampleOrigin {
    const file = this.fileNames[this.originFile[row]];
    const member = this.members[row];
    const line = this.lines[row];
    return member !== undefined ? { file, member } : line > 0 ? { file, line } : { file };
  }

  /** Path of the file holding the image of `row`. */
  imagePath(row: number): string {
    return this.fileNames[this.imageFile[row]];
  }

  /** The encoded image bytes of `row`, read from disk now. */
  async readImage(row: number): Promise<Uint8Array> {
    const path = this.imagePath(row);
    const length = this.lengths[row];
    if (length < 0) return readFile(path);
    const handle = await open(path, 'r');
    try {
      const buf = Buffer.alloc(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await handle.read(buf, got, length - got, this.offsets[row] + got);
        if (bytesRead === 0) throw new Error(`${path}: file ended ${length - got} bytes before the end of member ${this.members[row] ?? ''}`);
        got += bytesRead;
      }
      return buf;
    } finally {
      await handle.close();
    }
  }
}
