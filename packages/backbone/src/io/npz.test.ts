import { PeftError } from '@peftjs/core';
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { parseNpy } from './npy.js';
import { readNpz } from './npz.js';

/** A .npy file built by hand: magic, version, LE header length, dict literal padded to 64 with '\n' last. */
function npy(
  descr: string,
  shape: readonly number[],
  data: ArrayBufferView | number[],
  options: { fortran?: boolean; version?: 1 | 2 | 3; header?: string } = {},
): Uint8Array {
  const version = options.version ?? 1;
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict =
    options.header ??
    `{'descr': '${descr}', 'fortran_order': ${options.fortran ? 'True' : 'False'}, 'shape': ${shapeText}, }`;
  const prefix = version === 1 ? 10 : 12;
  const padded = dict + ' '.repeat(63 - ((prefix + dict.length) % 64)) + '\n';
  const payload = Array.isArray(data)
    ? Uint8Array.from(data)
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(prefix + padded.length + payload.length);
  out.set([0x93, ...new TextEncoder().encode('NUMPY'), version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, padded.length, true);
  else view.setUint32(8, padded.length, true);
  out.set(new TextEncoder().encode(padded), prefix);
  out.set(payload, prefix + padded.length);
  return out;
}

function bigEndian(values: number[], size: 4 | 8): Uint8Array {
  const view = new DataView(new ArrayBuffer(values.length * size));
  values.forEach((v, i) => {
    if (size === 4) view.setFloat32(i * size, v, false);
    else view.setFloat64(i * size, v, false);
  });
  return new Uint8Array(view.buffer);
}

function npzError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PeftError);
    expect((error as PeftError).code).toBe('NPZ_INVALID');
    return (error as PeftError).message;
  }
  throw new Error('expected an NPZ_INVALID error');
}

