import type { RawImage } from './raw-image.js';
import { PeftError, invalidOption } from '@peftjs/core';
import sharp from 'sharp';
import { decodeBmp, readBmpHeader } from './bmp.js';
import { readInputFile } from './files.js';
import { type RasterFormat, describeUnknownFormat, sniffRasterFormat } from './formats.js';
import { DEFAULT_INPUT_LIMITS, type InputLimits, grouped, howToRaise, resolveLimits } from './limits.js';
import { PixelBudget } from './pixel-budget.js';
import { type SampleSource, listedAt } from './split.js';

/** Options of `decodeImage` (and of any `ImageDecoder`). */
export interface DecodeOptions {
  /** Output `[height, width]`. */
  readonly size: readonly [number, number];
  /** Output channels: 3 (RGB) or 1 (grey, ITU-R 601 weights); alpha is dropped. */
  readonly channels: 1 | 3;
  /** The list file and line that named the image, quoted in errors. */
  readonly source?: SampleSource;
  /** Size limits (default `DEFAULT_INPUT_LIMITS`): `maxFileBytes` and `maxImagePixels` apply. */
  readonly limits?: Partial<InputLimits>;
}

/** Anything that turns an image file into HWC float32 pixels in [0, 1] (`decodeImage`, or a test double). */
export type ImageDecoder = (path: string, options: DecodeOptions) => Promise<Float32Array>;

/** Pixels decoded at once by this process, across all parallel decodes (see `InputLimits.maxImagePixels`). */
const decodeBudget = new PixelBudget(DEFAULT_INPUT_LIMITS.maxImagePixels);

/** Width and height from the file's header, read without decoding a pixel. */
async function headerSize(bytes: Buffer, format: RasterFormat): Promise<{ width: number; height: number }> {
  if (format === 'bmp') return readBmpHeader(bytes);
  const meta = await sharp(bytes).metadata();
  // libvips sniffs on its own; it must agree with the magic bytes, so no other loader ever runs.
  if (meta.format !== format) throw new Error(`${format} magic bytes but libvips reads it as ${meta.format}`);
  return { width: meta.width, height: meta.height };
}

/**
 * Reads, checks and decodes an image, then runs `use` on the pixels while still holding their share of the
 * decode budget (so the copies `use` makes are bounded too).
 */
async function withRawImage<T>(
  path: string,
  source: SampleSource | undefined,
  partialLimits: Partial<InputLimits> | undefined,
  use: (image: RawImage) => Promise<T>,
): Promise<T> {
  const limits = resolveLimits(partialLimits);
  const where = listedAt(source);
  const bytes = await readInputFile(path, 'image', limits.maxFileBytes, 'maxFileBytes', where);
  let pixels: number;
  let format: RasterFormat;
  try {
    const sniffed = sniffRasterFormat(bytes);
    if (sniffed === null) throw new Error(describeUnknownFormat(bytes));
    format = sniffed;
    const { width, height } = await headerSize(bytes, format);
    pixels = width * height;
    if (pixels > limits.maxImagePixels) {
      throw new Error(
        `${width}×${height} = ${grouped(pixels)} pixels, over the limit of ${grouped(limits.maxImagePixels)}; ` +
          `${howToRaise('maxImagePixels')} if the image is genuine`,
      );
    }
  } catch (error) {
    throw decodeError(path, where, error);
  }
  return decodeBudget.run(pixels, async () => {
    let image: RawImage;
    try {
      image =
        format === 'bmp' ? decodeBmp(bytes, limits.maxImagePixels) : await decodeWithSharp(bytes, limits);
    } catch (error) {
      throw decodeError(path, where, error);
    }
    return use(image);
  });
}

