import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setNativeThreads } from './gemm.js';
import { FUSED_KERNELS } from './kernel-names.js';
import { installFusedKernels, uninstallFusedKernels } from './kernels.js';
import {
  nativeStatusForTests,
  randomFloats,
  referenceGemm,
  relativeMaxDiff,
  tf,
  useBackend,
} from './test-helpers.js';

const status = nativeStatusForTests();

function run(
  name: string,
  inputs: Record<string, tf.Tensor>,
  attrs: Record<string, unknown> = {},
): tf.Tensor {
  return tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;
}

/** erf to ~1e-7 (Abramowitz–Stegun 7.1.26) in float64; GELU through it. */
function gelu64(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const poly =
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
  const erf = (1 - poly * Math.exp(-z * z)) * Math.sign(x);
  return 0.5 * x * (1 + erf);
}

/** Float64 two-segment softmax of each row and its gradient for the upstream gradient dy. */
function segmentSoftmax64(x: Float32Array, dy: Float32Array, n: number, split: number, w: [number, number]) {
  const y = new Float64Array(x.length);
  const dx = new Float64Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    for (const [lo, hi, weight] of [
      [0, split, w[0]],
      [split, n, w[1]],
    ] as const) {
      if (hi <= lo) continue;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = lo; j < hi; j++) max = Math.max(max, x[r * n + j] as number);
      let sum = 0;
      for (let j = lo; j < hi; j++) sum += Math.exp((x[r * n + j] as number) - max);
      let dot = 0; // Σ s·dy over the segment (s the unweighted softmax)
      for (let j = lo; j < hi; j++) {
        const s = Math.exp((x[r * n + j] as number) - max) / sum;
        y[r * n + j] = weight * s;
        dot += s * (dy[r * n + j] as number);
      }
      for (let j = lo; j < hi; j++)
        dx[r * n + j] = (y[r * n + j] as number) * ((dy[r * n + j] as number) - dot);
    }
  }
  return { y, dx };
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe.skipIf(!status.ok)(`linear (GEMM epilogue) and segment softmax kernels on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
      expect(installFusedKernels(backend)).toBe(true);
    });
    afterAll(() => {
      uninstallFusedKernels(backend);
      setNativeThreads(1);
    });

    for (const threads of [1, 2]) {
      it(`linear: x·W + bias, and GELU(x·W + bias), match float64 (${threads} thread(s), edges, rank 3)`, () => {
        setNativeThreads(threads);
        for (const [rows, inF, outF] of [
          [1, 1, 1],
          [13, 7, 33],
          [75, 192, 17],
          [257, 65, 300],
        ] as const) {
          const x = randomFloats(rows * inF, rows);
          const w = randomFloats(inF * outF, inF);
          const b = randomFloats(outF, outF);
          const gemm = new Float64Array(rows * outF);
          referenceGemm(x, 0, w, 0, gemm, 0, rows, outF, inF, false, false);
          const withBias = gemm.map((v, i) => v + (b[i % outF] as number));
          const [plain, biased, activated] = tf.tidy(() => {
            const xt = tf.tensor3d(x, [1, rows, inF]);
            const wt = tf.tensor2d(w, [inF, outF]);
            const bt = tf.tensor1d(b);
            const outs = [
              run(FUSED_KERNELS.linear, { x: xt, weight: wt }),
              run(FUSED_KERNELS.linear, { x: xt, weight: wt, bias: bt }, { activation: 'linear' }),
              run(FUSED_KERNELS.linear, { x: xt, weight: wt, bias: bt }, { activation: 'gelu' }),
            ];
            for (const o of outs) expect(o.shape).toEqual([1, rows, outF]);
            return outs.map((o) => o.dataSync());
          });
          const label = `${rows}×${inF}·${inF}×${outF}`;
          expect(relativeMaxDiff(plain as Float32Array, gemm), label).toBeLessThanOrEqual(1e-5);
          expect(relativeMaxDiff(biased as Float32Array, withBias), label).toBeLessThanOrEqual(1e-5);
          expect(relativeMaxDiff(activated as Float32Array, withBias.map(gelu64)), label).toBeLessThanOrEqual(
            1e-5,
          );
        }
      });

      it(`segment softmax and its gradient match float64 (${threads} thread(s), splits, zero weights)`, () => {
        setNativeThreads(threads);
        const cases: [number, number, number, [number, number]][] = [
          [3, 1, 1, [1, 1]],
          [5, 37, 37, [1, 1]], // one segment: the plain softmax
          [4, 267, 197, [0.9, 0.1]], // decoupled attention: image keys | prompt keys
          [600, 75, 65, [1, 0.1]], // additive mix
          [2, 40, 0, [0.5, 2]], // empty first segment
          [3, 21, 5, [0, 1]], // λ = 1: the image path weighs nothing
        ];
        for (const [rows, n, split, weights] of cases) {
          const x = randomFloats(rows * n, n + split).map((v) => v * 8);
          const dy = randomFloats(rows * n, n + 2 * split);
          const want = segmentSoftmax64(x, dy, n, split, weights);
          const attrs = { split, weight0: weights[0], weight1: weights[1] };
          const [y, dx] = tf.tidy(() => {
            const yt = run(FUSED_KERNELS.softmax, { x: tf.tensor2d(x, [rows, n]) }, attrs);
            const dxt = run(FUSED_KERNELS.softmaxGrad, { dy: tf.tensor2d(dy, [rows, n]), y: yt }, attrs);
            return [yt.dataSync(), dxt.dataSync()];
          });
          const label = `rows ${rows}, n ${n}, split ${split}, weights ${weights}`;
          expect(relativeMaxDiff(y as Float32Array, want.y), label).toBeLessThanOrEqual(2e-7);
          expect(relativeMaxDiff(dx as Float32Array, want.dx), label).toBeLessThanOrEqual(1e-6);
        }
      });
    }

    it('softmax without attributes is the plain softmax (tf.softmax to float rounding)', () => {
      const x = tf.randomNormal([3, 4, 50], 0, 3, 'float32', 7);
      const got = run(FUSED_KERNELS.softmax, { x });
      expect(relativeMaxDiff(got.dataSync(), tf.softmax(x).dataSync())).toBeLessThanOrEqual(2e-7);
      tf.dispose([x, got]);
    });

    it('shape and attribute errors name the kernel and what is wrong', () => {
      tf.tidy(() => {
        const x = tf.zeros([2, 4]);
        expect(() => run(FUSED_KERNELS.linear, { x, weight: tf.zeros([3, 5]) })).toThrow(
          /PeftjsLinear: weight must be \[4, out\] for x \[2,4\], got \[3,5\]/,
        );
        expect(() => run(FUSED_KERNELS.linear, { x, weight: tf.zeros([4, 5]), bias: tf.zeros([4]) })).toThrow(
          /PeftjsLinear: bias must be \[5\], got \[4\]/,
        );
        expect(() =>
          run(FUSED_KERNELS.linear, { x, weight: tf.zeros([4, 5]) }, { activation: 'relu' }),
        ).toThrow(/activation must be "linear" or "gelu", got "relu"/);
        expect(() => run(FUSED_KERNELS.softmax, { x }, { split: 5 })).toThrow(
          /PeftjsSoftmax: split must be an integer in \[0, 4\] \(the last axis\), got 5/,
        );
        expect(() => run(FUSED_KERNELS.softmaxGrad, { dy: tf.zeros([2, 3]), y: x })).toThrow(
          /dy \[2,3\] and y \[2,4\] differ in shape/,
        );
      });
    });

    it('repeated calls allocate only their outputs', () => {
      const x = tf.randomNormal([64, 48], 0, 1, 'float32', 3);
      const w = tf.randomNormal([48, 40], 0, 1, 'float32', 4);
      const once = () =>
        tf.tidy(() => {
          const y = run(FUSED_KERNELS.softmax, { x }, { split: 20, weight0: 0.9, weight1: 0.1 });
          run(FUSED_KERNELS.softmaxGrad, { dy: x, y }, { split: 20, weight0: 0.9, weight1: 0.1 });
          run(FUSED_KERNELS.linear, { x, weight: w }, { activation: 'gelu' });
        });
      once();
      const before = tf.memory();
      for (let i = 0; i < 5; i++) once();
      expect(tf.memory().numTensors).toBe(before.numTensors);
      expect(tf.memory().numBytes).toBe(before.numBytes);
      tf.dispose([x, w]);
    });
  });
}