describe('parseNpy', () => {
  it('reads every supported dtype as float32', () => {
    const cases: [string, ArrayBufferView | number[], number[]][] = [
      ['<f4', Float32Array.from([1.5, -2, 0.25]), [1.5, -2, 0.25]],
      ['<f8', Float64Array.from([0.1, -3, 1e300]), [Math.fround(0.1), -3, Number.POSITIVE_INFINITY]],
      ['<f2', Uint16Array.from([0x3c00, 0xc000, 0x0001]), [1, -2, 2 ** -24]],
      ['|u1', [0, 200, 255], [0, 200, 255]],
      ['|i1', Int8Array.from([-128, 0, 127]), [-128, 0, 127]],
      ['<i4', Int32Array.from([-7, 2 ** 31 - 1, 0]), [-7, 2 ** 31, 0]],
      ['<i8', BigInt64Array.from([-5n, 2n ** 40n, 0n]), [-5, 2 ** 40, 0]],
      ['|b1', [0, 1, 1], [0, 1, 1]],
      ['>f4', bigEndian([1.5, -2, 0.25], 4), [1.5, -2, 0.25]],
      ['>f8', bigEndian([0.5, -3, 8], 8), [0.5, -3, 8]],
    ];
    for (const [descr, data, expected] of cases) {
      const tensor = parseNpy(npy(descr, [3], data), `x${descr}.npy`);
      expect(tensor.shape).toEqual([3]);
      expect(Array.from(tensor.data)).toEqual(expected);
    }
  });

  it('shares memory for aligned little-endian float32 data', () => {
    const bytes = npy('<f4', [2, 2], Float32Array.from([1, 2, 3, 4]));
    const tensor = parseNpy(bytes, 'a.npy');
    expect(tensor.data.buffer).toBe(bytes.buffer);
    expect(tensor.shape).toEqual([2, 2]);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    expect(Array.from(parseNpy(shifted.subarray(1), 'b.npy').data)).toEqual([1, 2, 3, 4]);
  });

  it('transposes fortran-order data to C order', () => {
    // Element (i, j, k) of a [2, 3, 4] array holds 100i + 10j + k; Fortran order varies i fastest.
    const fortran: number[] = [];
    for (let k = 0; k < 4; k++)
      for (let j = 0; j < 3; j++) for (let i = 0; i < 2; i++) fortran.push(100 * i + 10 * j + k);
    const tensor = parseNpy(npy('<f4', [2, 3, 4], Float32Array.from(fortran), { fortran: true }), 'f.npy');
    expect(tensor.shape).toEqual([2, 3, 4]);
    const c: number[] = [];
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) c.push(100 * i + 10 * j + k);
    expect(Array.from(tensor.data)).toEqual(c);
    const matrix = parseNpy(npy('<f8', [2, 2], Float64Array.from([1, 3, 2, 4]), { fortran: true }), 'm.npy');
    expect(Array.from(matrix.data)).toEqual([1, 2, 3, 4]);
  });

  it('reads v2 and v3 headers, scalars and empty arrays', () => {
    expect(
      Array.from(parseNpy(npy('<f4', [2], Float32Array.from([5, 6]), { version: 2 }), 'v2.npy').data),
    ).toEqual([5, 6]);
    expect(parseNpy(npy('<f4', [1], Float32Array.from([7]), { version: 3 }), 'v3.npy').shape).toEqual([1]);
    const scalar = parseNpy(npy('<f8', [], Float64Array.from([2.5])), 's.npy');
    expect(scalar).toEqual({ shape: [], data: Float32Array.from([2.5]) });
    expect(parseNpy(npy('<f4', [0, 5], []), 'e.npy')).toEqual({ shape: [0, 5], data: new Float32Array(0) });
    const oldStyle = "{'shape': (2L,), \"fortran_order\": False, 'descr': '<f4'}";
    expect(parseNpy(npy('', [], Float32Array.from([1, 2]), { header: oldStyle }), 'py2.npy').shape).toEqual([
      2,
    ]);
  });

  it('rejects malformed files, naming the source', () => {
    const source = 'ViT-B_16.npz:Transformer/encoder_norm/scale.npy';
    const good = npy('<f4', [2], Float32Array.from([1, 2]));
    const badMagic = good.slice();
    badMagic[1] = 0x4f;
    const cases: [Uint8Array, RegExp][] = [
      [badMagic, /bad magic/],
      [good.subarray(0, 9), /bad magic/],
      [good.subarray(0, 40), /header length/],
      [good.subarray(0, good.length - 1), /needs 8 data bytes; the file holds 7/],
      [npy('<f4', [3], Float32Array.from([1, 2])), /needs 12 data bytes; the file holds 8/],
      [npy('<c8', [1], [0, 0, 0, 0, 0, 0, 0, 0]), /unsupported dtype "<c8"/],
      [npy('|O', [1], [0]), /unsupported dtype/],
      [npy('<f4', [1], [], { header: "{'descr': '<f4', 'shape': (1,)}" }), /header keys/],
      [
        npy('<f4', [1], [], { header: "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}" }),
        /fortran_order/,
      ],
      [npy('<f4', [1], [], { header: "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}" }), /shape/],
      [npy('<f4', [1], [], { header: "{'descr': '<f4', 'fortran_order': False, 'shape': (4)}" }), /shape/],
      [
        npy('<f4', [1], [], { header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)" }),
        /invalid header/,
      ],
      [npy('<f4', [1], [], { header: "{'descr': '<f4', 'descr': '<f4', 'shape': (1,)}" }), /duplicate key/],
      [npy('<f4', [1], [], { header: "{'descr': <f4}" }), /invalid header/],
      [npy('<f4', [1], [], { header: '[1, 2]' }), /not a dict/],
      [
        npy('<f4', [1], Float32Array.from([1]), {
          header: "{'descr':'<f4','fortran_order':False,'shape':(2**62,)}",
        }),
        /invalid header/,
      ],
      [
        npy('<f4', [], Float32Array.from([1]), {
          header: "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296)}",
        }),
        /needs more than 4 data bytes; the file holds 4/,
      ],
    ];
    const version9 = good.slice();
    version9[6] = 9;
    cases.push([version9, /version 9/]);
    for (const [bytes, pattern] of cases) {
      const message = npzError(() => parseNpy(bytes, source));
      expect(message.startsWith(`${source}: `)).toBe(true);
      expect(message).toMatch(pattern);
    }
  });
});

