import { UserError } from '../../util/errors.js';
import type { ClipDataset, ImageShape } from '../types.js';
import { decodeImage, defaultDecodeConcurrency, geometryBytes, ImageDecodeError, probeImage, type ImageGeometry } from './decode.js';
import { forEachLimit } from './limit.js';
import { formatSkip, type SkipLog, type SkipSummary } from './skips.js';
import type { SampleOrigin, SampleTable } from './table.js';

/** Images whose pixels feed the normalisation statistics (spread evenly over the dataset). */
export const STATS_SAMPLE = 2000;

export interface ValidateOptions {
  readonly geometry: ImageGeometry;
  /** Where bad images are reported; its summary becomes `skipped`. */
  readonly skips: SkipLog;
  /** Decodes in flight (default: the libuv thread pool size). */
  readonly concurrency?: number;
  /** Decoded pixels kept in memory, in bytes (0 = none: every read decodes). */
  readonly cacheBytes?: number;
  /** Called as images are checked, with (done, total). */
  readonly onProgress?: (done: number, total: number) => void;
  /** Check images now (default). Off, a bad image is found only when read, as an error. */
  readonly validate?: boolean;
  /** Also read each image's original size and format (one more header read per image; `data inspect`). */
  readonly recordSizes?: boolean;
}

export interface ExternalDatasetInit {
  readonly name: string;
  readonly table: SampleTable;
  /** Table rows in dataset order. */
  readonly rows: Int32Array;
  /** Class index per entry of `rows` (-1 = none). */
  readonly labels: Int32Array;
  readonly classNames: readonly string[] | null;
  readonly options: ValidateOptions;
}

/** Per-channel mean and standard deviation of pixels / 255. */
export interface ChannelStats {
  readonly mean: number[];
  readonly std: number[];
  /** Images the statistics were computed from. */
  readonly images: number;
}

interface CheckResult {
  /** 1 where the image decoded. */
  readonly ok: Uint8Array;
  /** Width, height per position (zeros unless recordSizes). */
  readonly sizes: Uint32Array;
  readonly formats: string[] | null;
  /** Decoded pixels of positions below `slots`. */
  readonly cache: Uint8Array | null;
  readonly slots: number;
  readonly stats: ChannelStats | null;
}

/**
 * Read and fully decode the image of every position once, with bounded
 * concurrency. Failures are reported in position order (strict mode: the
 * first one throws at once). Integer pixel sums are exact, so the
 * statistics do not depend on the order decodes complete in.
 */
async function checkImages(table: SampleTable, rows: Int32Array, options: ValidateOptions): Promise<CheckResult> {
  const g = options.geometry;
  const bytes = geometryBytes(g);
  const n = rows.length;
  const slots = Math.min(n, Math.floor((options.cacheBytes ?? 0) / bytes));
  const cache = slots > 0 ? new Uint8Array(slots * bytes) : null;
  const ok = new Uint8Array(n);
  const sizes = new Uint32Array(options.recordSizes ? 2 * n : 0);
  const formats: string[] | null = options.recordSizes ? new Array<string>(n) : null;
  const statsStride = Math.max(1, Math.ceil(n / STATS_SAMPLE));
  const sums = new Float64Array(2 * g.channels);
  let statImages = 0;
  const failures: { p: number; reason: string }[] = [];
  const report = (p: number, reason: string) => {
    const origin = table.origin(rows[p]);
    // A CSV row names the image only through its path column: put the path in the message.
    const image = origin.line !== undefined ? `${table.imagePath(rows[p])}: ` : '';
    options.skips.add({ kind: 'corrupt-image', ...origin, reason: image + reason });
  };
  const fail = (p: number, reason: string) => {
    if (options.skips.strict) report(p, reason); // throws: stop at the first bad image
    failures.push({ p, reason });
  };
  let done = 0;
  const check = async (p: number) => {
    let encoded: Uint8Array;
    try {
      encoded = await table.readImage(rows[p]);
    } catch (e) {
      return fail(p, `cannot read image (${(e as Error).message})`);
    }
    let px: Uint8Array;
    try {
      if (options.recordSizes) {
        const probe = await probeImage(encoded, g);
        sizes[2 * p] = probe.width;
        sizes[2 * p + 1] = probe.height;
        formats![p] = probe.format;
        px = probe.pixels;
      } else px = await decodeImage(encoded, g);
    } catch (e) {
      if (!(e instanceof ImageDecodeError)) throw e;
      return fail(p, `corrupt or truncated image (${e.message})`);
    }
    ok[p] = 1;
    if (cache && p < slots) cache.set(px, p * bytes);
    if (p % statsStride === 0) {
      for (let i = 0; i < px.length; i++) {
        const c = i % g.channels;
        sums[c] += px[i];
        sums[g.channels + c] += px[i] * px[i];
      }
      statImages++;
    }
  };
  await forEachLimit(
    Array.from({ length: n }, (_, p) => p),
    options.concurrency ?? defaultDecodeConcurrency(),
    async (p) => {
      await check(p);
      options.onProgress?.(++done, n);
    },
  );
  failures.sort((a, b) => a.p - b.p);
  for (const f of failures) report(f.p, f.reason);
  let stats: ChannelStats | null = null;
  if (statImages > 0) {
    const count = statImages * g.size * g.size;
    const mean: number[] = [];
    const std: number[] = [];
    for (let c = 0; c < g.channels; c++) {
      const mu = sums[c] / count;
      mean.push(mu / 255);
      std.push(Math.sqrt(Math.max(0, sums[g.channels + c] / count - mu * mu)) / 255);
    }
    stats = { mean, std, images: statImages };
  }
  return { ok, sizes, formats, cache, slots, stats };
}

