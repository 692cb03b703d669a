import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setNativeThreads } from './gemm.js';
import { FUSED_KERNELS } from './kernel-names.js';
import { areFusedKernelsInstalled, installFusedKernels, uninstallFusedKernels } from './kernels.js';
import { nativeStatusForTests, randomFloats, tf, useBackend } from './test-helpers.js';

const status = nativeStatusForTests();

/** erf in float64: Maclaurin series below 3, the asymptotic erfc expansion above (both far below 1e-9 error). */
function erf64(x: number): number {
  const a = Math.abs(x);
  let value: number;
  if (a < 3) {
    let term = a;
    let sum = a;
    for (let n = 1; n < 80; n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    value = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let series = 1;
    let term = 1;
    for (let n = 1; n < 8; n++) {
      term *= -(2 * n - 1) / (2 * a * a);
      series += term;
    }
    value = 1 - (Math.exp(-a * a) / (a * Math.sqrt(Math.PI))) * series;
  }
  return x < 0 ? -value : value;
}
const cdf = (x: number) => 0.5 * (1 + erf64(x / Math.SQRT2));
const pdf = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

/** Inputs spread over [−scale, scale]; lengths that are not multiples of 8 exercise the scalar tails. */
function spread(count: number, seed: number, scale: number): Float32Array {
  return randomFloats(count, seed).map((v) => v * scale);
}

function maxAbsDiff(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++)
    worst = Math.max(worst, Math.abs((got[i] as number) - (want[i] as number)));
  return worst;
}

function run(
  name: string,
  inputs: Record<string, tf.Tensor>,
  attrs: Record<string, number> = {},
): tf.Tensor[] {
  const out = tf.engine().runKernel(name, inputs, attrs) as tf.Tensor | tf.Tensor[];
  return Array.isArray(out) ? out : [out];
}

