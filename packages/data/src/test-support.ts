/** Tiny on-disk fixtures for this package's tests, written with sharp into a temporary folder. */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { Rng } from '@peftjs/core';
import { zipSync } from 'fflate';
import sharp from 'sharp';
import { crc32 } from './gzip.js';

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

// ---- Hostile files: small on disk, huge when decoded naively. Built here, never committed. ----

function pngChunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(8 + data.length + 4);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(0, body), 8 + data.length);
  return out;
}

/** A valid 8-bit greyscale PNG of `width`×`height` black pixels: a few hundred KB for 10⁸ pixels. */
export function blackPng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // depth 8, greyscale, deflate, adaptive filters, no interlace
  // Every scanline is a filter byte 0 and `width` zero pixels; Buffer.alloc's zero pages cost no memory to read.
  const idat = deflateSync(Buffer.alloc(height * (width + 1)), { level: 9 });
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([
    signature,
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', idat),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

/** An SVG document of the given size (what a `.png` name may hide). */
export function svgOfSize(width: number, height: number): Buffer {
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"/>`);
}

/**
 * Headers and palette of an uncompressed 1-bit BMP of `width`×`height`; the pixel rows (`rowBytes · height`
 * zero bytes) must follow: write the header, then extend the file (sparse) to `fileBytes`.
 */
export function oneBitBmpHeader(width: number, height: number): { header: Buffer; fileBytes: number } {
  const rowBytes = Math.ceil(width / 32) * 4;
  const dataOffset = 54 + 8; // two palette colours
  const header = Buffer.alloc(dataOffset);
  header.write('BM', 0, 'latin1');
  header.writeUInt32LE(dataOffset + rowBytes * height, 2);
  header.writeUInt32LE(dataOffset, 10);
  header.writeUInt32LE(40, 14);
  header.writeInt32LE(width, 18);
  header.writeInt32LE(height, 22);
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(1, 28);
  header.writeUInt32LE(2, 46);
  header.set([0, 0, 0, 0, 255, 255, 255, 0], 54);
  return { header, fileBytes: dataOffset + rowBytes * height };
}

/** Writes `header` and extends the file with zeros to `size` bytes (sparse: no disk used). */
export async function writeSparse(path: string, header: Uint8Array, size: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, header);
  await truncate(path, size);
}

/** An IDX header (uint8) declaring `dims`. */
export function idxHeader(dims: readonly number[]): Buffer {
  const out = Buffer.alloc(4 + 4 * dims.length);
  out.writeUInt8(0x08, 2);
  out.writeUInt8(dims.length, 3);
  for (const [i, d] of dims.entries()) out.writeUInt32BE(d, 4 + 4 * i);
  return out;
}

/**
 * A gzip file decompressing to `header` followed by `members × memberBytes` zero bytes, as concatenated gzip
 * members (which every gunzip decodes as one stream): about 8 KB per 8 MiB of output.
 */
export function gzipZeros(header: Uint8Array, memberBytes: number, members: number): Buffer {
  const zeros = gzipSync(Buffer.alloc(memberBytes), { level: 9 });
  return Buffer.concat([gzipSync(header), ...Array.from({ length: members }, () => zeros)]);
}

/** A `.npy` file (version 1) of `count` float32 zeros, shape `(count,)`. */
export function zerosNpy(count: number): Uint8Array {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${count},), }`;
  const header = dict + ' '.repeat(63 - ((10 + dict.length) % 64)) + '\n';
  const out = new Uint8Array(10 + header.length + 4 * count);
  out.set([0x93, ...Buffer.from('NUMPY', 'latin1'), 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  return out;
}

/**
 * An `.npz` whose `entries` central-directory records all point at one deflated array of `arrayBytes` bytes:
 * small on disk, `entries × arrayBytes` when every entry is inflated.
 */
export function overlappingNpz(entries: number, arrayBytes: number): Buffer {
  const name = (i: number) => `w${String(i).padStart(5, '0')}.npy`;
  const single = Buffer.from(zipSync({ [name(0)]: [zerosNpy(arrayBytes / 4), { level: 9 }] }));
  const eocd = single.length - 22;
  const cdSize = single.readUInt32LE(eocd + 12);
  const cdOffset = single.readUInt32LE(eocd + 16);
  const record = single.subarray(cdOffset, cdOffset + cdSize);
  const records = Array.from({ length: entries }, (_, i) => {
    const copy = Buffer.from(record);
    copy.write(name(i), 46, 'latin1');
    return copy;
  });
  const end = Buffer.from(single.subarray(eocd));
  end.writeUInt16LE(entries, 8);
  end.writeUInt16LE(entries, 10);
  end.writeUInt32LE(cdSize * entries, 12);
  return Buffer.concat([single.subarray(0, cdOffset), ...records, end]);
}

/** Creates a FIFO (named pipe) at `path` with the system's `mkfifo`. */
export function makeFifo(path: string): void {
  const result = spawnSync('mkfifo', [path]);
  if (result.status !== 0) throw new Error(`mkfifo ${path} failed: ${result.stderr.toString()}`);
}
