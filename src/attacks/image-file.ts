import sharp from 'sharp';
import type { ImageShape } from '../data/types.js';
import { UserError } from '../util/errors.js';

/** Pixels of a user-supplied trigger image, converted to a dataset's channel count. */
export interface TriggerImage {
  readonly path: string;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  /** HWC uint8, `channels` per pixel. */
  readonly pixels: Uint8Array;
  /** Opacity 0..1 per pixel, or null when the file is fully opaque. */
  readonly alpha: Float32Array | null;
  /** The dataset image shape the file was resized for. */
  readonly forShape: ImageShape;
}

/**
 * Read an image file with sharp and resize it to `height x width`.
 * `fit: 'fill'` stretches (a blend pattern must cover the whole image);
 * `'contain'` keeps the aspect ratio and pads with transparency (a patch).
 * Grey targets use Rec. 601 luma of the sRGB pixels, computed here so the
 * conversion does not depend on the libvips version.
 */
export async function loadTriggerImage(
  path: string,
  height: number,
  width: number,
  forShape: ImageShape,
  fit: 'fill' | 'contain',
): Promise<TriggerImage> {
  const channels = forShape[2];
  let decoded: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    decoded = await sharp(path)
      .resize(width, height, { fit, kernel: 'lanczos3', background: { r: 0, g: 0, b: 0, alpha: 0 } })
      .toColourspace('srgb')
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new UserError(
      `cannot read trigger image poison.image = ${path}: ${reason}`,
      'POISON_IMAGE',
      'give a readable PNG/JPEG/WebP file',
    );
  }
  const { data, info } = decoded;
  if (info.channels !== 4 || info.width !== width || info.height !== height) {
    throw new Error(`sharp returned ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x4`);
  }
  const n = width * height;
  const pixels = new Uint8Array(n * channels);
  const alpha = new Float32Array(n);
  let opaque = true;
  for (let p = 0; p < n; p++) {
    const r = data[4 * p];
    const g = data[4 * p + 1];
    const b = data[4 * p + 2];
    const a = data[4 * p + 3];
    if (a !== 255) opaque = false;
    alpha[p] = a / 255;
    if (channels === 1) {
      pixels[p] = Math.min(255, Math.round(0.299 * r + 0.587 * g + 0.114 * b));
    } else {
      pixels[channels * p] = r;
      pixels[channels * p + 1] = g;
      pixels[channels * p + 2] = b;
    }
  }
  return { path, height, width, channels, pixels, alpha: opaque ? null : alpha, forShape: [forShape[0], forShape[1], forShape[2]] };
}

/** Trigger images are resized for one dataset shape; using them on another is a bug in the caller. */
export function checkSameShape(img: TriggerImage, shape: ImageShape, who: string): void {
  if (shape[0] !== img.forShape[0] || shape[1] !== img.forShape[1] || shape[2] !== img.forShape[2]) {
    throw new Error(
      `${who}: trigger image ${img.path} was prepared for images of shape ${img.forShape.join('x')}, ` +
        `got ${shape.join('x')}; create the trigger for that shape`,
    );
  }
}
