import type { HostTensor } from '@peftjs/core/safetensors';
import { PeftError } from '@peftjs/core';
import { float16BitsToFloat32 } from '@peftjs/core/safetensors';
import { transposeHost } from './name-maps.js';

// NumPy's .npy format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

function fail(source: string, message: string): never {
  throw new PeftError('NPZ_INVALID', `${source}: ${message}`);
}

/** The subset of Python literals a .npy header dict uses. */
type PyValue = string | number | boolean | null | PyValue[] | Map<string, PyValue>;

/** Deepest nesting of a header literal: real headers nest 2 (a dict holding a tuple); structured dtypes a few more. */
const MAX_HEADER_DEPTH = 32;

/** A tiny `ast.literal_eval` for the header: dicts, tuples, lists, strings, ints, True/False/None. */
class PyLiteralParser {
  #pos = 0;
  #depth = 0;
  readonly #text: string;
  readonly #source: string;

  constructor(text: string, source: string) {
    this.#text = text;
    this.#source = source;
  }

  parseAll(): PyValue {
    const value = this.#value();
    this.#skipSpace();
    if (this.#pos !== this.#text.length) this.#fail('unexpected text after the header dict');
    return value;
  }

  #fail(message: string): never {
    fail(this.#source, `invalid header at character ${this.#pos}: ${message}`);
  }

  #skipSpace(): void {
    while (/\s/.test(this.#text[this.#pos] ?? '')) this.#pos++;
  }

  #peek(): string {
    this.#skipSpace();
    return this.#text[this.#pos] ?? '';
  }

  #expect(char: string): void {
    if (this.#peek() !== char) this.#fail(`expected '${char}'`);
    this.#pos++;
  }

  /** Comma-separated items up to `close`, trailing comma allowed; reports whether any comma was seen. */
  #items(close: string, item: () => void): boolean {
    let comma = false;
    while (this.#peek() !== close) {
      item();
      if (this.#peek() !== ',') break;
      this.#pos++;
      comma = true;
    }
    this.#expect(close);
    return comma;
  }

  #value(): PyValue {
    if (this.#depth >= MAX_HEADER_DEPTH) {
      this.#fail(`nested deeper than ${MAX_HEADER_DEPTH} levels (a .npy header is a flat dict)`);
    }
    this.#depth++;
    try {
      return this.#literal();
    } finally {
      this.#depth--;
    }
  }

  #literal(): PyValue {
    const c = this.#peek();
    if (c === '{') {
      this.#pos++;
      const dict = new Map<string, PyValue>();
      this.#items('}', () => {
        const key = this.#value();
        if (typeof key !== 'string') this.#fail('dict keys must be strings');
        if (dict.has(key)) this.#fail(`duplicate key '${key}'`);
        this.#expect(':');
        dict.set(key, this.#value());
      });
      return dict;
    }
    if (c === '(' || c === '[') {
      this.#pos++;
      const list: PyValue[] = [];
      const comma = this.#items(c === '(' ? ')' : ']', () => list.push(this.#value()));
      // `(3)` is just 3 in Python; only a comma makes a one-tuple.
      return c === '(' && list.length === 1 && !comma ? list[0]! : list;
    }
    if (c === "'" || c === '"') return this.#string(c);
    const word = /^(?:-?\d+L?|True|False|None)/.exec(this.#text.slice(this.#pos, this.#pos + 40));
    if (word === null) this.#fail('expected a Python literal');
    this.#pos += word[0].length;
    if (word[0] === 'True') return true;
    if (word[0] === 'False') return false;
    if (word[0] === 'None') return null;
    return Number(word[0].replace('L', ''));
  }

  #string(quote: string): string {
    let out = '';
    this.#pos++;
    for (;;) {
      const c = this.#text[this.#pos++];
      if (c === undefined) this.#fail('unterminated string');
      if (c === quote) return out;
      if (c === '\\') {
        const escaped = this.#text[this.#pos++];
        if (escaped === undefined) this.#fail('unterminated string');
        out += escaped;
      } else {
        out += c;
      }
    }
  }
}

interface NpyDtype {
  size: number;
  read: (view: DataView, offset: number, littleEndian: boolean) => number;
}