describe('readNpz', () => {
  it('reads stored and deflated entries, keyed without .npy, skipping other files', () => {
    const kernel = Float32Array.from({ length: 2 * 2 * 3 * 4 }, (_, i) => i / 8 - 1);
    const archive = zipSync({
      'embedding/kernel.npy': [npy('<f4', [2, 2, 3, 4], kernel), { level: 0 }],
      'Transformer/encoder_norm/scale.npy': [npy('<f8', [4], Float64Array.from([1, 2, 3, 4])), { level: 9 }],
      cls: { 'inner.npy': npy('<f2', [1], Uint16Array.from([0x3c00])) },
      'README.txt': new TextEncoder().encode('not an array'),
    });
    const tensors = readNpz(archive, 'tiny.npz');
    expect([...tensors.keys()].sort()).toEqual([
      'Transformer/encoder_norm/scale',
      'cls/inner',
      'embedding/kernel',
    ]);
    expect(tensors.get('embedding/kernel')?.shape).toEqual([2, 2, 3, 4]);
    expect(Array.from(tensors.get('embedding/kernel')?.data ?? [])).toEqual(Array.from(kernel));
    expect(Array.from(tensors.get('Transformer/encoder_norm/scale')?.data ?? [])).toEqual([1, 2, 3, 4]);
    expect(Array.from(tensors.get('cls/inner')?.data ?? [])).toEqual([1]);
  });

  it('names the archive and entry when an entry is malformed', () => {
    const archive = zipSync({ 'a.npy': npy('<f4', [3], Float32Array.from([1])) });
    expect(npzError(() => readNpz(archive, 'ViT-B_16.npz'))).toMatch(/^ViT-B_16\.npz:a\.npy: shape \(3,\)/);
  });

  it('rejects a corrupt zip with one error naming the source', () => {
    expect(npzError(() => readNpz(new TextEncoder().encode('definitely not a zip file'), 'bad.npz'))).toMatch(
      /^bad\.npz: not a readable zip archive/,
    );
    const archive = zipSync({ 'a.npy': [npy('<f4', [64], new Float32Array(64)), { level: 6 }] });
    // Damage the deflate stream of the single entry (it starts after the 30-byte local header and the name).
    const broken = archive.slice();
    for (let i = 30 + 'a.npy'.length; i < 30 + 'a.npy'.length + 8; i++) broken[i] = 0xff;
    expect(npzError(() => readNpz(broken, 'broken.npz'))).toMatch(
      /^broken\.npz:a\.npy: corrupt deflate data/,
    );
    expect(npzError(() => readNpz(archive.subarray(0, archive.length - 10), 'cut.npz'))).toMatch(
      /^cut\.npz: /,
    );
  });
});

