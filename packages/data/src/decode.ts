import { readFile } from 'node:fs/promises';
import { PeftError, invalidOption } from '@peftjs/core';
import sharp from 'sharp';
import { decodeBmp, isBmp } from './bmp.js';
import { type SampleSource, listedAt } from './split.js';

/** Options of `decodeImage` (and of any `ImageDecoder`). */
export interface DecodeOptions {
  /** Output `[height, width]`. */
  readonly size: readonly [number, number];
  /** Output channels: 3 (RGB) or 1 (grey, ITU-R 601 weights); alpha is dropped. */
  readonly channels: 1 | 3;
  /** The list file and line that named the image, quoted in errors. */
  readonly source?: SampleSource;
}

/** Anything that turns an image file into HWC float32 pixels in [0, 1] (`decodeImage`, or a test double). */
export type ImageDecoder = (path: string, options: DecodeOptions) => Promise<Float32Array>;

/** 8-bit interleaved pixels. */
export interface RawImage {
  /** Pixels row by row, `channels` values each (`height · width · channels` bytes). */
  readonly data: Uint8Array;
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** Values per pixel: 1 (grey), 3 (RGB) or 4 (RGBA). */
  readonly channels: number;
}

/**
 * Decodes a whole image at its own size to 8-bit sRGB (3 channels, or 4 with alpha). CMYK, palette, greyscale
 * and 16-bit inputs are converted by libvips; BMP (which sharp cannot read) by a small decoder of our own.
 * EXIF orientation is ignored, as PIL's `Image.open` (timm's loader) ignores it. Multi-frame files give their
 * first frame. Truncated or corrupt files fail (`failOn: 'warning'`) rather than decoding to partial grey.
 */
export async function readRawImage(path: string, source?: SampleSource): Promise<RawImage> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (error as Error).message;
    throw new PeftError('IO_FAILED', `cannot read image ${path}${listedAt(source)}: ${reason}`, {
      cause: error,
    });
  }
  try {
    if (isBmp(bytes)) return decodeBmp(bytes);
    const { data, info } = await sharp(bytes, { failOn: 'warning' })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height, channels: info.channels };
  } catch (error) {
    throw new PeftError(
      'IO_FAILED',
      `cannot decode image ${path}${listedAt(source)}: ${(error as Error).message}`,
      { cause: error },
    );
  }
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
 * `resizeCubic`); EXIF orientation ignored. A missing or corrupt file raises `IO_FAILED` naming it (and the list
 * file and line from `options.source`).
 */
export async function decodeImage(path: string, options: DecodeOptions): Promise<Float32Array> {
  validateDecodeOptions(options);
  const raw = toChannels(await readRawImage(path, options.source), options.channels);
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
}