async function decodeWithSharp(bytes: Buffer, limits: InputLimits): Promise<RawImage> {
  const { data, info } = await sharp(bytes, { failOn: 'warning', limitInputPixels: limits.maxImagePixels })
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function decodeError(path: string, where: string, error: unknown): PeftError {
  return new PeftError('IO_FAILED', `cannot decode image ${path}${where}: ${(error as Error).message}`, {
    cause: error,
  });
}

/**
 * Decodes a whole image at its own size to 8-bit sRGB (3 channels, or 4 with alpha). CMYK, palette, greyscale
 * and 16-bit inputs are converted by libvips; BMP (which sharp cannot read) by a small decoder of our own.
 * EXIF orientation is ignored, as PIL's `Image.open` (timm's loader) ignores it. Multi-frame files give their
 * first frame. Truncated or corrupt files fail (`failOn: 'warning'`) rather than decoding to partial grey.
 *
 * Only regular files of PNG, JPEG, GIF, WebP, TIFF or BMP data (recognised by their first bytes, whatever the
 * name) are read, of at most `limits.maxFileBytes` bytes and `limits.maxImagePixels` pixels (checked from the
 * header before decoding): anything else raises `IO_FAILED` naming the file.
 */
export async function readRawImage(
  path: string,
  source?: SampleSource,
  limits?: Partial<InputLimits>,
): Promise<RawImage> {
  return withRawImage(path, source, limits, async (image) => image);
}

/** Drops alpha and converts to `channels`: RGB → grey uses PIL's `convert('L')` weights (ITU-R 601). */
export function toChannels(image: RawImage, channels: 1 | 3): RawImage {
  const { data, width, height } = image;
  const n = width * height;
  const inC = image.channels;
  const colour = inC >= 3;
  const outC = channels === 1 || !colour ? 1 : 3;
  if (inC === outC) return image;
  const out = new Uint8Array(n * outC);
  for (let p = 0; p < n; p++) {
    const i = p * inC;
    if (outC === 3) {
      out[3 * p] = data[i] as number;
      out[3 * p + 1] = data[i + 1] as number;
      out[3 * p + 2] = data[i + 2] as number;
    } else if (colour) {
      const r = data[i] as number;
      const g = data[i + 1] as number;
      const b = data[i + 2] as number;
      out[p] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
    } else {
      out[p] = data[i] as number;
    }
  }
  return { data: out, width, height, channels: outC };
}

/**
 * Bicubic resize with libvips' `cubic` kernel, the Catmull-Rom spline (B = 0, C = 0.5): the same kernel as PIL's
 * BICUBIC (a = −0.5), and both widen it when downscaling (antialiasing). Results still differ from PIL by a few
 * 8-bit levels (different fixed-point rounding between the two separable passes), so runs that need exact PIL
 * parity should pre-resize offline with PIL. Decoding happens before this step, so JPEG shrink-on-load never
 * applies.
 */
export async function resizeCubic(image: RawImage, size: readonly [number, number]): Promise<RawImage> {
  const [height, width] = size;
  if (image.width === width && image.height === height) return image;
  if (image.channels !== 1 && image.channels !== 3) {
    invalidOption('channels', image.channels, '1 or 3 (drop alpha first)');
  }
  let pipeline = sharp(image.data, {
    raw: { width: image.width, height: image.height, channels: image.channels },
    // Already decoded (and checked against `maxImagePixels`): sharp's own default cap must not refuse it.
    limitInputPixels: image.width * image.height,
  }).resize(width, height, { kernel: 'cubic', fit: 'fill' });
  // Without this libvips writes one-band images back out as sRGB (three bands).
  if (image.channels === 1) pipeline = pipeline.toColourspace('b-w');
  const data = await pipeline.raw({ depth: 'uchar' }).toBuffer();
  return { data, width, height, channels: image.channels };
}

export function validateDecodeOptions(options: DecodeOptions): void {
  const size = options.size as unknown;
  if (
    !Array.isArray(size) ||
    size.length !== 2 ||
    !size.every((v) => typeof v === 'number' && Number.isInteger(v) && v > 0)
  ) {
    invalidOption('size', size, '[height, width] of positive integers');
  }
  if (options.channels !== 1 && options.channels !== 3) invalidOption('channels', options.channels, '1 or 3');
}

/** 8-bit pixels to float32 in [0, 1], replicating a grey channel when three are wanted. */
export function toFloat(image: RawImage, channels: 1 | 3): Float32Array {
  const { data } = image;
  const n = image.width * image.height;
  const out = new Float32Array(n * channels);
  if (image.channels === channels) {
    for (let i = 0; i < out.length; i++) out[i] = (data[i] as number) / 255;
  } else {
    for (let p = 0; p < n; p++) {
      const v = (data[p] as number) / 255;
      out[3 * p] = v;
      out[3 * p + 1] = v;
      out[3 * p + 2] = v;
    }
  }
  return out;
}

/**
 * Decodes an image file to HWC float32 in [0, 1] at `size`: greyscale, alpha, palette and CMYK inputs become RGB
 * (alpha dropped, as PIL's `convert('RGB')`), or one channel when `channels` is 1; bicubic resize (see
 * `resizeCubic`); EXIF orientation ignored. A missing, corrupt, non-raster, non-regular or oversized file (see
 * `readRawImage` and `options.limits`) raises `IO_FAILED` naming it (and the list file and line from
 * `options.source`).
 */
export async function decodeImage(path: string, options: DecodeOptions): Promise<Float32Array> {
  validateDecodeOptions(options);
  return withRawImage(path, options.source, options.limits, async (image) => {
    const raw = toChannels(image, options.channels);
    let resized: RawImage;
    try {
      resized = await resizeCubic(raw, options.size);
    } catch (error) {
      throw new PeftError(
        'IO_FAILED',
        `cannot resize image ${path}${listedAt(options.source)}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    return toFloat(resized, options.channels);
  });
}
