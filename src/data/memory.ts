import type { ClipDataset, ImageShape } from './types.js';
import { imageBytes } from './types.js';

/** A dataset whose pixels are all in one buffer: synthetic data and Fashion-MNIST. */
export class InMemoryDataset implements ClipDataset {
  private readonly bytesPerImage: number;

  constructor(
    readonly name: string,
    readonly imageShape: ImageShape,
    /** N images, HWC uint8, back to back. */
    readonly images: Uint8Array,
    readonly captions: readonly string[],
    readonly labels: Int32Array,
    readonly classNames: readonly string[] | null,
    private readonly idPrefix: string,
    /** Original positions when subsampled, so ids stay those of the source files. */
    private readonly sourceIndex?: Int32Array,
  ) {
    this.bytesPerImage = imageBytes(imageShape);
    if (images.length !== captions.length * this.bytesPerImage) {
      throw new RangeError(`${name}: ${captions.length} captions but ${images.length / this.bytesPerImage} images`);
    }
  }

  get size(): number {
    return this.captions.length;
  }

  id(index: number): string {
    return `${this.idPrefix}:${this.sourceIndex ? this.sourceIndex[index] : index}`;
  }

  caption(index: number): string {
    return this.captions[index];
  }

  label(index: number): number {
    return this.labels[index];
  }

  image(index: number): Uint8Array {
    return this.images.subarray(index * this.bytesPerImage, (index + 1) * this.bytesPerImage);
  }

  readImages(indices: ArrayLike<number>, out: Uint8Array): void {
    const b = this.bytesPerImage;
    for (let r = 0; r < indices.length; r++) {
      const i = indices[r];
      out.set(this.images.subarray(i * b, (i + 1) * b), r * b);
    }
  }
}
