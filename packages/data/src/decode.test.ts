import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PeftError } from '@peftjs/core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBmp } from './bmp.js';
import { decodeImage, readRawImage } from './decode.js';
import type { InputLimits } from './limits.js';
import { NORMALIZATION_PRESETS, normalize } from './normalize.js';
import {
  RED,
  makeFifo,
  oneBitBmpHeader,
  svgOfSize,
  tempDir,
  writeSparse,
  writeGradientPng,
  writeGreyPng,
  writeRandomBytes,
  writeSolidPng,
} from './test-support.js';

let dir: string;
let cleanup: () => Promise<void>;
const file = (name: string) => join(dir, name);

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  await writeSolidPng(file('red.png'), 8, RED);
  await writeSolidPng(file('rgba.png'), 8, { r: 10, g: 200, b: 30 }, 0.25);
  await writeSolidPng(file('dot.png'), 1, { r: 0, g: 128, b: 255 });
  await writeGreyPng(file('grey.png'), 6, 4, 100);
  await writeGradientPng(file('gradient.png'), 32, 4);
  await writeRandomBytes(file('corrupt.png'), 500);
  await sharp({ create: { width: 5, height: 3, channels: 3, background: RED } })
    .jpeg({ quality: 100 })
    .toFile(file('red.jpg'));
});
afterAll(() => cleanup());

/** Channel `c` of every pixel. */
const channel = (pixels: Float32Array, c: number, channels = 3) =>
  pixels.filter((_, i) => i % channels === c);