/**
 * An image-caption dataset read from external files (tar shards, CSV rows,
 * an image folder). Captions, labels and image locations are in memory;
 * images are read from disk and decoded when asked for, several at once,
 * so a training loop's prefetch overlaps the decoding. Opening checks every
 * image once (see `open`), so no index ever names an undecodable sample.
 */
export class ExternalDataset implements ClipDataset {
  readonly imageShape: ImageShape;
  readonly geometry: ImageGeometry;
  private readonly bytes: number;
  private readonly concurrency: number;

  private constructor(
    readonly name: string,
    private readonly table: SampleTable,
    private readonly rows: Int32Array,
    private readonly labels: Int32Array,
    readonly classNames: readonly string[] | null,
    /** Bad inputs met while opening: `summary.json` `dataset.skipped`. */
    readonly skipped: SkipSummary,
    options: ValidateOptions,
    /** Original width, height per sample (empty when not recorded). */
    private readonly sizes: Uint32Array,
    private readonly formats: string[] | null,
    private readonly cache: Uint8Array | null,
    /** Cache slot of each sample, -1 = decode on read. */
    private readonly cacheSlot: Int32Array | null,
    /** Per-channel statistics of the checked images (null when not checked). */
    readonly stats: ChannelStats | null,
  ) {
    this.geometry = options.geometry;
    this.imageShape = [options.geometry.size, options.geometry.size, options.geometry.channels];
    this.bytes = geometryBytes(options.geometry);
    this.concurrency = options.concurrency ?? defaultDecodeConcurrency();
  }

  /**
   * Build the dataset over `rows` of `table`. Unless `validate` is false,
   * every image is read and fully decoded once (bounded concurrency,
   * progress through `onProgress`); failures go to the skip log (or throw
   * under `data.strict`) and the sample is left out. The decoded pixels
   * fill the cache up to `cacheBytes`, and a spread of up to STATS_SAMPLE
   * images gives the per-channel statistics.
   */
  static async open(init: ExternalDatasetInit): Promise<ExternalDataset> {
    const { table, rows, options } = init;
    const checked = options.validate === false ? null : await checkImages(table, rows, options);
    const keep: number[] = [];
    for (let p = 0; p < rows.length; p++) if (!checked || checked.ok[p]) keep.push(p);
    const m = keep.length;
    const keptRows = new Int32Array(m);
    const keptLabels = new Int32Array(m);
    const keptSizes = new Uint32Array(checked?.formats ? 2 * m : 0);
    const cacheSlot = checked?.cache ? new Int32Array(m).fill(-1) : null;
    keep.forEach((p, j) => {
      keptRows[j] = rows[p];
      keptLabels[j] = init.labels[p];
      if (keptSizes.length) {
        keptSizes[2 * j] = checked!.sizes[2 * p];
        keptSizes[2 * j + 1] = checked!.sizes[2 * p + 1];
      }
      if (cacheSlot && p < checked!.slots) cacheSlot[j] = p;
    });
    const keptFormats = checked?.formats ? keep.map((p) => checked.formats![p]) : null;
    return new ExternalDataset(
      init.name,
      table,
      keptRows,
      keptLabels,
      init.classNames,
      options.skips.summary(),
      options,
      keptSizes,
      keptFormats,
      checked?.cache ?? null,
      cacheSlot,
      checked?.stats ?? null,
    );
  }

  get size(): number {
    return this.rows.length;
  }

  id(index: number): string {
    return this.table.ids[this.rows[index]];
  }

  caption(index: number): string {
    return this.table.captions[this.rows[index]];
  }

  label(index: number): number {
    return this.labels[index];
  }

  /** Shard + member, CSV + line, or image file of a sample. */
  origin(index: number): SampleOrigin {
    return this.table.origin(this.rows[index]);
  }

  /** Width and height of the encoded image before fitting ([0, 0] unless opened with `recordSizes`). */
  originalSize(index: number): [width: number, height: number] {
    return this.sizes.length ? [this.sizes[2 * index], this.sizes[2 * index + 1]] : [0, 0];
  }

  /** Encoded format (`jpeg`, `png`, `webp`), or null unless opened with `recordSizes`. */
  format(index: number): string | null {
    return this.formats ? this.formats[index] : null;
  }

  async readImages(indices: ArrayLike<number>, out: Uint8Array): Promise<void> {
    const b = this.bytes;
    if (out.length < indices.length * b) throw new RangeError(`readImages: output holds ${out.length} bytes, ${indices.length} images need ${indices.length * b}`);
    const misses: number[] = [];
    for (let r = 0; r < indices.length; r++) {
      const i = indices[r];
      if (!(i >= 0 && i < this.rows.length)) throw new RangeError(`${this.name}: index ${i} is outside 0..${this.rows.length - 1}`);
      const slot = this.cacheSlot ? this.cacheSlot[i] : -1;
      if (slot >= 0) out.set(this.cache!.subarray(slot * b, (slot + 1) * b), r * b);
      else misses.push(r);
    }
    await forEachLimit(misses, this.concurrency, async (r) => {
      const row = this.rows[indices[r]];
      try {
        out.set(await decodeImage(await this.table.readImage(row), this.geometry), r * b);
      } catch (e) {
        throw new UserError(
          `cannot read sample ${this.table.ids[row]} (${formatSkip({ kind: 'corrupt-image', ...this.table.origin(row), reason: (e as Error).message })})`,
          'DATA_CORRUPT',
          'the file changed or became unreadable after the dataset was opened; restore it or start the run again',
        );
      }
    });
  }
}