/** LayerNorm forward and backward in float64, row by row. */
function layerNorm64(
  x: Float32Array,
  w: Float32Array,
  b: Float32Array,
  dy: Float32Array,
  dim: number,
  eps: number,
) {
  const rows = x.length / dim;
  const y = new Float64Array(x.length);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(dim);
  const db = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    const row = Array.from(x.subarray(r * dim, (r + 1) * dim));
    const mean = row.reduce((s, v) => s + v, 0) / dim;
    const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / dim;
    const rstd = 1 / Math.sqrt(variance + eps);
    const xh = row.map((v) => (v - mean) * rstd);
    const g = xh.map((_, i) => (dy[r * dim + i] as number) * (w[i] as number));
    const mg = g.reduce((s, v) => s + v, 0) / dim;
    const mgx = g.reduce((s, v, i) => s + v * (xh[i] as number), 0) / dim;
    for (let i = 0; i < dim; i++) {
      const k = r * dim + i;
      y[k] = (xh[i] as number) * (w[i] as number) + (b[i] as number);
      dx[k] = rstd * ((g[i] as number) - mg - (xh[i] as number) * mgx);
      dw[i] = (dw[i] as number) + (dy[k] as number) * (xh[i] as number);
      db[i] = (db[i] as number) + (dy[k] as number);
    }
  }
  return { y, dx, dw, db };
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe.skipIf(!status.ok)(`fused GELU and LayerNorm kernels on the ${backend} backend`, () => {
    beforeAll(async () => {
      await useBackend(backend);
      expect(installFusedKernels(backend)).toBe(true);
    });
    afterAll(() => {
      uninstallFusedKernels(backend);
      setNativeThreads(1);
    });

    for (const threads of [1, 2]) {
      it(`GELU and its gradient match float64 exact-erf references (${threads} thread(s), tails, large |x|)`, () => {
        setNativeThreads(threads);
        for (const [count, scale] of [
          [1, 3],
          [7, 3],
          [9, 9],
          [1003, 6],
          [70001, 12],
        ] as const) {
          const x = spread(count, count, scale);
          const dy = spread(count, count + 1, 1);
          const [y, dx] = tf.tidy(() => {
            const xt = tf.tensor1d(x);
            return [
              (run(FUSED_KERNELS.gelu, { x: xt })[0] as tf.Tensor).dataSync(),
              (run(FUSED_KERNELS.geluGrad, { dy: tf.tensor1d(dy), x: xt })[0] as tf.Tensor).dataSync(),
            ];
          });
          const wantY = Array.from(x, (v) => v * cdf(v));
          const wantDx = Array.from(x, (v, i) => (dy[i] as number) * (cdf(v) + v * pdf(v)));
          // The A&S erf tfjs also uses is good to 1.5e-7; times |x| ≤ 12 and float32 rounding.
          expect(maxAbsDiff(y as Float32Array, wantY)).toBeLessThan(2.5e-6);
          expect(maxAbsDiff(dx as Float32Array, wantDx)).toBeLessThan(2.5e-6);
        }
      });

      it(`LayerNorm and its three gradients match a float64 reference (${threads} thread(s))`, () => {
        setNativeThreads(threads);
        for (const [rows, dim] of [
          [1, 1],
          [3, 13],
          [5, 192],
          [300, 192],
        ] as const) {
          const x = spread(rows * dim, rows + dim, 4).map((v, i) => v + (i % dim) * 0.25 + 10);
          const w = spread(dim, 2 * dim, 1);
          const b = spread(dim, 3 * dim, 1);
          const dy = spread(rows * dim, 4 * dim, 1);
          const eps = 1e-6;
          const [y, dx, dw, db] = tf.tidy(() => {
            const [xt, wt, bt] = [tf.tensor2d(x, [rows, dim]), tf.tensor1d(w), tf.tensor1d(b)];
            const forward = run(FUSED_KERNELS.layerNorm, { x: xt, weight: wt, bias: bt }, { eps });
            const grads = run(
              FUSED_KERNELS.layerNormGrad,
              { dy: tf.tensor2d(dy, [rows, dim]), x: xt, weight: wt },
              { eps },
            );
            expect(grads.map((g) => g.shape)).toEqual([[rows, dim], [dim], [dim]]);
            return [forward[0] as tf.Tensor, ...grads].map((t) => t.dataSync());
          });
          const want = layerNorm64(x, w, b, dy, dim, eps);
          // dweight/dbias sum `rows` float32 products: allow rounding that grows with the row count.
          const sumTolerance = 1e-6 + 5e-7 * rows;
          expect(maxAbsDiff(y as Float32Array, want.y)).toBeLessThan(1e-5);
          expect(maxAbsDiff(dx as Float32Array, want.dx)).toBeLessThan(1e-5);
          expect(maxAbsDiff(dw as Float32Array, want.dw)).toBeLessThan(sumTolerance);
          expect(maxAbsDiff(db as Float32Array, want.db)).toBeLessThan(sumTolerance);
        }
      });
    }

    it('repeated calls allocate only their outputs (no tensor or byte growth)', () => {
      const x = tf.tensor2d(spread(64 * 48, 5, 2), [64, 48]);
      const w = tf.ones([48]) as tf.Tensor1D;
      const b = tf.zeros([48]) as tf.Tensor1D;
      const once = () =>
        tf.tidy(() => {
          run(FUSED_KERNELS.gelu, { x });
          run(FUSED_KERNELS.geluGrad, { dy: x, x });
          run(FUSED_KERNELS.layerNorm, { x, weight: w, bias: b }, { eps: 1e-6 });
          run(FUSED_KERNELS.layerNormGrad, { dy: x, x, weight: w }, { eps: 1e-6 });
        });
      once();
      const before = tf.memory();
      for (let i = 0; i < 5; i++) once();
      expect(tf.memory().numTensors).toBe(before.numTensors);
      expect(tf.memory().numBytes).toBe(before.numBytes);
      tf.dispose([x, w, b]);
    });

    it('a weight that does not match the last axis is one clear error', () => {
      const x = tf.zeros([2, 4]);
      const w = tf.zeros([3]);
      expect(() => run(FUSED_KERNELS.layerNorm, { x, weight: w, bias: w }, { eps: 1e-6 })).toThrow(
        /PeftjsLayerNorm: weight must have shape \[4\] \(the last axis of x\), got \[3\]/,
      );
      tf.dispose([x, w]);
    });

    it('installs once and uninstalls cleanly', () => {
      expect(installFusedKernels(backend)).toBe(true);
      expect(areFusedKernelsInstalled(backend)).toBe(true);
      expect(uninstallFusedKernels(backend)).toBe(true);
      expect(tf.getKernel(FUSED_KERNELS.gelu, backend)).toBeUndefined();
      expect(uninstallFusedKernels(backend)).toBe(false);
      expect(installFusedKernels(backend)).toBe(true);
      expect(tf.getKernel(FUSED_KERNELS.layerNormGrad, backend)).toBeDefined();
    });
  });
}
