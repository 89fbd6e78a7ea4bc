import type { ClipDataset, ImageShape } from '../../src/data/types.js';
import { Rng } from '../../src/util/rng.js';

export const CLASSES = ['t-shirt', 'trouser', 'shirt', 'ankle boot'] as const;

/** A small in-memory labelled dataset: random pixels, templated captions. */
export class TinyDataset implements ClipDataset {
  readonly name: string;
  readonly imageShape: ImageShape;
  readonly classNames: readonly string[] | null;
  readonly images: Uint8Array;
  readonly labels: Int32Array;
  readonly captions: string[];
  reads = 0;
  private readonly async: boolean;

  constructor(
    readonly size: number,
    opts: {
      shape?: ImageShape;
      classNames?: readonly string[] | null;
      labels?: (i: number) => number;
      caption?: (i: number, label: number) => string;
      async?: boolean;
      name?: string;
    } = {},
  ) {
    this.name = opts.name ?? 'tiny';
    this.imageShape = opts.shape ?? [8, 8, 1];
    this.classNames = opts.classNames === undefined ? CLASSES : opts.classNames;
    const k = this.classNames?.length ?? 1;
    this.labels = Int32Array.from({ length: size }, (_, i) => (opts.labels ? opts.labels(i) : i % k));
    this.captions = Array.from({ length: size }, (_, i) =>
      opts.caption ? opts.caption(i, this.labels[i]) : `a photo of a ${this.classNames?.[this.labels[i]] ?? 'thing'}.`,
    );
    const b = this.imageShape[0] * this.imageShape[1] * this.imageShape[2];
    const rng = new Rng(1234, 'tiny-images');
    this.images = Uint8Array.from({ length: size * b }, () => rng.int(256));
    this.async = opts.async ?? false;
  }

  id(index: number): string {
    return `tiny:${index}`;
  }
  caption(index: number): string {
    return this.captions[index];
  }
  label(index: number): number {
    return this.labels[index];
  }
  image(index: number): Uint8Array {
    const b = this.imageShape[0] * this.imageShape[1] * this.imageShape[2];
    return this.images.slice(index * b, (index + 1) * b);
  }
  readImages(indices: ArrayLike<number>, out: Uint8Array): void | Promise<void> {
    this.reads++;
    const b = this.imageShape[0] * this.imageShape[1] * this.imageShape[2];
    for (let j = 0; j < indices.length; j++) out.set(this.images.subarray(indices[j] * b, (indices[j] + 1) * b), j * b);
    if (this.async) return Promise.resolve();
  }
}

/** An image of one constant value. */
export const flat = (shape: ImageShape, v: number): Uint8Array => new Uint8Array(shape[0] * shape[1] * shape[2]).fill(v);

/** Pixel (y, x, k) of an HWC image. */
export const px = (img: Uint8Array, shape: ImageShape, y: number, x: number, k = 0): number => img[(y * shape[1] + x) * shape[2] + k];