describe('readNpz: archives from NumPy and hostile archives', () => {
  // np.savez(b, **{'a/b': np.arange(3, dtype=np.float32), 'c': np.array([[1.5, 2], [3, 4]])}) with NumPy 2.4:
  // stored entries whose local headers use zip64 sizes (NumPy forces zip64 for every entry).
  const SAVEZ =
    'UEsDBC0AAAAAAAAAIQC2jIZT//////////8HABQAYS9iLm5weQEAEACMAAAAAAAAAIwAAAAAAAAAk05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPwAAAEBQSwMELQAAAAAAAAAhAJ0Yojz//////////wUAFABjLm5weQEAEACgAAAAAAAAAKAAAAAAAAAAk05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAD4PwAAAAAAAABAAAAAAAAACEAAAAAAAAAQQFBLAQItAy0AAAAAAAAAIQC2jIZTjAAAAIwAAAAHAAAAAAAAAAAAAACAAQAAAABhL2IubnB5UEsBAi0DLQAAAAAAAAAhAJ0YojygAAAAoAAAAAUAAAAAAAAAAAAAAIABxQAAAGMubnB5UEsFBgAAAAACAAIAaAAAAJwBAAAAAA==';
  // np.savez_compressed(b, w=np.arange(6, dtype=np.float32).reshape(2, 3)): one deflated zip64 entry.
  const SAVEZ_COMPRESSED =
    'UEsDBC0AAAAIAAAAIQBP6QAq//////////8FABQAdy5ucHkBABAAmAAAAAAAAABVAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loG6TZqKuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GkY6CsaaOgq1CmQDLgYwaLAHEg5ABMQNQLzAAQBQSwECLQMtAAAACAAAACEAT+kAKlUAAACYAAAABQAAAAAAAAAAAAAAgAEAAAAAdy5ucHlQSwUGAAAAAAEAAQAzAAAAjAAAAAAA';
  const bytes = (base64: string) => new Uint8Array(Buffer.from(base64, 'base64'));

  it('reads what np.savez and np.savez_compressed write (zip64 local headers)', () => {
    const stored = readNpz(bytes(SAVEZ), 'savez.npz');
    expect(Array.from(stored.get('a/b')?.data ?? [])).toEqual([0, 1, 2]);
    expect(stored.get('c')).toEqual({ shape: [2, 2], data: Float32Array.from([1.5, 2, 3, 4]) });
    const compressed = readNpz(bytes(SAVEZ_COMPRESSED), 'compressed.npz');
    expect(compressed.get('w')).toEqual({ shape: [2, 3], data: Float32Array.from([0, 1, 2, 3, 4, 5]) });
  });

  /** A one-entry archive and the offsets of its central-directory record, for surgery. */
  function oneEntry(level: 0 | 9): { zip: Uint8Array; cd: number } {
    const zip = zipSync({ 'a.npy': [npy('<f4', [256], new Float32Array(256)), { level }] });
    const view = new DataView(zip.buffer);
    return { zip, cd: view.getUint32(zip.length - 22 + 16, true) };
  }

  it('refuses entries that share compressed data, before inflating anything', () => {
    const { zip, cd } = oneEntry(9);
    const record = zip.slice(cd, zip.length - 22);
    const second = record.slice();
    second.set(new TextEncoder().encode('b'), 46); // same data, another name
    const end = zip.slice(zip.length - 22);
    const view = new DataView(end.buffer);
    view.setUint16(8, 2, true);
    view.setUint16(10, 2, true);
    view.setUint32(12, record.length * 2, true);
    const shared = new Uint8Array([...zip.subarray(0, cd), ...record, ...second, ...end]);
    expect(npzError(() => readNpz(shared, 'shared.npz'))).toBe(
      'shared.npz: entries "a.npy" and "b.npy" overlap in the archive (they share compressed data, so reading ' +
        'both would inflate it twice); refusing the archive',
    );
  });

  it('refuses declared sizes over maxInflatedBytes, impossible sizes and duplicate names', () => {
    const { zip, cd } = oneEntry(9);
    const size = new DataView(zip.buffer).getUint32(cd + 24, true);
    expect(npzError(() => readNpz(zip, 'big.npz', { maxInflatedBytes: size - 1 }))).toBe(
      `big.npz: its 1 arrays declare ${size.toLocaleString('en-US')} bytes, over the limit of ` +
        `${(size - 1).toLocaleString('en-US')}; raise option "maxInflatedBytes" (peft: --model.maxNpzMb) if the file is genuine`,
    );
    expect(readNpz(zip, 'big.npz', { maxInflatedBytes: size }).get('a')?.shape).toEqual([256]);
    const liar = zip.slice();
    new DataView(liar.buffer).setUint32(cd + 24, 2 ** 31, true); // 2 GiB from a few dozen compressed bytes
    expect(npzError(() => readNpz(liar, 'liar.npz'))).toMatch(
      /^liar\.npz:a\.npy: declares 2147483648 bytes from \d+ compressed bytes, which is impossible$/,
    );
    const stored = oneEntry(0);
    const shortStored = stored.zip.slice();
    new DataView(shortStored.buffer).setUint32(stored.cd + 24, 10, true);
    expect(npzError(() => readNpz(shortStored, 's.npz'))).toMatch(
      /^s\.npz:a\.npy: declares 10 bytes from \d+ stored/,
    );
    const twice = zipSync({
      'a.npy': npy('<f4', [1], Float32Array.from([1])),
      'b.npy': npy('<f4', [1], Float32Array.from([2])),
    });
    const cd2 = new DataView(twice.buffer).getUint32(twice.length - 22 + 16, true);
    const renamed = twice.slice();
    const secondName = renamed.indexOf(0x62, cd2 + 46 + 5); // the "b" of the second record's name
    renamed[secondName] = 0x61;
    expect(npzError(() => readNpz(renamed, 'twice.npz'))).toBe(
      'twice.npz:a.npy: the archive holds this name twice',
    );
  });

  it('names the entry when it inflates to less than declared', () => {
    const { zip, cd } = oneEntry(9);
    const view = new DataView(zip.buffer);
    const size = view.getUint32(cd + 24, true);
    view.setUint32(cd + 24, size + 4, true);
    expect(npzError(() => readNpz(zip, 'short.npz'))).toBe(
      `short.npz:a.npy: inflates to ${size} bytes, not the ${size + 4} its directory entry declares`,
    );
  });
});

describe('parseNpy: deeply nested headers', () => {
  it('names the entry instead of overflowing the stack', () => {
    const deep = `{'descr': ${'['.repeat(100_000)}`;
    expect(npzError(() => parseNpy(npy('<f4', [1], [], { header: deep, version: 2 }), 'w.npz:a.npy'))).toBe(
      'w.npz:a.npy: invalid header at character 41: nested deeper than 32 levels (a .npy header is a flat dict)',
    );
  });
});