const NPY_DTYPES: Readonly<Record<string, NpyDtype>> = {
  f2: { size: 2, read: (v, o, le) => float16BitsToFloat32(v.getUint16(o, le)) },
  f4: { size: 4, read: (v, o, le) => v.getFloat32(o, le) },
  f8: { size: 8, read: (v, o, le) => v.getFloat64(o, le) },
  i1: { size: 1, read: (v, o) => v.getInt8(o) },
  u1: { size: 1, read: (v, o) => v.getUint8(o) },
  b1: { size: 1, read: (v, o) => (v.getUint8(o) === 0 ? 0 : 1) },
  i2: { size: 2, read: (v, o, le) => v.getInt16(o, le) },
  u2: { size: 2, read: (v, o, le) => v.getUint16(o, le) },
  i4: { size: 4, read: (v, o, le) => v.getInt32(o, le) },
  u4: { size: 4, read: (v, o, le) => v.getUint32(o, le) },
  i8: { size: 8, read: (v, o, le) => Number(v.getBigInt64(o, le)) },
  u8: { size: 8, read: (v, o, le) => Number(v.getBigUint64(o, le)) },
};

/**
 * Parses one NumPy `.npy` array (format versions 1-3) into a float32, C-order host tensor. Little-endian float32
 * data that is suitably aligned is returned as a view sharing memory with `bytes`; everything else is converted.
 */
export function parseNpy(bytes: Uint8Array, source: string): HostTensor {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) fail(source, 'not a .npy array (bad magic)');
  const major = bytes[6]!;
  if (major < 1 || major > 3) fail(source, `unsupported .npy format version ${major}.${bytes[7]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerStart = major === 1 ? 10 : 12;
  if (bytes.length < headerStart) fail(source, 'truncated .npy header');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) fail(source, `header length ${headerLength} runs past the end of the file`);
  // Versions 1 and 2 store the header as latin-1, version 3 as UTF-8.
  const encoding = major === 3 ? 'utf-8' : 'latin1';
  const headerText = new TextDecoder(encoding).decode(bytes.subarray(headerStart, dataStart));
  const header = new PyLiteralParser(headerText, source).parseAll();
  if (!(header instanceof Map)) fail(source, 'header is not a dict');
  const keys = [...header.keys()].sort().join(',');
  if (keys !== 'descr,fortran_order,shape') {
    fail(source, `header keys must be exactly 'descr', 'fortran_order', 'shape'; got ${keys || 'none'}`);
  }
  const descr = header.get('descr');
  const fortranOrder = header.get('fortran_order');
  const shapeValue = header.get('shape');
  const parsedDescr = typeof descr === 'string' ? /^([<>|=])([a-z]\d+)$/.exec(descr) : null;
  const dtype =
    parsedDescr !== null && Object.hasOwn(NPY_DTYPES, parsedDescr[2]!)
      ? NPY_DTYPES[parsedDescr[2]!]
      : undefined;
  if (parsedDescr === null || dtype === undefined) {
    fail(
      source,
      `unsupported dtype ${JSON.stringify(descr)} (supported: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1)`,
    );
  }
  const littleEndian = parsedDescr[1] !== '>';
  if (typeof fortranOrder !== 'boolean') fail(source, "header 'fortran_order' must be True or False");
  if (!Array.isArray(shapeValue) || !shapeValue.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    fail(source, "header 'shape' must be a tuple of non-negative integers");
  }
  const shape = shapeValue as number[];

  // Bounded BigInt product: a hostile shape can neither overflow nor trigger a huge allocation.
  const available = BigInt(bytes.length - dataStart);
  let needed = shape.includes(0) ? 0n : BigInt(dtype.size);
  let exceeded = false; // true when the product was cut short, so `needed` is only a lower bound
  for (let i = 0; i < shape.length && needed !== 0n; i++) {
    needed *= BigInt(shape[i]!);
    if (needed > available && i < shape.length - 1) {
      exceeded = true;
      break;
    }
  }
  if (needed !== available) {
    const what = exceeded ? `more than ${available}` : `${needed}`;
    const tuple = `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;
    fail(source, `shape ${tuple} of ${descr} needs ${what} data bytes; the file holds ${available}`);
  }
  const count = Number(needed) / dtype.size;

  let data: Float32Array;
  const absolute = bytes.byteOffset + dataStart;
  if (parsedDescr[2] === 'f4' && littleEndian && absolute % 4 === 0) {
    data = new Float32Array(bytes.buffer, absolute, count);
  } else {
    data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = dtype.read(view, dataStart + i * dtype.size, littleEndian);
  }
  if (!fortranOrder || shape.length < 2) return { shape, data };
  // Fortran order is C order of the reversed shape; reversing the axes gives C order of `shape`.
  const reversed = [...shape].reverse();
  return transposeHost(
    { shape: reversed, data },
    reversed.map((_, i) => reversed.length - 1 - i),
  );
}
