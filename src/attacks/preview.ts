import { mkdir, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import sharp from 'sharp';
import { imageBytes, type ClipDataset } from '../data/types.js';
import { Rng } from '../util/rng.js';
import { captionMatcher, createTrigger, parseAttack, resolveTarget, type AttackName, type PoisonSettings } from './registry.js';

export interface PreviewOptions {
  /** Samples per row (pairs of clean | triggered images). */
  readonly count?: number;
  readonly seed: number;
  /** `train`: what poisoned training samples look like (random patch positions, multi-trigger draws); `test`: the ASR trigger. */
  readonly mode?: 'train' | 'test';
  /** Integer upscaling factor (nearest neighbour); default: images about 84 px tall. */
  readonly scale?: number;
  /** Write attack names left of the rows (SVG text; needs a system font). */
  readonly labels?: boolean;
}

export interface PreviewResult {
  readonly path: string;
  /** Attack of each row, top to bottom. */
  readonly rows: string[];
  readonly width: number;
  readonly height: number;
}

const BUILTIN_ROWS: readonly AttackName[] = ['badnets', 'blended', 'sig', 'wanet', 'nashville', 'clean-label', 'multi-trigger'];
const BACKGROUND = 48;
const MARGIN = 8;
const PAIR_GAP = 2;
const GAP = 10;
const LABEL_WIDTH = 118;

/** The config of a preview row: the user's settings, with this row's attack. */
function rowConfig(cfg: PoisonSettings, attack: AttackName): PoisonSettings {
  const own = parseAttack(cfg.attack) === attack;
  // triggers belong to the configured strategy; other strategy rows use their defaults.
  return { ...cfg, attack, triggers: own ? cfg.triggers : undefined };
}

/**
 * A PNG of clean | triggered sample pairs for every attack (rows: the
 * built-in attacks, then `patch` and `blend` when `poison.image` is set),
 * upscaled with nearest neighbour so small images stay readable. The same
 * samples appear in every row, except clean-label, which shows samples whose
 * caption names the target (the only ones it poisons). Triggered images use
 * `cfg`'s options (alpha, position, patch size, image) and `opts.seed`.
 */
export async function writePreviewGrid(path: string, dataset: ClipDataset, cfg: PoisonSettings, opts: PreviewOptions): Promise<PreviewResult> {
  const count = opts.count ?? 16;
  if (!(Number.isInteger(count) && count >= 1)) throw new RangeError(`preview count must be a positive integer, got ${count}`);
  const shape = dataset.imageShape;
  const [h, w, c] = shape;
  const b = imageBytes(shape);
  const scale = opts.scale ?? Math.max(1, Math.round(84 / Math.max(h, w)));
  const mode = opts.mode ?? 'train';
  const rows: AttackName[] = [...BUILTIN_ROWS, ...(cfg.image ? (['patch', 'blend'] as const) : [])];

  const all = Int32Array.from({ length: dataset.size }, (_, i) => i);
  const pick = (pool: Int32Array): Int32Array => Rng.derive(opts.seed, 'preview').sample(pool, Math.min(count, pool.length));
  const common = pick(all);
  const target = resolveTarget(cfg.target, dataset.classNames, `dataset ${dataset.name}`);
  const names = captionMatcher(target.name);
  const cleanLabelPool = Int32Array.from(Array.from(all).filter((i) => names(dataset.caption(i))));

  const cellW = w * scale;
  const cellH = h * scale;
  const labelW = opts.labels === false ? 0 : LABEL_WIDTH;
  const width = MARGIN * 2 + labelW + count * (2 * cellW + PAIR_GAP) + (count - 1) * GAP;
  const height = MARGIN * 2 + rows.length * cellH + (rows.length - 1) * GAP;
  const canvas = new Uint8Array(width * height * 3).fill(BACKGROUND);

  const draw = (img: Uint8Array, left: number, top: number) => {
    for (let y = 0; y < cellH; y++) {
      const sy = Math.floor(y / scale);
      for (let x = 0; x < cellW; x++) {
        const src = (sy * w + Math.floor(x / scale)) * c;
        const dst = ((top + y) * width + left + x) * 3;
        canvas[dst] = img[src];
        canvas[dst + 1] = img[src + (c === 3 ? 1 : 0)];
        canvas[dst + 2] = img[src + (c === 3 ? 2 : 0)];
      }
    }
  };

  for (let r = 0; r < rows.length; r++) {
    const attack = rows[r];
    const trigger = await createTrigger(rowConfig(cfg, attack), shape, opts.seed);
    const samples = attack === 'clean-label' ? pick(cleanLabelPool) : common;
    const clean = new Uint8Array(samples.length * b);
    await dataset.readImages(samples, clean);
    const top = MARGIN + r * (cellH + GAP);
    for (let s = 0; s < samples.length; s++) {
      const img = clean.subarray(s * b, (s + 1) * b);
      const triggered =
        mode === 'test' ? trigger.applyTest(img, shape) : trigger.applyTrain(img, shape, Rng.derive(opts.seed, `preview:${attack}:${samples[s]}`));
      const left = MARGIN + labelW + s * (2 * cellW + PAIR_GAP + GAP);
      draw(img, left, top);
      draw(triggered, left + cellW + PAIR_GAP, top);
    }
  }

  const raw = { raw: { width, height, channels: 3 as const } };
  const labelSvg = (): Buffer => {
    const size = Math.min(16, Math.max(10, Math.floor(cellH / 3)));
    const texts = rows
      .map((name, r) => `<text x="${MARGIN}" y="${MARGIN + r * (cellH + GAP) + cellH / 2 + size / 3}">${name}</text>`)
      .join('');
    return Buffer.from(
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
        `<g font-family="DejaVu Sans, Arial, sans-serif" font-size="${size}" fill="#f0f0f0">${texts}</g></svg>`,
    );
  };
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}.png`;
  try {
    await sharp(Buffer.from(canvas.buffer, canvas.byteOffset, canvas.byteLength), raw)
      .composite(labelW > 0 ? [{ input: labelSvg(), top: 0, left: 0 }] : [])
      .png()
      .toFile(tmp);
  } catch {
    // Text rendering depends on the system's fonts; the grid itself does not.
    await sharp(Buffer.from(canvas.buffer, canvas.byteOffset, canvas.byteLength), raw).png().toFile(tmp);
  }
  await rename(tmp, path);
  return { path, rows: [...rows], width, height };
}
