import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PeftError } from './errors.js';
import {
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  type TensorToWrite,
  writeSafetensors,
} from './safetensors.js';

/** A safetensors file built by hand: 8-byte LE length, the header text as given, then the data bytes. */
function build(header: string | object, data: Uint8Array | number = 0): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const headerBytes = new TextEncoder().encode(text);
  const payload = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + headerBytes.length + payload.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  out.set(payload, 8 + headerBytes.length);
  return out;
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function rejection(fn: () => unknown): PeftError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PeftError);
    expect((error as PeftError).code).toBe('SAFETENSORS_INVALID');
    return error as PeftError;
  }
  throw new Error('expected a SAFETENSORS_INVALID error');
}

function parseFails(bytes: Uint8Array): string {
  const message = rejection(() => parseSafetensors(bytes, { source: 'model.safetensors' })).message;
  expect(message.startsWith('model.safetensors: ')).toBe(true);
  return message;
}

const f32 = (values: number[]): Float32Array => Float32Array.from(values);

describe('float16 / bfloat16 helpers', () => {
  it('encodes and decodes the known F16 bit patterns', () => {
    const known: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [2 ** -24, 0x0001],
      [2 ** -14, 0x0400],
      [2 ** -14 - 2 ** -24, 0x03ff],
      [Number.POSITIVE_INFINITY, 0x7c00],
      [Number.NEGATIVE_INFINITY, 0xfc00],
      [0, 0x0000],
    ];
    for (const [value, bits] of known) {
      expect(float32ToFloat16Bits(value)).toBe(bits);
      expect(float16BitsToFloat32(bits)).toBe(value);
    }
    expect(Object.is(float16BitsToFloat32(0x8000), -0)).toBe(true);
    expect(float32ToFloat16Bits(-0)).toBe(0x8000);
    expect(float16BitsToFloat32(0x7e00)).toBeNaN();
    expect(float16BitsToFloat32(0xfc01)).toBeNaN();
    expect(float32ToFloat16Bits(Number.NaN) & 0x7c00).toBe(0x7c00);
    expect(float32ToFloat16Bits(Number.NaN) & 0x3ff).not.toBe(0);
  });

  it('rounds F16 to nearest even, overflowing to infinity and underflowing to zero', () => {
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie, even stays
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, odd rounds up
    expect(float32ToFloat16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    expect(float32ToFloat16Bits(65519)).toBe(0x7bff);
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00);
    expect(float32ToFloat16Bits(1e10)).toBe(0x7c00);
    expect(float32ToFloat16Bits(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal
    expect(float32ToFloat16Bits(1.5 * 2 ** -25)).toBe(0x0001);
    expect(float32ToFloat16Bits(3 * 2 ** -25)).toBe(0x0002); // subnormal tie, odd rounds up
    expect(float32ToFloat16Bits(2 ** -30)).toBe(0);
    expect(float32ToFloat16Bits(-(2 ** -30))).toBe(0x8000);
    expect(float32ToFloat16Bits(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the normals
  });

  it('round-trips every non-NaN F16 bit pattern', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = float16BitsToFloat32(bits);
      if (Number.isNaN(value)) continue;
      expect(float32ToFloat16Bits(value)).toBe(bits);
    }
  });

  it('handles the known BF16 bit patterns and rounding', () => {
    expect(float32ToBfloat16Bits(1)).toBe(0x3f80);
    expect(bfloat16BitsToFloat32(0x3f80)).toBe(1);
    expect(bfloat16BitsToFloat32(0xc000)).toBe(-2);
    expect(bfloat16BitsToFloat32(0x7f80)).toBe(Number.POSITIVE_INFINITY);
    expect(bfloat16BitsToFloat32(0x0001)).toBe(2 ** -133);
    expect(bfloat16BitsToFloat32(0x7fc0)).toBeNaN();
    expect(float32ToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(float32ToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(float32ToBfloat16Bits(Number.NaN) & 0x7f80).toBe(0x7f80);
    expect(float32ToBfloat16Bits(Number.NaN) & 0x7f).not.toBe(0);
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = bfloat16BitsToFloat32(bits);
      if (!Number.isNaN(value)) expect(float32ToBfloat16Bits(value)).toBe(bits);
    }
  });
});

describe('serializeSafetensors + parseSafetensors', () => {
  it('round-trips every writable dtype', () => {
    const tensors: (TensorToWrite & { stored: string })[] = [
      { name: 'f32', shape: [2, 3], data: f32([1.5, -2, 3.25, 1e-30, 7, Math.PI]), stored: 'F32' },
      {
        name: 'f16',
        shape: [5],
        data: f32([1, -2, 65504, 2 ** -24, 0.333251953125]),
        dtype: 'F16',
        stored: 'F16',
      },
      { name: 'bf16', shape: [2, 2], data: f32([1, -2, 3.140625, 2 ** 100]), dtype: 'BF16', stored: 'BF16' },
      { name: 'i32', shape: [3], data: Int32Array.from([-5, 0, 2 ** 30]), stored: 'I32' },
      { name: 'u8', shape: [3], data: Uint8Array.from([0, 7, 255]), dtype: 'U8', stored: 'U8' },
      { name: 'f32b', shape: [1], data: f32([0.1]), dtype: 'F32', stored: 'F32' },
    ];
    const file = parseSafetensors(serializeSafetensors(tensors));
    expect(file.names()).toEqual(['bf16', 'f16', 'f32', 'f32b', 'i32', 'u8']);
    expect(file.metadata).toEqual({});
    for (const t of tensors) {
      expect(file.entry(t.name).dtype).toBe(t.stored);
      expect(file.entry(t.name).shape).toEqual(t.shape);
      expect(Array.from(file.getFloat32(t.name))).toEqual(Array.from(t.data));
    }
    expect(Array.from(new Int32Array(file.getRaw('i32').slice().buffer))).toEqual([-5, 0, 2 ** 30]);
    expect(Array.from(new Uint16Array(file.getRaw('f16').slice().buffer))).toEqual([
      0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555,
    ]);
    expect(Array.from(new Uint16Array(file.getRaw('bf16').slice().buffer)).slice(0, 2)).toEqual([
      0x3f80, 0xc000,
    ]);
    expect(file.getHost('f32')).toEqual({ shape: [2, 3], data: file.getFloat32('f32') });
  });

  it('rounds F16 / BF16 down-casts to nearest even', () => {
    const data = f32([1 + 3 * 2 ** -11, 1 + 2 ** -11]);
    const file = parseSafetensors(
      serializeSafetensors([
        { name: 'h', shape: [2], data, dtype: 'F16' },
        { name: 'b', shape: [2], data: f32([1 + 3 * 2 ** -8, 1 + 2 ** -8]), dtype: 'BF16' },
      ]),
    );
    expect(Array.from(file.getFloat32('h'))).toEqual([1 + 2 ** -9, 1]);
    expect(Array.from(file.getFloat32('b'))).toEqual([1 + 2 ** -6, 1]);
  });

  it('sorts by alignment then name, pads the header to 8 and lets F32 tensors be read zero-copy', () => {
    const bytes = serializeSafetensors(
      [
        { name: 'a_u8', shape: [3], data: Uint8Array.from([1, 2, 3]) },
        { name: 'z_f32', shape: [3], data: f32([1, 2, 3]) },
        { name: 'b_f16', shape: [1], data: f32([4]), dtype: 'F16' },
        { name: 'c_f32', shape: [1, 1], data: f32([5]) },
        { name: 'i', shape: [1], data: Int32Array.from([6]) },
      ],
      { format: 'pt' },
    );
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const file = parseSafetensors(bytes);
    const order = file.names().sort((x, y) => file.entry(x).byteOffset - file.entry(y).byteOffset);
    expect(order).toEqual(['c_f32', 'i', 'z_f32', 'b_f16', 'a_u8']);
    expect(file.entry('c_f32').byteOffset).toBe(8 + headerLength);
    for (const name of ['c_f32', 'z_f32']) {
      expect(file.entry(name).byteOffset % 4).toBe(0);
      const view = file.getFloat32(name);
      expect(view.buffer).toBe(bytes.buffer);
    }
    expect(Array.from(file.getFloat32('z_f32'))).toEqual([1, 2, 3]);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
    expect(text.trimEnd().endsWith('}')).toBe(true);
    expect(/^ *$/.test(text.slice(text.lastIndexOf('}') + 1))).toBe(true);
  });

  it('falls back to a correct copy for misaligned F32 data', () => {
    const bytes = serializeSafetensors([{ name: 'w', shape: [2, 2], data: f32([1, -2, 3.5, 4]) }]);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const file = parseSafetensors(shifted.subarray(1));
    const data = file.getFloat32('w');
    expect(data.buffer).not.toBe(shifted.buffer);
    expect(Array.from(data)).toEqual([1, -2, 3.5, 4]);

    // Another writer's unpadded 3-byte-misaligned header.
    const header = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    expect((8 + header.length) % 4).not.toBe(0);
    const other = parseSafetensors(build(header, bytesOf(f32([0.5, -7]))));
    expect(Array.from(other.getFloat32('w'))).toEqual([0.5, -7]);
  });

  it('handles empty tensors and 0-rank scalars', () => {
    const bytes = serializeSafetensors([
      { name: 'empty', shape: [0, 3], data: new Float32Array(0) },
      { name: 'scalar', shape: [], data: f32([42]) },
    ]);
    const file = parseSafetensors(bytes);
    expect(file.getHost('empty')).toEqual({ shape: [0, 3], data: new Float32Array(0) });
    expect(file.getHost('scalar').shape).toEqual([]);
    expect(Array.from(file.getFloat32('scalar'))).toEqual([42]);
    expect(file.entry('empty').byteLength).toBe(0);
    expect(parseSafetensors(serializeSafetensors([])).names()).toEqual([]);
  });

  it('round-trips metadata', () => {
    const metadata = { format: 'pt', peft_type: 'LORA', note: 'üñí "quoted"' };
    const file = parseSafetensors(
      serializeSafetensors([{ name: 'x', shape: [1], data: f32([1]) }], metadata),
    );
    expect(file.metadata).toEqual(metadata);
  });

  it('validates what it is asked to write', () => {
    const x = { name: 'x', shape: [2], data: f32([1, 2]) };
    expect(() => serializeSafetensors([x, x])).toThrow(/"x"/);
    expect(() => serializeSafetensors([{ ...x, name: '' }])).toThrow(PeftError);
    expect(() => serializeSafetensors([{ ...x, name: '__metadata__' }])).toThrow(PeftError);
    expect(() => serializeSafetensors([{ ...x, shape: [3] }])).toThrow(/"x".*needs 3 elements; got 2/);
    expect(() => serializeSafetensors([{ ...x, shape: [-2, -1] }])).toThrow(PeftError);
    expect(() => serializeSafetensors([{ ...x, data: Int32Array.from([1, 2]), dtype: 'F16' }])).toThrow(
      /dtype/,
    );
    expect(() => serializeSafetensors([{ ...x, dtype: 'U8' }])).toThrow(/dtype/);
  });
});

describe('parseSafetensors reading', () => {
  it('converts the other numeric dtypes to float32', () => {
    const parts: [string, string, number[], ArrayBufferView][] = [
      ['f64', 'F64', [2], Float64Array.from([0.1, -3])],
      ['i64', 'I64', [2], BigInt64Array.from([-5n, 2n ** 40n])],
      ['u64', 'U64', [1], BigUint64Array.from([2n ** 63n])],
      ['u32', 'U32', [1], Uint32Array.from([2 ** 32 - 1])],
      ['i16', 'I16', [2], Int16Array.from([-32768, 5])],
      ['u16', 'U16', [1], Uint16Array.from([65535])],
      ['i8', 'I8', [2], Int8Array.from([-128, 3])],
      ['bool', 'BOOL', [3], Uint8Array.from([0, 1, 2])],
    ];
    const header: Record<string, unknown> = {};
    const chunks: Uint8Array[] = [];
    let offset = 0;
    for (const [name, dtype, shape, data] of parts) {
      header[name] = { dtype, shape, data_offsets: [offset, offset + data.byteLength] };
      offset += data.byteLength;
      chunks.push(bytesOf(data));
    }
    const data = new Uint8Array(offset);
    let at = 0;
    for (const chunk of chunks) {
      data.set(chunk, at);
      at += chunk.length;
    }
    const file = parseSafetensors(build(header, data));
    expect(Array.from(file.getFloat32('f64'))).toEqual([Math.fround(0.1), -3]);
    expect(Array.from(file.getFloat32('i64'))).toEqual([-5, 2 ** 40]);
    expect(Array.from(file.getFloat32('u64'))).toEqual([2 ** 63]);
    expect(Array.from(file.getFloat32('u32'))).toEqual([2 ** 32]);
    expect(Array.from(file.getFloat32('i16'))).toEqual([-32768, 5]);
    expect(Array.from(file.getFloat32('u16'))).toEqual([65535]);
    expect(Array.from(file.getFloat32('i8'))).toEqual([-128, 3]);
    expect(Array.from(file.getFloat32('bool'))).toEqual([0, 1, 1]);
  });

  it('validates every dtype but refuses to convert the exotic ones', () => {
    const header = {
      fp8: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] },
      e8: { dtype: 'F8_E8M0', shape: [1], data_offsets: [2, 3] },
      c64: { dtype: 'C64', shape: [1], data_offsets: [3, 11] },
      f4: { dtype: 'F4', shape: [2, 3], data_offsets: [11, 14] },
      f6: { dtype: 'F6_E2M3', shape: [4], data_offsets: [14, 17] },
      f6b: { dtype: 'F6_E3M2', shape: [0], data_offsets: [17, 17] },
    };
    const file = parseSafetensors(build(header, 17), { source: 'odd.safetensors' });
    expect(file.getRaw('f4').length).toBe(3);
    expect(file.getRaw('f6').length).toBe(3);
    const message = rejection(() => file.getFloat32('fp8')).message;
    expect(message).toMatch(/^odd\.safetensors: tensor "fp8".*F8_E4M3/);
    expect(() => file.getFloat32('c64')).toThrow(/"c64".*C64/);
    expect(parseFails(build({ f4: { dtype: 'F4', shape: [3], data_offsets: [0, 2] } }, 2))).toMatch(
      /"f4".*whole number of bytes/,
    );
  });

  it('looks tensors up by name and names the source for unknown ones', () => {
    const file = parseSafetensors(
      build(
        '{"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}',
        2,
      ),
    );
    expect(file.names()).toEqual(['a', 'b']);
    expect(file.has('a')).toBe(true);
    expect(file.has('c')).toBe(false);
    expect(file.entry('a').byteOffset).toBe(file.entry('b').byteOffset + 1);
    expect(rejection(() => file.getFloat32('c')).message).toMatch(/^buffer: tensor "c"/);
    expect(() => file.entry('c')).toThrow(/"c"/);
  });

  it('accepts trailing-space padding and __metadata__ in any position', () => {
    const file = parseSafetensors(
      build('{"t":{"dtype":"U8","shape":[],"data_offsets":[0,1]},"__metadata__":{"a":"b"}}      ', 1),
    );
    expect(file.metadata).toEqual({ a: 'b' });
    expect(file.names()).toEqual(['t']);
  });
});

