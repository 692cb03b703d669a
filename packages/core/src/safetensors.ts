import { writeFileAtomic } from './atomic-write.js';
import { invalidOption, PeftError, requirePositiveInt } from './errors.js';

/** A host-side float32 tensor in row-major (C) order. */
export interface HostTensor {
  /** Dimensions, outermost first. */
  shape: number[];
  /** The values in row-major order (`shape` product elements). */
  data: Float32Array;
}

/** Every dtype the safetensors format defines (`safetensors/src/tensor.rs` `enum Dtype`). */
export type SafetensorsDtype =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'F8_E5M2'
  | 'F8_E4M3'
  | 'F8_E8M0'
  | 'F8_E4M3FNUZ'
  | 'F8_E5M2FNUZ'
  | 'I16'
  | 'U16'
  | 'F16'
  | 'BF16'
  | 'I32'
  | 'U32'
  | 'F32'
  | 'I64'
  | 'U64'
  | 'F64'
  | 'C64'
  | 'F4'
  | 'F6_E2M3'
  | 'F6_E3M2';

const DTYPE_BITS: Readonly<Record<SafetensorsDtype, number>> = {
  BOOL: 8,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  I64: 64,
  U64: 64,
  F64: 64,
  C64: 64,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
};

/** `MAX_HEADER_SIZE` of the reference implementation. */
export const DEFAULT_MAX_HEADER_BYTES = 100_000_000;

/** Header information of one tensor in a parsed safetensors file. */
export interface SafetensorsEntry {
  /** Element type as stored. */
  dtype: SafetensorsDtype;
  /** Dimensions, outermost first (a copy: changing it does not affect the file). */
  shape: number[];
  /** Absolute offset of the tensor's first byte in the parsed buffer. */
  byteOffset: number;
  /** Size of the tensor's data in bytes. */
  byteLength: number;
}

/**
 * A parsed, fully validated safetensors buffer (`parseSafetensors`, `readSafetensors`). Tensor data is read
 * lazily. Every method taking a name throws `SAFETENSORS_INVALID` for a name the file lacks.
 */
export interface SafetensorsFile {
  /** The file path, or `'buffer'`; every error message starts with it. */
  readonly source: string;
  /** The header's `__metadata__` string map (`{}` when absent). */
  readonly metadata: Record<string, string>;
  /** Tensor names, sorted (header order carries no meaning). */
  names(): string[];
  /** Whether the file holds a tensor named `name`. */
  has(name: string): boolean;
  /** The header entry of tensor `name` (dtype, shape, byte range). */
  entry(name: string): SafetensorsEntry;
  /** The tensor as float32: a zero-copy view for aligned F32 data, otherwise a converted copy. */
  getFloat32(name: string): Float32Array;
  /** The tensor's shape and its values as float32 (as `getFloat32`). */
  getHost(name: string): HostTensor;
  /** The tensor's raw little-endian bytes, as a view into the parsed buffer. */
  getRaw(name: string): Uint8Array;
}

/** Options of `parseSafetensors` (and, without `source`, of `readSafetensors`). */
export interface ParseSafetensorsOptions {
  /** Names the input in error messages; defaults to `'buffer'`. */
  source?: string;
  /** Largest accepted header, in bytes; defaults to 100,000,000. */
  maxHeaderBytes?: number;
}

// Shared scratch space for the bit-level float conversions.
const scratch = new DataView(new ArrayBuffer(4));

/** IEEE binary16 bits → the (exactly representable) float32 value; subnormals, ±inf and NaN included. */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1024 + fraction) * 2 ** (exponent - 25);
}

/** float32 value → IEEE binary16 bits, rounding to nearest even; overflow goes to ±inf, NaN stays NaN. */
export function float32ToFloat16Bits(value: number): number {
  scratch.setFloat32(0, value);
  const x = scratch.getUint32(0);
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa === 0 ? 0 : 0x200);
  const halfExponent = exponent - 112;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Below 2^-25 everything rounds to zero (2^-25 itself is a tie that rounds to the even 0).
    if (halfExponent < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    let quotient = full >>> shift;
    const remainder = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && (quotient & 1) === 1)) quotient += 1;
    return sign | quotient;
  }
  // A carry out of the mantissa correctly bumps the exponent, up to and including infinity.
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1) === 1)) half += 1;
  return sign | half;
}

