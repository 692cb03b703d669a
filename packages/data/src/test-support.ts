/** Tiny on-disk fixtures for this package's tests, written with sharp into a temporary folder. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Rng } from '@peftjs/core';
import sharp from 'sharp';

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'peftjs-data-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

type Rgb = { r: number; g: number; b: number };

export async function writeSolidPng(path: string, size: number, colour: Rgb, alpha?: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const channels = alpha === undefined ? 3 : 4;
  const background = alpha === undefined ? colour : { ...colour, alpha };
  await sharp({ create: { width: size, height: size, channels, background } })
    .png()
    .toFile(path);
}

/** A true one-band PNG (without `b-w`, libvips would write it back out as RGB). */
export async function writeGreyPng(
  path: string,
  width: number,
  height: number,
  value: number,
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await sharp(new Uint8Array(width * height).fill(value), { raw: { width, height, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toFile(path);
}

/** Left-to-right ramp 0 → 255 in every channel. */
export async function writeGradientPng(path: string, width: number, height: number): Promise<void> {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = Math.round((255 * x) / (width - 1));
      data.fill(v, 3 * (y * width + x), 3 * (y * width + x) + 3);
    }
  }
  await mkdir(dirname(path), { recursive: true });
  await sharp(data, { raw: { width, height, channels: 3 } })
    .png()
    .toFile(path);
}

export async function writeRandomBytes(path: string, length: number, seed = 'corrupt'): Promise<void> {
  const rng = new Rng(seed);
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = rng.nextUint32() & 0xff;
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
}

export const RED = { r: 255, g: 0, b: 0 };
export const GREEN = { r: 0, g: 255, b: 0 };
export const BLUE = { r: 0, g: 0, b: 255 };

/**
 * A VTAB-style task `<root>/<task>/` with ten solid-colour 8×8 PNGs (labels 0–9 cycling colours) and the four
 * list files: train800 = images 0–5, val200 = 6–7, train800val200 = 0–7, test = 8–9.
 */
export async function writeVtabTask(root: string, task: string): Promise<string[]> {
  const taskDir = join(root, task);
  const colours = [RED, GREEN, BLUE];
  const names: string[] = [];
  for (let i = 0; i < 10; i++) {
    const name = `images/img${i}.png`;
    await writeSolidPng(join(taskDir, name), 8, colours[i % 3] as Rgb);
    names.push(name);
  }
  const list = (ids: number[]) => `${ids.map((i) => `${names[i]} ${i}`).join('\n')}\n`;
  await writeFile(join(taskDir, 'train800.txt'), list([0, 1, 2, 3, 4, 5]));
  await writeFile(join(taskDir, 'val200.txt'), list([6, 7]));
  await writeFile(join(taskDir, 'train800val200.txt'), list([0, 1, 2, 3, 4, 5, 6, 7]));
  await writeFile(join(taskDir, 'test.txt'), list([8, 9]));
  return names;
}
