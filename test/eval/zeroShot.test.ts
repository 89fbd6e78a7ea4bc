import { describe, expect, it } from 'vitest';
import type { ClipDataset } from '../../src/data/types.js';
import { evaluateZeroShot } from '../../src/eval/zeroShot.js';
import type { EmbeddingModel } from '../../src/train/hooks.js';

/**
 * A model whose image embedding is a fixed 2-D vector per test image and
 * whose text embedding points along the axis its class word names, so that
 * every prediction is known by hand.
 */
const axes: Record<string, [number, number]> = { left: [-1, 0], right: [1, 0], up: [0, 1] };

function fakeModel(images: [number, number][]): EmbeddingModel {
  return {
    embedDim: 2,
    embedImages: async (_dataset, indices) => {
      const rows = indices ? Array.from(indices) : images.map((_, i) => i);
      return Float32Array.from(rows.flatMap((i) => images[i]));
    },
    embedTexts: async (captions) => Float32Array.from(captions.flatMap((c) => axes[c.split(' ').pop()!])),
  };
}

function dataset(labels: number[]): ClipDataset {
  return {
    name: 'fake',
    size: labels.length,
    imageShape: [1, 1, 1],
    classNames: ['left', 'right', 'up'],
    id: (i) => `fake:${i}`,
    caption: (i) => `a ${['left', 'right', 'up'][labels[i]]}`,
    label: (i) => labels[i],
    readImages: () => undefined,
  };
}

describe('evaluateZeroShot', () => {
  it('reports the accuracy of every class with test images, by name, beside the overall accuracy', async () => {
    // left: 2 of 3 right; right: 1 of 1; up: 0 of 2 (both read as left / right)
    const images: [number, number][] = [[-1, 0.1], [-2, -0.5], [1, 0.2], [3, 0.1], [-1, 0.2], [1, 0.3]];
    const labels = [0, 0, 0, 1, 2, 2];
    const result = await evaluateZeroShot(fakeModel(images), dataset(labels), ['a {}']);
    expect(result.accuracyByClass).toEqual({ left: 2 / 3, right: 1, up: 0 });
    expect(result.cleanAccuracy).toBeCloseTo(3 / 6, 12);
    expect(result.attackSuccessRate).toBeNull();
  });

  it('leaves out classes without test images', async () => {
    const result = await evaluateZeroShot(fakeModel([[0.1, 1]]), dataset([2]), ['a {}']);
    expect(result.accuracyByClass).toEqual({ up: 1 });
  });
});
