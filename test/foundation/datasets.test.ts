import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { fashionMnistSplits } from '../../src/data/fashionMnist.js';
import { encodeIdx, parseIdx, readIdxFile } from '../../src/data/idx.js';
import { sampleStream } from '../../src/data/stream.js';
import { SYNTHETIC_CLASSES, syntheticSplits } from '../../src/data/synthetic.js';
import { UserError } from '../../src/util/errors.js';
import { tempDir } from '../helpers/tiny.js';

function writeFashionFixture(dir: string, train: number, test: number): void {
  mkdirSync(dir, { recursive: true });
  const imgs = (n: number) => Uint8Array.from({ length: n * 784 }, (_, i) => (i * 7) % 256);
  const lbls = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 10);
  writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(encodeIdx([train, 28, 28], imgs(train))));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(encodeIdx([train], lbls(train))));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(encodeIdx([test, 28, 28], imgs(test))));
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(encodeIdx([test], lbls(test))));
}

describe('IDX parsing', () => {
  it('reads dimensions and data', () => {
    const data = Uint8Array.from([1, 2, 3, 4, 5, 6]);
    const idx = parseIdx(encodeIdx([2, 3], data), 'x');
    expect(idx.dims).toEqual([2, 3]);
    expect(Array.from(idx.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('names the file and the problem for truncated, corrupt and foreign files', () => {
    const good = encodeIdx([2, 3], new Uint8Array(6));
    expect(() => parseIdx(good.subarray(0, good.length - 1), 'f.idx')).toThrow(/f\.idx: truncated IDX data \(header says 2x3 = 6 bytes, file has 5\)/);
    expect(() => parseIdx(good.subarray(0, 6), 'f.idx')).toThrow(/f\.idx: truncated IDX header/);
    expect(() => parseIdx(Uint8Array.from([1, 2, 8, 1]), 'f.idx')).toThrow(/not an IDX file/);
    const dir = tempDir();
    const bad = join(dir, 'bad.gz');
    const gz = gzipSync(good);
    writeFileSync(bad, gz.subarray(0, gz.length - 6));
    expect(() => readIdxFile(bad)).toThrow(/bad\.gz: corrupt gzip data/);
  });
});

describe('fashion-mnist', () => {
  it('loads generated IDX fixtures with templated captions naming the class', () => {
    const dir = tempDir();
    writeFashionFixture(dir, 30, 20);
    const s = fashionMnistSplits({ dir, trainSize: 0, testSize: 0, seed: 0 });
    expect(s.train.size).toBe(30);
    expect(s.test.size).toBe(20);
    expect(s.train.imageShape).toEqual([28, 28, 1]);
    for (let i = 0; i < 30; i++) expect(s.train.caption(i)).toContain(s.train.classNames![s.train.label(i)]);
    const out = new Uint8Array(784);
    s.train.readImages([3], out);
    expect(out[0]).toBe((3 * 784 * 7) % 256);
    expect(s.train.id(3)).toBe('fashion-mnist:train:3');
  });

  it('subsamples deterministically and keeps source ids', () => {
    const dir = tempDir();
    writeFashionFixture(dir, 50, 20);
    const a = fashionMnistSplits({ dir, trainSize: 10, testSize: 5, seed: 3 });
    const b = fashionMnistSplits({ dir, trainSize: 10, testSize: 5, seed: 3 });
    expect(a.train.size).toBe(10);
    expect(Array.from({ length: 10 }, (_, i) => a.train.id(i))).toEqual(Array.from({ length: 10 }, (_, i) => b.train.id(i)));
  });

  it('names the apt package and the config key when files are missing', () => {
    try {
      fashionMnistSplits({ dir: join(tempDir(), 'absent'), trainSize: 0, testSize: 0, seed: 0 });
      throw new Error('expected an error');
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      const u = e as UserError;
      expect(u.message).toContain('train-images-idx3-ubyte.gz');
      expect(u.hint).toContain('apt-get install dataset-fashion-mnist');
      expect(u.hint).toContain('data.dir');
    }
  });
});

describe('synthetic', () => {
  it('is deterministic given the seed and differs across seeds', () => {
    const a = syntheticSplits({ trainSize: 40, testSize: 10, imageSize: 12, seed: 5 });
    const b = syntheticSplits({ trainSize: 40, testSize: 10, imageSize: 12, seed: 5 });
    const c = syntheticSplits({ trainSize: 40, testSize: 10, imageSize: 12, seed: 6 });
    const pixels = (s: typeof a) => {
      const out = new Uint8Array(40 * 12 * 12 * 3);
      s.train.readImages(Int32Array.from({ length: 40 }, (_, i) => i), out);
      return out;
    };
    expect(pixels(a)).toEqual(pixels(b));
    expect(pixels(a)).not.toEqual(pixels(c));
    expect(a.train.caption(7)).toBe(b.train.caption(7));
  });

  it('has at least 8 classes, captions that name them, and every class drawn', () => {
    const s = syntheticSplits({ trainSize: 600, testSize: 10, imageSize: 16, seed: 0 });
    expect(SYNTHETIC_CLASSES.length).toBeGreaterThanOrEqual(8);
    const seen = new Set<number>();
    for (let i = 0; i < s.train.size; i++) {
      seen.add(s.train.label(i));
      expect(s.train.caption(i)).toContain(SYNTHETIC_CLASSES[s.train.label(i)]);
    }
    expect(seen.size).toBe(SYNTHETIC_CLASSES.length);
  });

  it('streams samples with their index through tfjs-data', async () => {
    const s = syntheticSplits({ trainSize: 5, testSize: 2, imageSize: 8, seed: 0 });
    const items = await sampleStream(s.train, [4, 1]).toArray();
    expect(items.map((x) => (x as { index: number }).index)).toEqual([4, 1]);
    expect((items[0] as { caption: string }).caption).toBe(s.train.caption(4));
    expect((items[0] as { image: Uint8Array }).image.length).toBe(8 * 8 * 3);
  });
});
