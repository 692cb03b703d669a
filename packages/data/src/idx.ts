import { resolve } from 'node:path';
import { PeftError, invalidOption } from '@peftjs/core';
import { inferClassCount } from './classes.js';
import { readInputFile } from './files.js';
import { gunzipDeclared, isGzip } from './gzip.js';
import { type InputLimits, grouped, howToRaise, resolveLimits } from './limits.js';

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
  /** The `numClasses` option, else the largest label + 1 (checked: see `inferClassCount`). */
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

/** An IDX header: element type, dimensions and where the values start. */
interface IdxHeader {
  readonly typeCode: number;
  readonly type: { name: string; bytes: number };
  readonly dims: number[];
  /** Byte offset of the first value. */
  readonly offset: number;
  /** Number of values (product of `dims`). */
  readonly count: number;
  /** Header plus values, in bytes: what the file must hold. */
  readonly totalBytes: number;
}

/** The header of `bytes` (the start of an IDX file), or `null` when `bytes` ends before the header does. */
function readIdxHeader(bytes: Uint8Array, file: string): IdxHeader | null {
  if (bytes.length < 4) return null;
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
  if (bytes.length < offset) return null;
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i));
  // Doubles: a product past 2^53 is imprecise but still far over any limit, which is all that matters then.
  const count = dims.reduce((a, b) => a * b, 1);
  return { typeCode, type, dims, offset, count, totalBytes: offset + count * type.bytes };
}

function checkDeclaredSize(header: IdxHeader, file: string, maxBytes: number): void {
  if (header.totalBytes > maxBytes) {
    idxError(
      file,
      `dims [${header.dims.join(', ')}] of ${header.type.name} declare ${grouped(header.totalBytes)} bytes, ` +
        `over the limit of ${grouped(maxBytes)}; ${howToRaise('maxIdxBytes')} if the file is genuine`,
    );
  }
}

/** Parses IDX bytes (already gunzipped). Multi-byte values are big-endian in the file. */
export function parseIdx(bytes: Uint8Array, file = '<buffer>'): IdxArray {
  if (bytes.length < 4) idxError(file, `too short for a header (${bytes.length} bytes)`);
  const header = readIdxHeader(bytes, file);
  if (header === null) {
    idxError(file, `header announces ${bytes[3]} dimensions but the file ends early`);
  }
  const { dims, type, offset, count, totalBytes, typeCode } = header;
  if (bytes.length !== totalBytes) {
    idxError(
      file,
      `dims [${dims.join(', ')}] of ${type.name} need ${totalBytes} bytes but the file has ${bytes.length}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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

/**
 * IDX bytes as stored, gzipped or not (gzip is recognised by its magic bytes 1f 8b), parsed. Gzipped data is
 * inflated only up to the size its IDX header declares, which must be within `maxBytes`; plain data must be too.
 */
function decodeIdx(bytes: Uint8Array, file: string, maxBytes: number): IdxArray {
  if (isGzip(bytes)) {
    try {
      bytes = gunzipDeclared(bytes, (head) => {
        const header = readIdxHeader(head, file);
        if (header !== null) checkDeclaredSize(header, file, maxBytes);
        return header?.totalBytes ?? null;
      });
    } catch (error) {
      if (error instanceof PeftError) throw error;
      throw new PeftError('IO_FAILED', `IDX file ${file}: corrupt gzip data: ${(error as Error).message}`, {
        cause: error,
      });
    }
  } else {
    const header = readIdxHeader(bytes, file);
    if (header !== null) checkDeclaredSize(header, file, maxBytes);
  }
  return parseIdx(bytes, file);
}

/** Options of `readIdx`. */
export interface ReadIdxOptions {
  /** Size limits (default `DEFAULT_INPUT_LIMITS`): `maxIdxBytes` applies, to the file and to its content. */
  readonly limits?: Partial<InputLimits>;
}

/**
 * Reads an IDX file (MNIST format), gzipped or not: gzip is recognised by its magic bytes 1f 8b. Only a regular
 * file is read; its size, and the size its header declares, must be within `limits.maxIdxBytes`.
 */
export async function readIdx(path: string, options: ReadIdxOptions = {}): Promise<IdxArray> {
  const file = resolve(path);
  const { maxIdxBytes } = resolveLimits(options.limits);
  const bytes = await readInputFile(file, 'IDX file', maxIdxBytes, 'maxIdxBytes');
  return decodeIdx(bytes, file, maxIdxBytes);
}

/** Options of `idxDataset` and `parseIdxDataset`. */
export interface IdxDatasetOptions extends ReadIdxOptions {
  /** Class count (a positive integer); default: inferred from the labels (see `inferClassCount`). */
  readonly numClasses?: number;
}

/** Loads an images file `[N, H, W]` (uint8) and a labels file `[N]` (integers) into memory. */
export async function idxDataset(
  imagesPath: string,
  labelsPath: string,
  options: IdxDatasetOptions = {},
): Promise<IdxDataset> {
  const imagesFile = resolve(imagesPath);
  const labelsFile = resolve(labelsPath);
  // One after the other: peak memory is one file's bytes plus what is kept, not both files' at once.
  const images = await readIdx(imagesFile, options);
  const labels = await readIdx(labelsFile, options);
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
  options: IdxDatasetOptions & { files?: { images: string; labels: string } } = {},
): IdxDataset {
  const files = options.files ?? { images: '<images>', labels: '<labels>' };
  const { maxIdxBytes } = resolveLimits(options.limits);
  return pairImagesWithLabels(
    decodeIdx(imagesBytes, files.images, maxIdxBytes),
    decodeIdx(labelsBytes, files.labels, maxIdxBytes),
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
  if (count === 0) {
    throw new PeftError(
      'INVALID_CONFIG',
      `IDX images file ${imagesFile} holds no images (dims [${images.dims.join(', ')}]); a split needs at least one`,
    );
  }
  if (height === 0 || width === 0) {
    idxError(
      imagesFile,
      `images of ${height}×${width} pixels (dims [${images.dims.join(', ')}]); both must be positive`,
    );
  }
  if (labels.dims[0] !== count) {
    throw new PeftError(
      'SHAPE_MISMATCH',
      `IDX labels file ${labelsFile} has ${labels.dims[0]} entries but images file ${imagesFile} has ${count} images`,
    );
  }
  const labelArray = Int32Array.from(labels.data);
  if (options.numClasses !== undefined && !(Number.isInteger(options.numClasses) && options.numClasses > 0)) {
    invalidOption('numClasses', options.numClasses, 'a positive integer');
  }
  const numClasses =
    options.numClasses ?? inferClassCount(labelArray, (i) => `index ${i}`, `IDX labels file ${labelsFile}`);
  return {
    count,
    height,
    width,
    images: images.data,
    labels: labelArray,
    numClasses,
    files: { images: imagesFile, labels: labelsFile },
  };
}
