/**
 * Child process of scripts/native-isa.test.ts (not part of the package): loads the native kernels with whatever
 * PEFTJS_NATIVE_ISA the parent set, on whatever CPU runs it (under valgrind: an emulated CPU without AVX-512), runs
 * every kernel once on small odd shapes and prints one JSON line: the status and each kernel's largest error
 * against a float64 reference.
 *
 *   node --import tsx src/test-isa-child.ts
 */
import { loadNativeKernels, nativeGemm, requireAddon } from './gemm.js';
import { randomFloats, referenceGemm, relativeMaxDiff } from './test-reference.js';

const status = loadNativeKernels();
const errors: Record<string, number> = {};
if (status.ok) {
  const addon = requireAddon();
  const [m, n, k] = [29, 37, 19];
  const a = randomFloats(m * k, 1);
  const b = randomFloats(k * n, 2);
  const want = new Float64Array(m * n);
  for (const [ta, tb] of [
    [false, false],
    [true, true],
  ] as const) {
    referenceGemm(a, 0, b, 0, want, 0, m, n, k, ta, tb);
    errors[`gemm tA=${ta} tB=${tb}`] = relativeMaxDiff(
      nativeGemm(a, b, { m, n, k, transposeA: ta, transposeB: tb }),
      want,
    );
  }

  // linear: gelu(x·W + bias), W [k, n].
  referenceGemm(a, 0, b, 0, want, 0, m, n, k, false, false);
  const bias = randomFloats(n, 3);
  const erf = (x: number) => {
    // Abramowitz–Stegun 7.1.26 in float64 (|error| ≤ 1.5e-7), plenty for a 1e-5 check.
    const t = 1 / (1 + 0.3275911 * Math.abs(x));
    const y =
      1 -
      ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
        t *
        Math.exp(-x * x);
    return x < 0 ? -y : y;
  };
  const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
  const y = new Float32Array(m * n);
  addon.linear(a, 0, b, 0, bias, 0, y, 0, m, k, n, true, 1);
  errors['linear + bias + gelu'] = relativeMaxDiff(
    y,
    want.map((v, i) => gelu(v + (bias[i % n] as number))),
  );

  // softmax in two segments (split 11 of 37, weights 0.9 | 0.1).
  const x = randomFloats(m * n, 4).map((v) => v * 6);
  const s = new Float32Array(m * n);
  addon.softmax(x, 0, s, 0, m, n, 11, 0.9, 0.1, 2);
  const ref = new Float64Array(m * n);
  for (let r = 0; r < m; r++)
    for (const [lo, hi, w] of [
      [0, 11, 0.9],
      [11, n, 0.1],
    ] as const) {
      let max = Number.NEGATIVE_INFINITY;
      for (let j = lo; j < hi; j++) max = Math.max(max, x[r * n + j] as number);
      let sum = 0;
      for (let j = lo; j < hi; j++) sum += Math.exp((x[r * n + j] as number) - max);
      for (let j = lo; j < hi; j++) ref[r * n + j] = (w * Math.exp((x[r * n + j] as number) - max)) / sum;
    }
  errors['softmax two segments'] = relativeMaxDiff(s, ref);

  // LayerNorm over rows of 37.
  const ln = new Float32Array(m * n);
  const ones = new Float32Array(n).fill(1);
  const zeros = new Float32Array(n);
  addon.layerNorm(x, 0, ones, 0, zeros, 0, ln, 0, m, n, 1e-6, 2);
  const lnRef = new Float64Array(m * n);
  for (let r = 0; r < m; r++) {
    const row = Array.from(x.subarray(r * n, (r + 1) * n));
    const mean = row.reduce((p, v) => p + v, 0) / n;
    const variance = row.reduce((p, v) => p + (v - mean) ** 2, 0) / n;
    row.forEach((v, j) => {
      lnRef[r * n + j] = (v - mean) / Math.sqrt(variance + 1e-6);
    });
  }
  errors.layerNorm = relativeMaxDiff(ln, lnRef);

  // y = x + bias (a trailing vector), then a head-split transpose [m, n] → [n, m] of it.
  const sum = new Float32Array(m * n);
  addon.binary(0, x, 0, bias, 0, sum, 0, m * n, n, 2);
  errors['add (bias)'] = relativeMaxDiff(
    sum,
    Float64Array.from(x, (v, i) => v + (bias[i % n] as number)),
  );
  const t = new Float32Array(m * n);
  addon.transpose(sum, 0, t, 0, [m, n], [1, 0], 2);
  errors.transpose = relativeMaxDiff(
    t,
    Float64Array.from(t, (_, i) => sum[(i % m) * n + Math.floor(i / m)] as number),
  );
}
process.stdout.write(`${JSON.stringify({ status, errors })}\n`);