describe('parseSafetensors rejections', () => {
  const ok = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };

  it('rejects a file shorter than the length prefix', () => {
    expect(parseFails(new Uint8Array(5))).toMatch(/too short/);
  });

  it('rejects a truncated data buffer, naming the tensor', () => {
    const full = build(ok, 8);
    expect(parseFails(full.subarray(0, full.length - 3))).toMatch(/tensor "t".*truncated/);
  });

  it('rejects a header length above the cap', () => {
    const bytes = build(ok, 8);
    expect(parseFails(bytes.subarray(0, 8))).toMatch(/runs past the end/);
    const big = new Uint8Array(16);
    new DataView(big.buffer).setBigUint64(0, 2n ** 63n, true);
    expect(parseFails(big)).toMatch(/exceeds the limit of 100000000/);
    expect(() => parseSafetensors(bytes, { maxHeaderBytes: 16 })).toThrow(
      /^buffer: header length \d+ exceeds/,
    );
    expect(() => parseSafetensors(bytes, { maxHeaderBytes: 0 })).toThrow(/maxHeaderBytes/);
  });

  it('rejects a header length beyond the file', () => {
    const bytes = build(ok, 8);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(bytes.length), true);
    expect(parseFails(bytes)).toMatch(/runs past the end/);
  });

  it("rejects a header that does not start with '{'", () => {
    expect(parseFails(build(` ${JSON.stringify(ok)}`, 8))).toMatch(/start with '\{'/);
    expect(parseFails(build('', 0))).toMatch(/start with '\{'/);
    expect(parseFails(build('[]', 0))).toMatch(/start with '\{'/);
  });

  it('rejects invalid JSON and invalid UTF-8', () => {
    expect(parseFails(build('{"t": ', 0))).toMatch(/not valid JSON/);
    const bad = build('{"t":1}', 0);
    bad[10] = 0xff;
    expect(parseFails(bad)).toMatch(/UTF-8/);
  });

  it('rejects non-string metadata', () => {
    expect(parseFails(build({ __metadata__: { epochs: 3 } }))).toMatch(/__metadata__.*"epochs"/);
    expect(parseFails(build({ __metadata__: 'pt' }))).toMatch(/__metadata__/);
  });

  it('rejects an unknown dtype, naming the tensor', () => {
    const message = parseFails(build({ w: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, 16));
    expect(message).toMatch(/tensor "w".*unknown dtype "F128"/);
    expect(parseFails(build({ w: { dtype: 'toString', shape: [], data_offsets: [0, 0] } }))).toMatch(/"w"/);
  });

  it('rejects a bad shape, naming the tensor', () => {
    for (const shape of [[-1], [1.5], ['2'], 3, null]) {
      expect(parseFails(build({ w: { dtype: 'U8', shape, data_offsets: [0, 0] } }))).toMatch(
        /tensor "w".*shape/,
      );
    }
    expect(parseFails(build({ w: { dtype: 'U8', shape: [1], data_offsets: [0] } }, 1))).toMatch(
      /tensor "w".*data_offsets/,
    );
    expect(parseFails(build({ w: 7 }))).toMatch(/tensor "w"/);
  });

  it('rejects offsets that disagree with shape × dtype', () => {
    const header = {
      w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] },
      rest: { dtype: 'U8', shape: [4], data_offsets: [8, 12] },
    };
    const message = parseFails(build(header, 12));
    expect(message).toMatch(/tensor "w".*span 8 bytes.*needs 12/);
    expect(parseFails(build({ w: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, 8))).toMatch(/"w"/);
  });

  it('rejects a hole between tensors', () => {
    const header = {
      a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] },
      b: { dtype: 'U8', shape: [2], data_offsets: [3, 5] },
    };
    expect(parseFails(build(header, 5))).toMatch(/tensor "b".*hole/);
    expect(parseFails(build({ a: { dtype: 'U8', shape: [2], data_offsets: [1, 3] } }, 3))).toMatch(
      /"a".*hole/,
    );
  });

  it('rejects overlapping tensors', () => {
    const header = {
      a: { dtype: 'U8', shape: [3], data_offsets: [0, 3] },
      b: { dtype: 'U8', shape: [2], data_offsets: [2, 4] },
    };
    expect(parseFails(build(header, 4))).toMatch(/tensor "b".*overlap tensor "a"/);
    const same = {
      a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] },
      b: { dtype: 'U8', shape: [2], data_offsets: [0, 2] },
    };
    expect(parseFails(build(same, 2))).toMatch(/overlap/);
  });

  it('rejects trailing bytes after the last tensor', () => {
    expect(parseFails(build(ok, 9))).toMatch(/1 trailing bytes/);
    expect(parseFails(build({}, 1))).toMatch(/trailing/);
  });

  it('rejects duplicate keys, which JSON.parse would silently merge', () => {
    const entry = '{"dtype":"U8","shape":[1],"data_offsets":[0,1]}';
    expect(parseFails(build(`{"w":${entry},"w":${entry}}`, 1))).toMatch(/tensor "w".*duplicate/);
    expect(parseFails(build(`{"w":${entry},"\\u0077":${entry}}`, 1))).toMatch(/tensor "w".*duplicate/);
    const inner = '{"dtype":"U8","shape":[1],"dtype":"U8","data_offsets":[0,1]}';
    expect(parseFails(build(`{"w":${inner}}`, 1))).toMatch(/tensor "w".*duplicate key "dtype"/);
    expect(parseFails(build(`{"__metadata__":{"a":"x","a":"y"}}`))).toMatch(
      /duplicate key "a" in __metadata__/,
    );
    // Keys equal to string values elsewhere are not duplicates.
    expect(parseSafetensors(build(`{"__metadata__":{"U8":"dtype"},"dtype":${entry}}`, 1)).names()).toEqual([
      'dtype',
    ]);
  });

  it('rejects hostile sizes without allocating', () => {
    const huge = parseFails(
      build({ w: { dtype: 'F32', shape: [2 ** 30, 2 ** 30], data_offsets: [0, 8] } }, 8),
    );
    expect(huge).toMatch(/tensor "w".*needs more than the 8 bytes/);
    const manyDims = Array.from({ length: 10_000 }, () => 2 ** 53 - 1);
    expect(parseFails(build({ w: { dtype: 'F64', shape: manyDims, data_offsets: [0, 8] } }, 8))).toMatch(
      /tensor "w".*10000 dims/,
    );
    const farOffsets = { w: { dtype: 'U8', shape: [2 ** 52], data_offsets: [2 ** 53 - 1, 2 ** 53 - 1] } };
    expect(parseFails(build(farOffsets, 8))).toMatch(/tensor "w"/);
    expect(parseFails(build({ w: { dtype: 'U8', shape: [1], data_offsets: [0, 2 ** 64] } }, 1))).toMatch(
      /"w"/,
    );
    // A zero dim makes the product 0, however big the other dims.
    expect(
      parseSafetensors(build({ w: { dtype: 'F32', shape: [2 ** 50, 0], data_offsets: [0, 0] } })).getHost('w')
        .data,
    ).toHaveLength(0);
  });
});

describe('readSafetensors / writeSafetensors', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('writes atomically and reads back with the path as source', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'peftjs-st-'));
    dirs.push(dir);
    const path = join(dir, 'sub', 'adapter.safetensors');
    await writeSafetensors(path, [{ name: 'x', shape: [2], data: f32([1, 2]) }], { format: 'pt' });
    const file = await readSafetensors(path);
    expect(file.source).toBe(path);
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(Array.from(file.getFloat32('x'))).toEqual([1, 2]);
    expect(() => file.getFloat32('y')).toThrow(path);
  });

  it('reports a missing file as IO_FAILED naming the path', async () => {
    const path = join(tmpdir(), 'peftjs-definitely-missing', 'model.safetensors');
    const error = await readSafetensors(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PeftError);
    expect((error as PeftError).code).toBe('IO_FAILED');
    expect((error as PeftError).message).toContain(path);
  });
});
