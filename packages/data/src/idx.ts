import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { PeftError } from '@peftjs/core';

/** Typed array of an IDX file's values, by its type code: uint8, int8, int16, int32, float32 or float64. */
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** A parsed IDX file: an n-dimensional array in row-major order. */
export interface IdxArray {
  /** Dimensions from the header, outermost first. */
  readonly dims: number[];
  /** The values (product of `dims` elements), converted from big-endian. */
  readonly data: IdxData;
}

/** In-memory images `[count, height, width]` (uint8, row-major) and their labels, as MNIST ships them. */
export interface IdxDataset {
  /** Number of images `N`. */
  readonly count: number;
  /** Image height `H` in pixels. */
  readonly height: number;
  /** Image width `W` in pixels. */
  readonly width: number;
  /** Grey pixels `[N, H, W]`, row-major, 0–255. */
  readonly images: Uint8Array;
  /** Class index of each image `[N]`. */
  readonly labels: Int32Array;
  /** The `numClasses` option, else the largest label + 1. */
  readonly numClasses: number;
  /** The files it came from (named in errors and in the dataset description). */
  readonly files: {
    /** Absolute path of the images file (for {@link parseIdxDataset}: the name it was given). */
    readonly images: string;
    /** Absolute path of the labels file (for {@link parseIdxDataset}: the name it was given). */
    readonly labels: string;
  };
}

const TYPES: Record<number, { name: string; bytes: number }> = {
  8: { name: 'uint8', bytes: 1 },
  9: { name: 'int8', bytes: 1 },
  11: { name: 'int16', bytes: 2 },
  12: { name: 'int32', bytes: 4 },
  13: { name: 'float32', bytes: 4 },
  14: { name: 'float64', bytes: 8 },
};

function idxError(file: string, message: string): never {
  throw new PeftError('IO_FAILED', `IDX file ${file}: ${message}`);
}

/** Parses IDX bytes (already gunzipped). Multi-byte values are big-endian in the file. */
export function parseIdx(bytes: Uint8Array, file = '<buffer>'): IdxArray {
  if (bytes.length < 4) idxError(file, `too short for a header (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(0) !== 0) {
    idxError(file, `bad magic number 0x${view.getUint32(0).toString(16).padStart(8, '0')}`);
  }
  const typeCode = view.getUint8(2);
  const type = TYPES[typeCode];
  if (!type) idxError(file, `unknown data type code 0x${typeCode.toString(16).padStart(2, '0')}`);
  const rank = view.getUint8(3);
  if (rank === 0) idxError(file, 'zero dimensions');
  const offset = 4 + 4 * rank;
  if (bytes.length < offset) idxError(file, `header announces ${rank} dimensions but the file ends early`);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  const expected = offset + count * type.bytes;
  if (bytes.length !== expected) {
    idxError(
      file,
      `dims [${dims.join(', ')}] of ${type.name} need ${expected} bytes but the file has ${bytes.length}`,
    );
  }
  return { dims, data: readValues(view, offset, count, typeCode) };
}

function readValues(view: DataView, offset: number, count: number, typeCode: number): IdxData {
  const at = view.byteOffset + offset;
  switch (typeCode) {
    case 0x08:
      return new Uint8Array(view.buffer, at, count);
    case 0x09:
      return new Int8Array(view.buffer, at, count);
    case 0x0b: {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(offset + 2 * i);
      return out;
    }
    case 0x0c: {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(offset + 4 * i);
      return out;
    }
    case 0x0d: {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i);
      return out;
    }
    default: {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(offset + 8 * i);
      return out;
    }
  }
}

/** IDX bytes as stored, gzipped or not (gzip is recognised by its magic bytes 1f 8b), parsed. */
function decodeIdx(bytes: Uint8Array, file: string): IdxArray {
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (error) {
      throw new PeftError('IO_FAILED', `IDX file ${file}: corrupt gzip data: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  return parseIdx(bytes, file);
}

/** Reads an IDX file (MNIST format), gzipped or not: gzip is recognised by its magic bytes 1f 8b. */
export async function readIdx(path: string): Promise<IdxArray> {
  const file = resolve(path);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new PeftError('IO_FAILED', `cannot read IDX file ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return decodeIdx(bytes, file);
}

/** Loads an images file `[N, H, W]` (uint8) and a labels file `[N]` (integers) into memory. */
export async function idxDataset(
  imagesPath: string,
  labelsPath: string,
  options: { numClasses?: number } = {},
): Promise<IdxDataset> {
  const imagesFile = resolve(imagesPath);
  const labelsFile = resolve(labelsPath);
  const [images, labels] = await Promise.all([readIdx(imagesFile), readIdx(labelsFile)]);
  return pairImagesWithLabels(images, labels, { images: imagesFile, labels: labelsFile }, options);
}

/**
 * {@link idxDataset} over bytes already in memory (fetched in a browser, bundled, read synchronously): an images
 * file and a labels file, each gzipped or not. `files` names them in errors and in the result (default
 * `<images>`/`<labels>`).
 */
export function parseIdxDataset(
  imagesBytes: Uint8Array,
  labelsBytes: Uint8Array,
  options: { numClasses?: number; files?: { images: string; labels: string } } = {},
): IdxDataset {
  const files = options.files ?? { images: '<images>', labels: '<labels>' };
  return pairImagesWithLabels(
    decodeIdx(imagesBytes, files.images),
    decodeIdx(labelsBytes, files.labels),
    files,
    options,
  );
}

function pairImagesWithLabels(
  images: IdxArray,
  labels: IdxArray,
  files: { images: string; labels: string },
  options: { numClasses?: number },
): IdxDataset {
  const { images: imagesFile, labels: labelsFile } = files;
  if (images.dims.length !== 3 || !(images.data instanceof Uint8Array)) {
    idxError(imagesFile, `expected uint8 images [N, H, W]; got dims [${images.dims.join(', ')}]`);
  }
  if (
    labels.dims.length !== 1 ||
    labels.data instanceof Float32Array ||
    labels.data instanceof Float64Array
  ) {
    idxError(labelsFile, `expected integer labels [N]; got dims [${labels.dims.join(', ')}]`);
  }
  const [count, height, width] = images.dims as [number, number, number];
  if (labels.dims[0] !== count) {
    throw new PeftError(
      'SHAPE_MISMATCH',
      `IDX labels file ${labelsFile} has ${labels.dims[0]} entries but images file ${imagesFile} has ${count} images`,
    );
  }
  const labelArray = Int32Array.from(labels.data);
  let maxLabel = -1;
  for (const label of labelArray) maxLabel = Math.max(maxLabel, label);
  return {
    count,
    height,
    width,
    images: images.data,
    labels: labelArray,
    numClasses: options.numClasses ?? maxLabel + 1,
    files: { images: imagesFile, labels: labelsFile },
  };
}
