/** Height, width, channels of every image in a dataset (uint8, HWC). */
export type ImageShape = readonly [height: number, width: number, channels: number];

/** One image-caption pair as the streaming API yields it. */
export interface Sample {
  /** Stable position in the dataset: the filter and poison lists refer to samples by it. */
  readonly index: number;
  /** Stable human-readable id (`shard:key`, file path, `fashion-mnist:train:123`). */
  readonly id: string;
  /** HWC uint8 pixels. */
  readonly image: Uint8Array;
  readonly caption: string;
  readonly label?: number;
}

/**
 * A random-access image-caption dataset. Captions and labels are small and
 * kept in memory; images may live on disk and are read in batches.
 */
export interface ClipDataset {
  readonly name: string;
  readonly size: number;
  readonly imageShape: ImageShape;
  /** Class names in label order, when the dataset has labels (zero-shot evaluation needs them). */
  readonly classNames: readonly string[] | null;
  id(index: number): string;
  caption(index: number): string;
  /** The class label, or -1 when the sample has none. */
  label(index: number): number;
  /** Copy the images of `indices` (HWC uint8 each, back to back) into `out`. */
  readImages(indices: ArrayLike<number>, out: Uint8Array): void | Promise<void>;
}

export const imageBytes = (shape: ImageShape): number => shape[0] * shape[1] * shape[2];

/** A train split to pretrain on and a labelled test split for zero-shot evaluation. */
export interface DatasetSplits {
  readonly train: ClipDataset;
  readonly test: ClipDataset;
  /** Templates the training captions were written with (`{}` = class name); poisoned captions reuse them. */
  readonly captionTemplates: readonly string[];
  /** Prompt templates with `{}` for the class name, averaged for zero-shot class embeddings. */
  readonly promptTemplates: readonly string[];
  /** Per-channel normalisation applied to pixels / 255 before the image tower. */
  readonly normalization: { readonly mean: readonly number[]; readonly std: readonly number[] };
}