describe('decodeImage', () => {
  it('gives HWC float32 in [0, 1] at the requested size', async () => {
    const px = await decodeImage(file('red.png'), { size: [4, 6], channels: 3 });
    expect(px).toBeInstanceOf(Float32Array);
    expect(px.length).toBe(4 * 6 * 3);
    expect(new Set(channel(px, 0))).toEqual(new Set([1]));
    expect(new Set([...channel(px, 1), ...channel(px, 2)])).toEqual(new Set([0]));
  });

  it('normalises solid red to 1 in channel 0 and −1 elsewhere under inception', async () => {
    const px = normalize(await decodeImage(file('red.png'), { size: [3, 3], channels: 3 }), 'inception', 3);
    expect([...px.subarray(0, 6)]).toEqual([1, -1, -1, 1, -1, -1]);
  });

  it('applies imagenet mean/std per channel', () => {
    const px = normalize(Float32Array.from([1, 1, 1, 0, 0, 0]), 'imagenet', 3);
    const { mean, std } = NORMALIZATION_PRESETS.imagenet;
    expect(px[0]).toBeCloseTo((1 - mean[0]) / std[0], 6);
    expect(px[5]).toBeCloseTo(-mean[2] / std[2], 6);
  });

  it('turns greyscale into three equal channels, or keeps one', async () => {
    const rgb = await decodeImage(file('grey.png'), { size: [2, 3], channels: 3 });
    expect(new Set(rgb)).toEqual(new Set([Math.fround(100 / 255)]));
    expect(rgb.length).toBe(18);
    const one = await decodeImage(file('grey.png'), { size: [4, 6], channels: 1 });
    expect(one.length).toBe(24);
    expect(new Set(one)).toEqual(new Set([Math.fround(100 / 255)]));
  });

  it('drops alpha without blending it into the colour', async () => {
    const px = await decodeImage(file('rgba.png'), { size: [8, 8], channels: 3 });
    expect(px.length).toBe(8 * 8 * 3);
    expect([...px.subarray(0, 3)].map((v) => Math.round(v * 255))).toEqual([10, 200, 30]);
  });

  it('converts colour to one channel with PIL luma weights', async () => {
    const px = await decodeImage(file('red.png'), { size: [2, 2], channels: 1 });
    expect(px.length).toBe(4);
    expect(Math.round((px[0] as number) * 255)).toBe(76); // PIL convert('L') of pure red
  });

  it('upscales a 1×1 image to a constant field', async () => {
    const px = await decodeImage(file('dot.png'), { size: [5, 7], channels: 3 });
    expect(px.length).toBe(5 * 7 * 3);
    expect(new Set(channel(px, 1).map((v) => Math.round(v * 255)))).toEqual(new Set([128]));
  });

  it('decodes JPEG', async () => {
    const px = await decodeImage(file('red.jpg'), { size: [3, 5], channels: 3 });
    expect(Math.round((px[0] as number) * 255)).toBeGreaterThan(240);
  });

  it('keeps a horizontal gradient monotone under bicubic down- and upscaling', async () => {
    for (const size of [
      [2, 9],
      [4, 57],
    ] as const) {
      const px = await decodeImage(file('gradient.png'), { size, channels: 1 });
      const row = [...px.subarray(0, size[1])];
      for (let x = 1; x < row.length; x++) expect(row[x]).toBeGreaterThanOrEqual(row[x - 1] as number);
      expect(row[0]).toBeLessThan(0.1);
      expect(row[row.length - 1]).toBeGreaterThan(0.9);
    }
  });

  it('decodes uncompressed 24-bit BMP (bottom-up, padded rows)', async () => {
    // 3×2 pixels: top row red, green, blue; bottom row white, black, grey. Rows padded to 12 bytes.
    const header = Buffer.alloc(54);
    header.write('BM', 0, 'latin1');
    header.writeUInt32LE(54 + 24, 2);
    header.writeUInt32LE(54, 10);
    header.writeUInt32LE(40, 14);
    header.writeInt32LE(3, 18);
    header.writeInt32LE(2, 22);
    header.writeUInt16LE(1, 26);
    header.writeUInt16LE(24, 28);
    const bottom = [255, 255, 255, 0, 0, 0, 128, 128, 128, 0, 0, 0];
    const top = [0, 0, 255, 0, 255, 0, 255, 0, 0, 0, 0, 0]; // BGR
    await writeFile(file('tiny.bmp'), Buffer.concat([header, Buffer.from([...bottom, ...top])]));
    const px = await decodeImage(file('tiny.bmp'), { size: [2, 3], channels: 3 });
    expect([...px].map((v) => Math.round(v * 255))).toEqual([
      255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 128, 128, 128,
    ]);
  });

  it('names a corrupt or missing file, and the list line when known', async () => {
    const source = { file: join(dir, 'train800.txt'), line: 3 };
    const error = await decodeImage(file('corrupt.png'), { size: [2, 2], channels: 3, source }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PeftError);
    expect((error as PeftError).code).toBe('IO_FAILED');
    expect((error as PeftError).message).toBe(
      `cannot decode image ${file('corrupt.png')} (listed at ${source.file}:3): not a PNG, JPEG, GIF, WebP, TIFF or BMP file: it starts with cd e0 47 d8 76 62 8b 06`,
    );
    await expect(decodeImage(file('nope.png'), { size: [2, 2], channels: 3 })).rejects.toThrow(
      `cannot read image ${file('nope.png')}: not found`,
    );
  });

  it('validates its options', async () => {
    await expect(decodeImage(file('red.png'), { size: [0, 2], channels: 3 })).rejects.toThrow(
      /option "size"/,
    );
    const channels = 2 as 1 | 3;
    await expect(decodeImage(file('red.png'), { size: [2, 2], channels })).rejects.toThrow(
      /option "channels"/,
    );
  });
});

