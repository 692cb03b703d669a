import { describe, expect, it } from 'vitest';
import { nativeGemm } from './gemm.js';
import { nativeStatusForTests, randomFloats, referenceGemm, relativeMaxDiff } from './test-helpers.js';

const status = nativeStatusForTests();

function check(
  m: number,
  n: number,
  k: number,
  transposeA: boolean,
  transposeB: boolean,
  seed: number,
  batch = 1,
  broadcast: 'none' | 'a' | 'b' = 'none',
): number {
  const batchA = broadcast === 'a' ? 1 : batch;
  const batchB = broadcast === 'b' ? 1 : batch;
  const a = randomFloats(batchA * m * k, seed);
  const b = randomFloats(batchB * k * n, seed + 1);
  const got = nativeGemm(a, b, {
    m,
    n,
    k,
    batch,
    transposeA,
    transposeB,
    strideA: batchA === 1 ? 0 : m * k,
    strideB: batchB === 1 ? 0 : k * n,
  });
  const want = new Float64Array(batch * m * n);
  for (let i = 0; i < batch; i++) {
    const ai = batchA === 1 ? 0 : i * m * k;
    const bi = batchB === 1 ? 0 : i * k * n;
    referenceGemm(a, ai, b, bi, want, i * m * n, m, n, k, transposeA, transposeB);
  }
  return relativeMaxDiff(got, want);
}

const transposes = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;

describe.skipIf(!status.ok)('nativeGemm against a naive reference', () => {
  it('every combination of small odd sizes (1, 7, 17, 65) and all four transpose combinations', () => {
    const sizes = [1, 7, 17, 65];
    let seed = 1;
    for (const m of sizes)
      for (const n of sizes)
        for (const k of sizes)
          for (const [ta, tb] of transposes) {
            const diff = check(m, n, k, ta, tb, seed++);
            expect(diff, `m=${m} n=${n} k=${k} tA=${ta} tB=${tb}`).toBeLessThanOrEqual(1e-4);
          }
  });

  it('attention-like and block-crossing sizes (197, 267, 330, 641) with every transpose combination', () => {
    const shapes: [number, number, number][] = [
      [197, 267, 64],
      [197, 64, 267],
      [267, 197, 17],
      [65, 267, 197],
      [7, 197, 330],
      [33, 641, 5],
      [641, 23, 65],
    ];
    let seed = 100;
    for (const [m, n, k] of shapes)
      for (const [ta, tb] of transposes) {
        const diff = check(m, n, k, ta, tb, seed++);
        expect(diff, `m=${m} n=${n} k=${k} tA=${ta} tB=${tb}`).toBeLessThanOrEqual(1e-4);
      }
  });

  it('batches, and one A or one B broadcast against a batch of the other', () => {
    for (const [ta, tb] of transposes) {
      expect(check(17, 65, 7, ta, tb, 7, 5)).toBeLessThanOrEqual(1e-4);
      expect(check(17, 65, 7, ta, tb, 8, 4, 'a')).toBeLessThanOrEqual(1e-4);
      expect(check(65, 17, 33, ta, tb, 9, 3, 'b')).toBeLessThanOrEqual(1e-4);
    }
  });

  it('reads and writes at offsets without touching anything else', () => {
    const m = 7;
    const n = 17;
    const k = 65;
    const a = randomFloats(5 + m * k, 11);
    const b = randomFloats(3 + k * n, 12);
    const out = new Float32Array(9 + m * n + 4).fill(42);
    nativeGemm(a, b, { m, n, k, aOffset: 5, bOffset: 3, outOffset: 9 }, out);
    const want = new Float64Array(m * n);
    referenceGemm(a, 5, b, 3, want, 0, m, n, k, false, false);
    expect(relativeMaxDiff(out.subarray(9, 9 + m * n), want)).toBeLessThanOrEqual(1e-4);
    expect(Array.from(out.subarray(0, 9))).toEqual(new Array(9).fill(42));
    expect(Array.from(out.subarray(9 + m * n))).toEqual([42, 42, 42, 42]);
  });

  it('k = 0 gives zeros and empty shapes do nothing', () => {
    const out = nativeGemm(
      new Float32Array(0),
      new Float32Array(0),
      { m: 3, n: 4, k: 0 },
      new Float32Array(12).fill(5),
    );
    expect(Array.from(out)).toEqual(new Array(12).fill(0));
    expect(nativeGemm(new Float32Array(0), new Float32Array(6), { m: 0, n: 3, k: 2 }).length).toBe(0);
  });

  it('rejects arrays that are too small or of the wrong type instead of reading past them', () => {
    expect(() => nativeGemm(new Float32Array(5), new Float32Array(6), { m: 2, n: 2, k: 3 })).toThrow(
      /a is too small/,
    );
    expect(() => nativeGemm(new Float32Array(6), new Float32Array(5), { m: 2, n: 2, k: 3 })).toThrow(
      /b is too small/,
    );
    expect(() =>
      nativeGemm(new Float32Array(6), new Float32Array(6), { m: 2, n: 2, k: 3 }, new Float32Array(3)),
    ).toThrow(/c is too small/);
    expect(() =>
      nativeGemm(new Float32Array(6), new Float32Array(6), { m: 2, n: 2, k: 3, batch: 2, strideA: 6 }),
    ).toThrow(/a is too small/);
    expect(() =>
      nativeGemm(new Float64Array(6) as unknown as Float32Array, new Float32Array(6), { m: 2, n: 2, k: 3 }),
    ).toThrow(/Float32Array/);
    expect(() => nativeGemm(new Float32Array(6), new Float32Array(6), { m: 2.5, n: 2, k: 3 })).toThrow(
      /integer/,
    );
  });
});