/** bfloat16 bits → float32 value (exact: bfloat16 is the top half of a float32). */
export function bfloat16BitsToFloat32(bits: number): number {
  scratch.setUint32(0, (bits & 0xffff) << 16);
  return scratch.getFloat32(0);
}

/** float32 value → bfloat16 bits, rounding to nearest even; NaN stays a (quiet) NaN. */
export function float32ToBfloat16Bits(value: number): number {
  scratch.setFloat32(0, value);
  const x = scratch.getUint32(0);
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return (x >>> 16) | 0x40;
  return (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

function fail(source: string, message: string, tensor?: string): never {
  const where = tensor === undefined ? source : `${source}: tensor ${JSON.stringify(tensor)}`;
  throw new PeftError('SAFETENSORS_INVALID', `${where}: ${message}`);
}

/** Shapes come from untrusted headers; keep messages short even for absurd ranks. */
function formatShape(shape: readonly unknown[]): string {
  const shown = shape.slice(0, 8).map((d) => JSON.stringify(d));
  return `[${shown.join(', ')}${shape.length > 8 ? `, … (${shape.length} dims)` : ''}]`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `JSON.parse` silently keeps the last of duplicate keys, so the (already known valid) JSON text is scanned once
 * more for keys repeated within one object. Returns the duplicate and the top-level key it sits under, if any.
 */
function findDuplicateKey(text: string): { key: string; parent: string | undefined } | undefined {
  interface Frame {
    keys: Set<string> | undefined; // undefined for arrays
    lastKey: string | undefined;
  }
  const stack: Frame[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      const frame = stack[stack.length - 1];
      if (expectKey && frame?.keys !== undefined) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (frame.keys.has(key)) return { key, parent: stack.length > 1 ? stack[0]?.lastKey : undefined };
        frame.keys.add(key);
        frame.lastKey = key;
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b) {
      stack.push({ keys: new Set(), lastKey: undefined });
      expectKey = true;
    } else if (c === 0x5b) {
      stack.push({ keys: undefined, lastKey: undefined });
      expectKey = false;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = stack[stack.length - 1]?.keys !== undefined;
    }
  }
  return undefined;
}

interface ParsedEntry extends SafetensorsEntry {
  name: string;
  begin: number;
  end: number;
}

function validateEntry(
  source: string,
  name: string,
  value: unknown,
  dataLength: number,
  dataStart: number,
): ParsedEntry {
  if (!isPlainObject(value)) fail(source, 'header entry must be an object', name);
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BITS, dtype)) {
    fail(source, `unknown dtype ${JSON.stringify(dtype)}`, name);
  }
  const bits = DTYPE_BITS[dtype as SafetensorsDtype];
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    const shown = Array.isArray(shape) ? formatShape(shape) : JSON.stringify(shape);
    fail(source, `shape must be an array of non-negative integers; got ${shown}`, name);
  }
  const dims = shape as number[];
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
  ) {
    fail(
      source,
      `data_offsets must be two non-negative integers [begin, end]; got ${JSON.stringify(offsets)}`,
      name,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail(source, `data_offsets [${begin}, ${end}] end before they begin`, name);
  if (end > dataLength) {
    fail(
      source,
      `data_offsets [${begin}, ${end}] extend past the ${dataLength}-byte data buffer (file truncated?)`,
      name,
    );
  }
  // Exact BigInt arithmetic, bailing out as soon as the size exceeds what the buffer can hold, so a hostile shape
  // can neither overflow nor make the product itself expensive.
  const maxBits = BigInt(dataLength) * 8n;
  let totalBits = 0n;
  if (!dims.includes(0)) {
    totalBits = BigInt(bits);
    for (const d of dims) {
      totalBits *= BigInt(d);
      if (totalBits > maxBits) {
        fail(
          source,
          `shape ${formatShape(dims)} with dtype ${dtype} needs more than the ${dataLength} bytes of data in the file`,
          name,
        );
      }
    }
  }
  if (totalBits % 8n !== 0n) {
    fail(
      source,
      `shape ${formatShape(dims)} with dtype ${dtype} does not fill a whole number of bytes`,
      name,
    );
  }
  const byteLength = Number(totalBits / 8n);
  if (end - begin !== byteLength) {
    fail(
      source,
      `data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape ${formatShape(dims)} with dtype ${dtype} needs ${byteLength}`,
      name,
    );
  }
  return {
    name,
    dtype: dtype as SafetensorsDtype,
    shape: dims,
    begin,
    end,
    byteOffset: dataStart + begin,
    byteLength,
  };
}

/** Parses and fully validates a safetensors buffer; tensor data is read lazily and never copied up front. */
export function parseSafetensors(bytes: Uint8Array, options: ParseSafetensorsOptions = {}): SafetensorsFile {
  const source = options.source ?? 'buffer';
  const maxHeaderBytes =
    options.maxHeaderBytes === undefined
      ? DEFAULT_MAX_HEADER_BYTES
      : requirePositiveInt('maxHeaderBytes', options.maxHeaderBytes);
  if (bytes.length < 8) {
    fail(source, `file is ${bytes.length} bytes, too short for the 8-byte header length (truncated?)`);
  }
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(maxHeaderBytes)) {
    fail(source, `header length ${headerLength} exceeds the limit of ${maxHeaderBytes} bytes`);
  }
  if (8n + headerLength > BigInt(bytes.length)) {
    fail(
      source,
      `header length ${headerLength} runs past the end of the ${bytes.length}-byte file (truncated?)`,
    );
  }
  const n = Number(headerLength);
  if (n === 0 || bytes[8] !== 0x7b) fail(source, "header must start with '{'");
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    fail(source, 'header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    fail(source, `header is not valid JSON: ${(error as Error).message}`);
  }
  if (!isPlainObject(header)) fail(source, 'header must be a JSON object');
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) {
    const { key, parent } = duplicate;
    if (parent === undefined && key === '__metadata__') fail(source, 'duplicate __metadata__ in header');
    if (parent === undefined) fail(source, 'duplicate key in header', key);
    if (parent === '__metadata__') fail(source, `duplicate key ${JSON.stringify(key)} in __metadata__`);
    fail(source, `duplicate key ${JSON.stringify(key)} in header entry`, parent);
  }

  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries = new Map<string, ParsedEntry>();
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isPlainObject(value)) fail(source, '__metadata__ must be an object of strings');
      for (const [key, item] of Object.entries(value)) {
        if (typeof item !== 'string') {
          fail(source, `__metadata__ value for ${JSON.stringify(key)} must be a string; got ${typeof item}`);
        }
        // defineProperty keeps a "__proto__" key an ordinary entry.
        Object.defineProperty(metadata, key, {
          value: item,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      continue;
    }
    entries.set(name, validateEntry(source, name, value, dataLength, dataStart));
  }

  // Contiguity from 0 with no holes or overlaps rules out polyglot files and hidden payloads.
  const ordered = [...entries.values()].sort(
    (a, b) => a.begin - b.begin || a.end - b.end || (a.name < b.name ? -1 : 1),
  );
  let expected = 0;
  let previous: ParsedEntry | undefined;
  for (const entry of ordered) {
    if (entry.begin > expected) {
      fail(
        source,
        `hole of ${entry.begin - expected} bytes before its data (offset ${expected})`,
        entry.name,
      );
    }
    if (entry.begin < expected) {
      fail(
        source,
        `data_offsets [${entry.begin}, ${entry.end}] overlap tensor ${JSON.stringify(previous?.name)}`,
        entry.name,
      );
    }
    expected = entry.end;
    previous = entry;
  }
  if (expected !== dataLength) {
    fail(source, `${dataLength - expected} trailing bytes after the last tensor's data`);
  }
  return new ParsedSafetensors(source, bytes, metadata, entries);
}