describe('decodeImage: hostile and oversized inputs', () => {
  const decode = (path: string, limits?: Partial<InputLimits>) =>
    decodeImage(path, { size: [2, 2], channels: 3, ...(limits ? { limits } : {}) });

  it('decodes raster formats by their first bytes only: an SVG named .png is refused', async () => {
    await writeFile(file('vector.png'), svgOfSize(30_000, 30_000));
    await expect(decode(file('vector.png'))).rejects.toThrow(
      `cannot decode image ${file('vector.png')}: not a PNG, JPEG, GIF, WebP, TIFF or BMP file: it starts with ` +
        '3c 73 76 67 20 78 6d 6c (it looks like SVG, which is not decoded)',
    );
    await writeFile(file('page.png'), '<?xml version="1.0"?><html/>');
    await expect(decode(file('page.png'))).rejects.toThrow('(it looks like XML or HTML)');
    await writeFile(file('jpeg-named.png'), await readFile(file('red.jpg')));
    expect(await decode(file('jpeg-named.png'))).toHaveLength(12); // the name does not matter, the bytes do
  });

  it('refuses an image over maxImagePixels from its header, naming the option that raises it', async () => {
    await expect(decode(file('gradient.png'), { maxImagePixels: 100 })).rejects.toThrow(
      `cannot decode image ${file('gradient.png')}: 32×4 = 128 pixels, over the limit of 100; ` +
        'raise option "maxImagePixels" (peft: --data.maxImagePixels) if the image is genuine',
    );
    expect(await decode(file('gradient.png'), { maxImagePixels: 128 })).toHaveLength(12);
    await expect(readRawImage(file('gradient.png'), undefined, { maxImagePixels: 0 })).rejects.toThrow(
      'option "maxImagePixels" must be a positive integer; got 0',
    );
  });

  it('refuses a 1-bit BMP over the pixel limit before allocating its output, and decodes one within it', async () => {
    const { header, fileBytes } = oneBitBmpHeader(64, 4);
    await writeSparse(file('onebit.bmp'), header, fileBytes);
    await expect(decode(file('onebit.bmp'), { maxImagePixels: 255 })).rejects.toThrow(
      `cannot decode image ${file('onebit.bmp')}: 64×4 = 256 pixels, over the limit of 255`,
    );
    expect(() => decodeBmp(readFileSync(file('onebit.bmp')), 255)).toThrow(
      'BMP of 64×4 pixels is over the limit of 255 pixels',
    );
    const raw = await readRawImage(file('onebit.bmp'));
    expect([raw.width, raw.height, raw.channels]).toEqual([64, 4, 3]);
    expect(raw.data.every((v) => v === 0)).toBe(true); // palette colour 0 is black
  });

  it('reads only regular files within maxFileBytes: no device, FIFO or folder', async () => {
    await expect(decode('/dev/zero')).rejects.toThrow(
      'cannot read image /dev/zero: a character device, not a regular file; only regular files are read',
    );
    makeFifo(file('pipe.png'));
    await expect(decode(file('pipe.png'))).rejects.toThrow(
      `cannot read image ${file('pipe.png')}: a FIFO (named pipe), not a regular file; only regular files are read`,
    );
    await expect(decode(dir)).rejects.toThrow(`cannot read image ${dir}: a directory, not a regular file`);
    const size = (await readFile(file('red.png'))).length;
    await expect(decode(file('red.png'), { maxFileBytes: size - 1 })).rejects.toThrow(
      `cannot read image ${file('red.png')}: ${size} bytes, over the limit of ${size - 1} bytes; ` +
        'raise option "maxFileBytes" (peft: --data.maxFileMb) if the file is genuine',
    );
  });
});

describe('decodeImage: every allowed raster format', () => {
  it('decodes PNG, JPEG, WebP, GIF and TIFF written by sharp, each by its magic bytes', async () => {
    const base = sharp({ create: { width: 4, height: 2, channels: 3, background: RED } });
    const encoded = {
      png: await base.clone().png().toBuffer(),
      jpeg: await base.clone().jpeg({ quality: 100 }).toBuffer(),
      webp: await base.clone().webp({ lossless: true }).toBuffer(),
      gif: await base.clone().gif().toBuffer(),
      tiff: await base.clone().tiff().toBuffer(),
    };
    for (const [format, bytes] of Object.entries(encoded)) {
      await writeFile(file(`any-name.${format}.bin`), bytes);
      const raw = await readRawImage(file(`any-name.${format}.bin`));
      expect([raw.width, raw.height], format).toEqual([4, 2]);
      expect(raw.data[0], format).toBeGreaterThan(240); // red
    }
  });
});
