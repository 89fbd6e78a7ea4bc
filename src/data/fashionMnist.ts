import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { readIdxFile } from './idx.js';
import { InMemoryDataset } from './memory.js';
import type { DatasetSplits } from './types.js';

export const FASHION_MNIST_CLASSES = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'];

export const FASHION_MNIST_CAPTION_TEMPLATES = [
  'a photo of a {}.',
  'a picture of a {}.',
  'an image of a {}.',
  'a photo of the {}.',
  'a black and white photo of a {}.',
  'a black and white picture of a {}.',
  'a low resolution photo of a {}.',
  'a cropped photo of a {}.',
  'a close-up photo of a {}.',
];

const FILES = {
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
} as const;

function requireFile(dir: string, name: string): string {
  const path = join(dir, name);
  if (!existsSync(path)) {
    throw new UserError(
      `Fashion-MNIST file not found: ${path}`,
      'DATA_MISSING',
      `install it with \`sudo apt-get install dataset-fashion-mnist\` (files go to /usr/share/datasets/fashion-mnist/), or point \`data.dir\` (--data.dir <directory>) at a directory holding ${Object.values(FILES).join(', ')}`,
    );
  }
  return path;
}

function loadSplit(dir: string, images: string, labels: string): { images: Uint8Array; labels: Uint8Array } {
  const imgPath = requireFile(dir, images);
  const lblPath = requireFile(dir, labels);
  const img = readIdxFile(imgPath);
  const lbl = readIdxFile(lblPath);
  if (img.dims.length !== 3 || img.dims[1] !== 28 || img.dims[2] !== 28) {
    throw new UserError(`${imgPath}: expected N x 28 x 28 images, found ${img.dims.join(' x ')}`, 'DATA_CORRUPT', 'reinstall the dataset files');
  }
  if (lbl.dims.length !== 1 || lbl.dims[0] !== img.dims[0]) {
    throw new UserError(`${lblPath}: expected ${img.dims[0]} labels to match ${imgPath}, found ${lbl.dims.join(' x ')}`, 'DATA_CORRUPT', 'reinstall the dataset files');
  }
  for (let i = 0; i < lbl.data.length; i++) {
    if (lbl.data[i] >= FASHION_MNIST_CLASSES.length) {
      throw new UserError(`${lblPath}: label ${lbl.data[i]} at position ${i} is outside 0..9`, 'DATA_CORRUPT', 'reinstall the dataset files');
    }
  }
  return { images: img.data, labels: lbl.data };
}

function build(
  split: { images: Uint8Array; labels: Uint8Array },
  size: number,
  rng: Rng,
  templates: readonly string[],
  name: string,
  prefix: string,
): InMemoryDataset {
  const total = split.labels.length;
  // Subsample without replacement, keeping source order so ids read naturally.
  const chosen = size > 0 && size < total ? Int32Array.from(rng.sample(Int32Array.from({ length: total }, (_, i) => i), size)).sort() : null;
  const n = chosen ? chosen.length : total;
  const images = new Uint8Array(n * 784);
  const labels = new Int32Array(n);
  const captions: string[] = new Array(n);
  for (let r = 0; r < n; r++) {
    const i = chosen ? chosen[r] : r;
    images.set(split.images.subarray(i * 784, (i + 1) * 784), r * 784);
    labels[r] = split.labels[i];
    captions[r] = rng.pick(templates).replace('{}', FASHION_MNIST_CLASSES[labels[r]]);
  }
  return new InMemoryDataset(name, [28, 28, 1], images, captions, labels, FASHION_MNIST_CLASSES, prefix, chosen ?? undefined);
}

export interface FashionMnistOptions {
  dir: string;
  trainSize: number;
  testSize: number;
  seed: number;
  captionTemplates?: readonly string[];
  promptTemplates?: readonly string[];
}

export function fashionMnistSplits(opts: FashionMnistOptions): DatasetSplits {
  const templates = opts.captionTemplates ?? FASHION_MNIST_CAPTION_TEMPLATES;
  const train = loadSplit(opts.dir, FILES.trainImages, FILES.trainLabels);
  const test = loadSplit(opts.dir, FILES.testImages, FILES.testLabels);
  return {
    train: build(train, opts.trainSize, Rng.derive(opts.seed, 'fashion-mnist/train'), templates, 'fashion-mnist', 'fashion-mnist:train'),
    test: build(test, opts.testSize, Rng.derive(opts.seed, 'fashion-mnist/test'), templates, 'fashion-mnist-test', 'fashion-mnist:test'),
    captionTemplates: templates,
    promptTemplates: opts.promptTemplates ?? templates,
    normalization: { mean: [0.286], std: [0.353] },
  };
}
