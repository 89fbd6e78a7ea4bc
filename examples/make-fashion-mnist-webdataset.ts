/**
 * Build a webdataset from Fashion-MNIST: the same 20k training samples and
 * captions that `--data.kind fashion-mnist --data.size 20000` draws (same
 * seed, same subsample, same caption per sample), written as tar shards of
 * PNG images + `.txt` captions + `.json` labels, and the 10k test images as
 * a labelled folder (one subdirectory per class) or CSV. Training on the
 * result with the generated config should match the IDX path within noise.
 *
 * Usage (after `npm run build`):
 *   node dist/examples/make-fashion-mnist-webdataset.js --out data/fmnist-wds
 *   clip-backdoor-filter data inspect "data/fmnist-wds/train-{00000..00019}.tar"
 *   clip-backdoor-filter train --config data/fmnist-wds/fashion-mnist-webdataset.yaml --out runs/fmnist-wds
 *   # the same data through the IDX reader, for comparison:
 *   clip-backdoor-filter train --config configs/fashion-mnist.yaml --data.size 20000 --out runs/fmnist-idx
 *
 * Options: --out <dir> (default data/fashion-mnist-wds), --size 20000,
 * --shard-size 1000, --test-size 0 (0 = all 10k), --test-format folder|csv,
 * --seed 0 (the run seed the config will use), --dir <IDX directory>
 * (default /usr/share/datasets/fashion-mnist; `apt-get install dataset-fashion-mnist`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { stringify } from 'yaml';
import { forEachLimit } from '../src/data/external/limit.js';
import { TarWriter } from '../src/data/external/tarWriter.js';
import { FASHION_MNIST_CAPTION_TEMPLATES, FASHION_MNIST_CLASSES, fashionMnistSplits } from '../src/data/fashionMnist.js';
import type { InMemoryDataset } from '../src/data/memory.js';
import { formatError } from '../src/util/errors.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'data/fashion-mnist-wds' },
    size: { type: 'string', default: '20000' },
    'shard-size': { type: 'string', default: '1000' },
    'test-size': { type: 'string', default: '0' },
    'test-format': { type: 'string', default: 'folder' },
    seed: { type: 'string', default: '0' },
    dir: { type: 'string', default: '/usr/share/datasets/fashion-mnist' },
  },
});

const count = (name: string, text: string | undefined, min: number): number => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${text}`);
  return n;
};

/** The IDX sample index behind an id such as `fashion-mnist:train:123`. */
const sourceIndex = (ds: InMemoryDataset, i: number) => Number(ds.id(i).split(':').pop());

const encodePng = (ds: InMemoryDataset, i: number) => sharp(ds.image(i), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();

/** Encode a range of images concurrently, then hand them over in index order. */
async function encodeRange(ds: InMemoryDataset, start: number, end: number): Promise<Buffer[]> {
  const out = new Array<Buffer>(end - start);
  await forEachLimit(
    Array.from({ length: end - start }, (_, k) => start + k),
    8,
    async (i) => {
      out[i - start] = await encodePng(ds, i);
    },
  );
  return out;
}

async function main(): Promise<void> {
  const out = resolve(values.out!);
  const size = count('size', values.size, 2);
  const shardSize = count('shard-size', values['shard-size'], 1);
  const testSize = count('test-size', values['test-size'], 0);
  const seed = count('seed', values.seed, 0);
  const testFormat = values['test-format'];
  if (testFormat !== 'folder' && testFormat !== 'csv') throw new Error(`--test-format must be folder or csv, got ${testFormat}`);
  // Exactly the IDX path's samples: same subsample and same caption draw for this seed.
  const splits = fashionMnistSplits({ dir: values.dir!, trainSize: size, testSize, seed });
  const train = splits.train as InMemoryDataset;
  const test = splits.test as InMemoryDataset;
  mkdirSync(out, { recursive: true });

  const shards = Math.ceil(train.size / shardSize);
  const width = Math.max(5, String(shards - 1).length);
  for (let s = 0; s < shards; s++) {
    const start = s * shardSize;
    const end = Math.min(train.size, start + shardSize);
    const images = await encodeRange(train, start, end);
    const tar = new TarWriter(join(out, `train-${String(s).padStart(width, '0')}.tar`));
    for (let i = start; i < end; i++) {
      const key = String(sourceIndex(train, i)).padStart(5, '0');
      const label = train.label(i);
      tar.add(`${key}.png`, images[i - start]);
      tar.add(`${key}.txt`, train.caption(i));
      tar.add(`${key}.json`, JSON.stringify({ label: FASHION_MNIST_CLASSES[label], index: label, source: train.id(i) }));
    }
    tar.close();
    if (process.stderr.isTTY) process.stderr.write(`\rtrain shards ${s + 1}/${shards}`);
  }
  if (process.stderr.isTTY) process.stderr.write('\n');

  const testImages = await encodeRange(test, 0, test.size);
  const testPath = testFormat === 'folder' ? join(out, 'test') : join(out, 'test.csv');
  const csvRows = ['filepath,label'];
  for (let i = 0; i < test.size; i++) {
    const cls = FASHION_MNIST_CLASSES[test.label(i)];
    const name = `${String(sourceIndex(test, i)).padStart(5, '0')}.png`;
    const rel = testFormat === 'folder' ? join(cls, name) : join('test-images', name);
    mkdirSync(join(testFormat === 'folder' ? testPath : out, testFormat === 'folder' ? cls : 'test-images'), { recursive: true });
    writeFileSync(testFormat === 'folder' ? join(testPath, rel) : join(out, rel), testImages[i]);
    // Class names are quoted: "ankle boot" has a space, and quoting keeps the CSV valid for any name.
    csvRows.push(`${rel},"${cls}"`);
  }
  if (testFormat === 'csv') writeFileSync(testPath, csvRows.join('\n') + '\n');

  const shardSpec = join(out, `train-{${'0'.repeat(width)}..${String(shards - 1).padStart(width, '0')}}.tar`);
  const config = {
    seed,
    data: {
      kind: 'webdataset',
      path: shardSpec,
      testPath,
      classNames: FASHION_MNIST_CLASSES,
      captionTemplates: FASHION_MNIST_CAPTION_TEMPLATES,
      promptTemplates: FASHION_MNIST_CAPTION_TEMPLATES,
      size: 0,
      testSize: 0,
      resize: 28,
      fit: 'crop',
      channels: 1,
    },
    model: { imageTower: 'mlp', hidden: [512, 512], embedDim: 128, textWidth: 256 },
    train: { epochs: 10, batchSize: 256, lr: 0.001, weightDecay: 0.1, warmupSteps: 100 },
  };
  const configPath = join(out, 'fashion-mnist-webdataset.yaml');
  writeFileSync(
    configPath,
    `# Written by examples/make-fashion-mnist-webdataset.ts: ${train.size} Fashion-MNIST training samples as\n` +
      `# webdataset shards and ${test.size} test images as a labelled ${testFormat}. Same model and training as\n` +
      `# configs/fashion-mnist.yaml; compare with: --config configs/fashion-mnist.yaml --data.size ${size}\n` +
      stringify(config, { aliasDuplicateObjects: false }),
  );
  process.stdout.write(`wrote ${shards} shards (${train.size} samples) to ${shardSpec}\n`);
  process.stdout.write(`wrote ${test.size} test images to ${testPath}\n`);
  process.stdout.write(`config: ${configPath}\n`);
}

main().catch((e) => {
  process.stderr.write(`error: ${formatError(e)}\n`);
  process.exit(1);
});
