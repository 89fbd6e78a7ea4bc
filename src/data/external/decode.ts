import { availableParallelism } from 'node:os';
import sharp, { type Sharp } from 'sharp';

/** Extensions read as images (lower case, without the dot). */
export const IMAGE_EXTENSIONS: readonly string[] = ['jpg', 'jpeg', 'png', 'webp'];

/** True for an image extension (without the dot, any case). */
export const isImageExtension = (ext: string): boolean => IMAGE_EXTENSIONS.includes(ext.toLowerCase());

/** How every external image is turned into the model's fixed-size input. */
export interface ImageGeometry {
  /** Output side in pixels (`data.resize`). */
  readonly size: number;
  /** `crop`: scale to cover the square, cut the centre; `pad`: scale to fit inside, black borders. */
  readonly fit: 'crop' | 'pad';
  /** 1 = greyscale, 3 = RGB; any alpha channel is dropped. */
  readonly channels: 1 | 3;
}

/** Bytes of one fitted image: side x side x channels. */
export const geometryBytes = (g: ImageGeometry): number => g.size * g.size * g.channels;

/**
 * Decodes in flight at once. Decoding runs on libuv's thread pool (4 threads
 * unless UV_THREADPOOL_SIZE says otherwise); more in flight than threads only
 * queues, fewer leaves cores idle while the training step runs.
 */
export function defaultDecodeConcurrency(): number {
  const pool = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  return Math.max(2, Math.min(pool, availableParallelism() * 2));
}

/** An image libvips could not decode (corrupt, truncated or not an image). */
export class ImageDecodeError extends Error {
  override readonly name = 'ImageDecodeError';
}

function pipeline(bytes: Uint8Array): Sharp {
  // failOn 'warning' makes truncated data an error instead of a grey tail.
  return sharp(bytes, { failOn: 'warning' });
}

async function render(img: Sharp, g: ImageGeometry): Promise<Uint8Array> {
  const fitted = img
    .resize(g.size, g.size, g.fit === 'crop' ? { fit: 'cover', position: 'centre' } : { fit: 'contain', position: 'centre', background: { r: 0, g: 0, b: 0, alpha: 1 } })
    .removeAlpha();
  const coloured = g.channels === 1 ? fitted.toColourspace('b-w') : fitted.toColourspace('srgb');
  const { data, info } = await coloured.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.width !== g.size || info.height !== g.size || info.channels !== g.channels || data.length !== geometryBytes(g)) {
    throw new ImageDecodeError(`decoded to ${info.width}x${info.height}x${info.channels}, expected ${g.size}x${g.size}x${g.channels}`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0].trim();

/** Decode, fit and convert one encoded image to HWC uint8 (`size * size * channels` bytes). */
export async function decodeImage(bytes: Uint8Array, g: ImageGeometry): Promise<Uint8Array> {
  try {
    return await render(pipeline(bytes), g);
  } catch (e) {
    throw e instanceof ImageDecodeError ? e : new ImageDecodeError(describe(e));
  }
}

export interface ProbedImage {
  /** Size and format of the encoded image, before fitting. */
  readonly width: number;
  readonly height: number;
  readonly format: string;
  readonly pixels: Uint8Array;
}

/**
 * Read the header and fully decode: a header alone does not prove the data
 * is intact (a truncated JPEG has a perfect header), so datasets check each
 * image this way once when they open.
 */
export async function probeImage(bytes: Uint8Array, g: ImageGeometry): Promise<ProbedImage> {
  try {
    const img = pipeline(bytes);
    const meta = await img.metadata();
    if (!meta.width || !meta.height) throw new ImageDecodeError('image header has no size');
    const pixels = await render(img, g);
    return { width: meta.width, height: meta.height, format: meta.format ?? 'unknown', pixels };
  } catch (e) {
    throw e instanceof ImageDecodeError ? e : new ImageDecodeError(describe(e));
  }
}