class ParsedSafetensors implements SafetensorsFile {
  readonly source: string;
  readonly metadata: Record<string, string>;
  readonly #bytes: Uint8Array;
  readonly #entries: Map<string, ParsedEntry>;

  constructor(
    source: string,
    bytes: Uint8Array,
    metadata: Record<string, string>,
    entries: Map<string, ParsedEntry>,
  ) {
    this.source = source;
    this.metadata = metadata;
    this.#bytes = bytes;
    this.#entries = entries;
  }

  names(): string[] {
    return [...this.#entries.keys()].sort();
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  entry(name: string): SafetensorsEntry {
    const { dtype, shape, byteOffset, byteLength } = this.#get(name);
    return { dtype, shape: [...shape], byteOffset, byteLength };
  }

  getRaw(name: string): Uint8Array {
    const entry = this.#get(name);
    return this.#bytes.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength);
  }

  getHost(name: string): HostTensor {
    return { shape: [...this.#get(name).shape], data: this.getFloat32(name) };
  }

  getFloat32(name: string): Float32Array {
    const entry = this.#get(name);
    const count = (entry.byteLength * 8) / DTYPE_BITS[entry.dtype];
    switch (entry.dtype) {
      case 'F32':
        return this.#elements(entry, Float32Array, count);
      case 'F16': {
        const bits = this.#elements(entry, Uint16Array, count);
        const out = new Float32Array(count);
        for (let i = 0; i < count; i++) out[i] = float16BitsToFloat32(bits[i]!);
        return out;
      }
      case 'BF16': {
        const bits = this.#elements(entry, Uint16Array, count);
        const out = new Float32Array(count);
        for (let i = 0; i < count; i++) out[i] = bfloat16BitsToFloat32(bits[i]!);
        return out;
      }
      case 'BOOL':
        return Float32Array.from(this.getRaw(name), (b) => (b === 0 ? 0 : 1));
      case 'U8':
        return Float32Array.from(this.getRaw(name));
      case 'I8':
        return Float32Array.from(this.#elements(entry, Int8Array, count));
      case 'I16':
        return Float32Array.from(this.#elements(entry, Int16Array, count));
      case 'U16':
        return Float32Array.from(this.#elements(entry, Uint16Array, count));
      case 'I32':
        return Float32Array.from(this.#elements(entry, Int32Array, count));
      case 'U32':
        return Float32Array.from(this.#elements(entry, Uint32Array, count));
      case 'F64':
        return Float32Array.from(this.#elements(entry, Float64Array, count));
      case 'I64':
        return Float32Array.from(this.#elements(entry, BigInt64Array, count), Number);
      case 'U64':
        return Float32Array.from(this.#elements(entry, BigUint64Array, count), Number);
      default:
        fail(this.source, `dtype ${entry.dtype} cannot be converted to float32`, name);
    }
  }

  #get(name: string): ParsedEntry {
    const entry = this.#entries.get(name);
    if (entry === undefined) fail(this.source, 'no such tensor in the file', name);
    return entry;
  }

  /** A typed view when the data is aligned for the element type, otherwise an aligned copy (little-endian host). */
  #elements<T extends ArrayBufferView>(
    entry: ParsedEntry,
    ctor: { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number },
    count: number,
  ): T {
    const absolute = this.#bytes.byteOffset + entry.byteOffset;
    if (absolute % ctor.BYTES_PER_ELEMENT === 0) return new ctor(this.#bytes.buffer, absolute, count);
    const copy = new Uint8Array(entry.byteLength);
    copy.set(this.#bytes.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength));
    return new ctor(copy.buffer, 0, count);
  }
}

/** Reads and validates a safetensors file; a missing or unreadable file is an `IO_FAILED` error. */
export async function readSafetensors(
  path: string,
  options: Omit<ParseSafetensorsOptions, 'source'> = {},
): Promise<SafetensorsFile> {
  let buffer: Uint8Array;
  try {
    const { readFile } = await import('node:fs/promises');
    buffer = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'file not found' : `could not read: ${(error as Error).message}`;
    throw new PeftError('IO_FAILED', `${path}: ${reason}`, { cause: error });
  }
  const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  return parseSafetensors(bytes, { ...options, source: path });
}

/** Element types `serializeSafetensors` can write. */
export type WritableDtype = 'F32' | 'F16' | 'BF16' | 'I32' | 'U8';

/** One tensor to serialize. */
export interface TensorToWrite {
  /** Tensor name: non-empty, unique within the file, and not `__metadata__`. */
  name: string;
  /**
   * Dimensions (non-negative integers); their product must equal `data.length` or `SHAPE_MISMATCH` is thrown.
   */
  shape: readonly number[];
  /**
   * Values in row-major order. Float32Array writes F32 (or F16/BF16 via `dtype`), Int32Array writes I32,
   * Uint8Array writes U8.
   */
  data: Float32Array | Int32Array | Uint8Array;
  /** Defaults from the array type; F16 / BF16 store a Float32Array down-cast (round to nearest even). */
  dtype?: WritableDtype;
}

function writeDtypeOf(tensor: TensorToWrite): WritableDtype {
  const { data, dtype, name } = tensor;
  const natural: WritableDtype =
    data instanceof Float32Array ? 'F32' : data instanceof Int32Array ? 'I32' : 'U8';
  if (dtype === undefined) return natural;
  const floatTarget = dtype === 'F32' || dtype === 'F16' || dtype === 'BF16';
  if (floatTarget ? natural !== 'F32' : dtype !== natural) {
    invalidOption(
      `tensors[${JSON.stringify(name)}].dtype`,
      dtype,
      `compatible with a ${data.constructor.name}`,
    );
  }
  return dtype;
}

/** Serializes tensors in the layout the reference writer produces: aligned, sorted, 8-byte-padded header. */
export function serializeSafetensors(
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): Uint8Array {
  const seen = new Set<string>();
  const planned = tensors.map((tensor) => {
    const { name, shape, data } = tensor;
    if (typeof name !== 'string' || name.length === 0 || name === '__metadata__') {
      invalidOption('tensor name', name, 'a non-empty string other than "__metadata__"');
    }
    if (seen.has(name)) invalidOption('tensor name', name, 'unique');
    seen.add(name);
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      invalidOption(`tensors[${JSON.stringify(name)}].shape`, formatShape(shape), 'non-negative integers');
    }
    const count = shape.reduce((a, b) => a * b, 1);
    if (data.length !== count) {
      throw new PeftError(
        'SHAPE_MISMATCH',
        `tensor ${JSON.stringify(name)}: shape ${formatShape(shape)} needs ${count} elements; got ${data.length}`,
      );
    }
    const dtype = writeDtypeOf(tensor);
    return { tensor, dtype, size: DTYPE_BITS[dtype] / 8 };
  });
  // Largest elements first keeps every tensor aligned to its element size behind the 8-byte-padded header.
  planned.sort((a, b) => b.size - a.size || (a.tensor.name < b.tensor.name ? -1 : 1));

  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') invalidOption(`metadata[${JSON.stringify(key)}]`, value, 'a string');
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  const placed = planned.map((p) => {
    const begin = offset;
    offset += p.tensor.data.length * p.size;
    parts.push(
      `${JSON.stringify(p.tensor.name)}:${JSON.stringify({ dtype: p.dtype, shape: p.tensor.shape, data_offsets: [begin, offset] })}`,
    );
    return { ...p, begin };
  });
  const headerText = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(headerText.length / 8) * 8;
  const dataStart = 8 + headerLength;
  const out = new Uint8Array(dataStart + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(headerText, 8);
  out.fill(0x20, 8 + headerText.length, dataStart);
  for (const { tensor, dtype, begin } of placed) {
    const at = dataStart + begin;
    const { data } = tensor;
    if (dtype === 'F16' || dtype === 'BF16') {
      const convert = dtype === 'F16' ? float32ToFloat16Bits : float32ToBfloat16Bits;
      const bits = new Uint16Array(out.buffer, at, data.length);
      for (let i = 0; i < data.length; i++) bits[i] = convert(data[i]!);
    } else {
      out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    }
  }
  return out;
}

/** Serializes and writes atomically: readers see the old file or the complete new one. */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}
