import { Rng } from '../util/rng.js';
import { InMemoryDataset } from './memory.js';
import type { DatasetSplits, ImageShape } from './types.js';

/**
 * The built-in dataset: procedurally drawn coloured shapes on noisy
 * backgrounds, so that every command works with no download. Classes are
 * colour x shape ("red circle"); a caption names the class in one of several
 * templates. Position, size, hue and background vary per sample, so the task
 * is learnable but not trivial. Fully determined by (seed, size, imageSize).
 */
export const SYNTHETIC_COLORS = [
  { name: 'red', rgb: [215, 45, 40] },
  { name: 'green', rgb: [45, 190, 70] },
  { name: 'blue', rgb: [45, 85, 225] },
] as const;

export const SYNTHETIC_SHAPES = ['circle', 'square', 'triangle', 'cross'] as const;

export const SYNTHETIC_CLASSES: readonly string[] = SYNTHETIC_COLORS.flatMap((c) => SYNTHETIC_SHAPES.map((s) => `${c.name} ${s}`));

export const SYNTHETIC_CAPTION_TEMPLATES = [
  'a photo of a {}.',
  'a {} on a plain background.',
  'a small {}.',
  'a drawing of a {}.',
  'an image showing a {}.',
  'a picture of one {}.',
  'a blurry photo of a {}.',
  'a {} in the picture.',
];

type Shape = (typeof SYNTHETIC_SHAPES)[number];

function inside(shape: Shape, dx: number, dy: number, r: number): boolean {
  switch (shape) {
    case 'circle':
      return dx * dx + dy * dy <= r * r;
    case 'square':
      return Math.abs(dx) <= 0.82 * r && Math.abs(dy) <= 0.82 * r;
    case 'triangle': {
      // Apex up: half-width grows linearly from the apex to the base.
      const t = (dy + r) / (1.8 * r);
      return t >= 0 && t <= 1 && Math.abs(dx) <= t * r;
    }
    case 'cross':
      return (Math.abs(dx) <= 0.3 * r && Math.abs(dy) <= r) || (Math.abs(dy) <= 0.3 * r && Math.abs(dx) <= r);
  }
}

const clampByte = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/** Draw one sample of class `label` into `out` (HWC uint8). */
export function drawSynthetic(label: number, side: number, rng: Rng, out: Uint8Array): void {
  const color = SYNTHETIC_COLORS[Math.floor(label / SYNTHETIC_SHAPES.length)].rgb;
  const shape = SYNTHETIC_SHAPES[label % SYNTHETIC_SHAPES.length];
  // Backgrounds are low-saturation so that colour belongs to the shape.
  const grey = rng.uniform(20, 150);
  const bg = [grey + rng.uniform(-18, 18), grey + rng.uniform(-18, 18), grey + rng.uniform(-18, 18)];
  const noise = rng.uniform(4, 22);
  const fg = color.map((c) => c + rng.uniform(-30, 30));
  const r = side * rng.uniform(0.22, 0.4);
  const margin = r + 0.5;
  const cx = rng.uniform(margin, side - margin);
  const cy = rng.uniform(margin, side - margin);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const p = (y * side + x) * 3;
      const on = inside(shape, x + 0.5 - cx, y + 0.5 - cy, r);
      const base = on ? fg : bg;
      for (let c = 0; c < 3; c++) out[p + c] = clampByte(base[c] + noise * rng.normal());
    }
  }
}

function generate(count: number, side: number, rng: Rng, templates: readonly string[], name: string, prefix: string): InMemoryDataset {
  const shape: ImageShape = [side, side, 3];
  const bytes = side * side * 3;
  const images = new Uint8Array(count * bytes);
  const labels = new Int32Array(count);
  const captions: string[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const label = rng.int(SYNTHETIC_CLASSES.length);
    labels[i] = label;
    drawSynthetic(label, side, rng, images.subarray(i * bytes, (i + 1) * bytes));
    captions[i] = rng.pick(templates).replace('{}', SYNTHETIC_CLASSES[label]);
  }
  return new InMemoryDataset(name, shape, images, captions, labels, SYNTHETIC_CLASSES, prefix);
}

export interface SyntheticOptions {
  trainSize: number;
  testSize: number;
  imageSize: number;
  seed: number;
  captionTemplates?: readonly string[];
  promptTemplates?: readonly string[];
}

export function syntheticSplits(opts: SyntheticOptions): DatasetSplits {
  const templates = opts.captionTemplates ?? SYNTHETIC_CAPTION_TEMPLATES;
  const train = generate(opts.trainSize, opts.imageSize, Rng.derive(opts.seed, 'synthetic/train'), templates, 'synthetic', 'synthetic:train');
  const test = generate(opts.testSize, opts.imageSize, Rng.derive(opts.seed, 'synthetic/test'), templates, 'synthetic-test', 'synthetic:test');
  return {
    train,
    test,
    captionTemplates: templates,
    promptTemplates: opts.promptTemplates ?? templates,
    normalization: { mean: [0.4, 0.4, 0.4], std: [0.3, 0.3, 0.3] },
  };
}
