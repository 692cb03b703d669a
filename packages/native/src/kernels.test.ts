import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadAddon } from './addon.js';
import {
  installNativeMatMul,
  isNativeMatMulInstalled,
  stockMatMulKernel,
  uninstallNativeMatMul,
} from './kernels.js';
import {
  nativeStatusForTests,
  randomFloats,
  referenceGemm,
  relativeMaxDiff,
  tf,
  useBackend,
} from './test-helpers.js';

const status = nativeStatusForTests();

type Case = { a: number[]; b: number[]; transposeA?: boolean; transposeB?: boolean };

const cases: Case[] = [
  { a: [7, 17], b: [17, 65] },
  { a: [1, 1], b: [1, 1] },
  { a: [65, 7], b: [65, 17], transposeA: true },
  { a: [7, 65], b: [17, 65], transposeB: true },
  { a: [65, 7], b: [17, 65], transposeA: true, transposeB: true },
  { a: [3, 197, 64], b: [3, 64, 267] },
  { a: [3, 197, 64], b: [3, 267, 64], transposeB: true },
  { a: [3, 197, 267], b: [3, 267, 64] },
  { a: [3, 267, 197], b: [3, 267, 64], transposeA: true },
  { a: [2, 3, 17, 7], b: [2, 3, 7, 17] },
  { a: [1, 17, 7], b: [4, 7, 65] }, // one A broadcast against a batch of B
  { a: [4, 17, 7], b: [7, 65] }, // rank-2 B broadcast
  { a: [17, 7], b: [2, 2, 7, 5], transposeA: false },
  { a: [4, 7, 17], b: [1, 65, 7], transposeA: true, transposeB: true },
];

/** Runs fn with the stock kernel temporarily restored. */
function withStock<T>(backend: 'wasm' | 'cpu', fn: () => T): T {
  uninstallNativeMatMul(backend);
  try {
    return fn();
  } finally {
    installNativeMatMul(backend);
  }
}

function tensorFor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(
    randomFloats(
      shape.reduce((p, d) => p * d, 1),
      seed,
    ),
    shape,
  );
}

/** A small ViT-like block: qkv projection, multi-head attention (transposed and plain matmuls), MLP, loss. */
function vitLikeLoss(
  x: tf.Tensor,
  wQkv: tf.Tensor,
  wOut: tf.Tensor,
  w1: tf.Tensor,
  w2: tf.Tensor,
): tf.Scalar {
  const [batch, tokens, dim] = x.shape as [number, number, number];
  const heads = 2;
  const dh = dim / heads;
  const qkv = tf.reshape(tf.matMul(tf.reshape(x, [-1, dim]), wQkv), [batch, tokens, 3, heads, dh]);
  const perm = tf.transpose(qkv, [2, 0, 3, 1, 4]); // [3, B, H, N, dh]
  const [q, k, v] = tf.unstack(perm) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
  const logits = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh));
  const probs = tf.softmax(logits);
  const context = tf.matMul(probs, v); // [B, H, N, dh]
  const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [-1, dim]);
  const attn = tf.add(tf.reshape(x, [-1, dim]), tf.matMul(merged, wOut));
  const hidden = tf.relu(tf.matMul(attn, w1));
  const out = tf.add(attn, tf.matMul(hidden, w2, false, false));
  // A transposed-A product as in a Gram matrix, so every kernel path shows up in the backward pass.
  const gram = tf.matMul(out, out, true, false);
  return tf.add(tf.mean(tf.square(out)), tf.mul(tf.mean(gram), 1e-3)) as tf.Scalar;
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe.skipIf(!status.ok)(`BatchMatMul replaced on the ${backend} backend`, () => {
    beforeAll(async () => {
      await useBackend(backend);
      expect(installNativeMatMul(backend)).toBe(true);
    });
    afterAll(() => {
      uninstallNativeMatMul(backend);
    });

    it('installs once, keeps the stock kernel, and uninstalls back to it', () => {
      const installed = tf.getKernel('BatchMatMul', backend);
      const stock = stockMatMulKernel(backend);
      expect(stock).toBeDefined();
      expect(installed?.kernelFunc).not.toBe(stock?.kernelFunc);
      expect(installNativeMatMul(backend)).toBe(true); // second install: no-op
      expect(uninstallNativeMatMul(backend)).toBe(true);
      expect(tf.getKernel('BatchMatMul', backend)?.kernelFunc).toBe(stock?.kernelFunc);
      expect(isNativeMatMulInstalled(backend)).toBe(false);
      expect(uninstallNativeMatMul(backend)).toBe(false);
      expect(installNativeMatMul(backend)).toBe(true);
      expect(isNativeMatMulInstalled(backend)).toBe(true);
      expect(tf.getKernel('BatchMatMul', backend)?.kernelFunc).not.toBe(stock?.kernelFunc);
    });

    it('tf.matMul (and the matmuls inside gradients) run the native GEMM', () => {
      const loaded = loadAddon();
      if (!('addon' in loaded)) throw new Error(loaded.reason);
      const spy = vi.spyOn(loaded.addon, 'gemm');
      try {
        tf.tidy(() => {
          const a = tensorFor([2, 5, 3], 3);
          const b = tensorFor([2, 3, 4], 4);
          tf.matMul(a, b).dataSync();
          expect(spy).toHaveBeenCalledTimes(1);
          tf.grads((x: tf.Tensor) => tf.sum(tf.matMul(x, b)))([a])[0]!.dataSync();
          expect(spy.mock.calls.length).toBeGreaterThanOrEqual(3);
        });
      } finally {
        spy.mockRestore();
      }
    });

    it('tf.matMul matches the stock kernel (transposes, batches, broadcasting)', () => {
      let seed = 1;
      for (const c of cases) {
        tf.tidy(() => {
          const a = tensorFor(c.a, seed++);
          const b = tensorFor(c.b, seed++);
          const ta = c.transposeA ?? false;
          const tb = c.transposeB ?? false;
          const got = tf.matMul(a, b, ta, tb);
          const want = withStock(backend, () => tf.matMul(a, b, ta, tb));
          expect(got.shape, JSON.stringify(c)).toEqual(want.shape);
          expect(relativeMaxDiff(got.dataSync(), want.dataSync()), JSON.stringify(c)).toBeLessThanOrEqual(
            1e-4,
          );
        });
      }
    });

    it('general batch broadcasting ([2,1]×[1,3] batch dims) follows NumPy semantics', () => {
      tf.tidy(() => {
        const [m, k, n] = [5, 7, 3];
        const aData = randomFloats(2 * m * k, 31);
        const bData = randomFloats(3 * k * n, 32);
        const got = tf.matMul(tf.tensor(aData, [2, 1, m, k]), tf.tensor(bData, [1, 3, k, n]));
        expect(got.shape).toEqual([2, 3, m, n]);
        const want = new Float64Array(6 * m * n);
        for (let i = 0; i < 2; i++)
          for (let j = 0; j < 3; j++)
            referenceGemm(
              aData,
              i * m * k,
              bData,
              j * k * n,
              want,
              (i * 3 + j) * m * n,
              m,
              n,
              k,
              false,
              false,
            );
        expect(relativeMaxDiff(got.dataSync(), want)).toBeLessThanOrEqual(1e-4);
      });
    });

    it('empty products and k = 0 give empty and zero results like tfjs', () => {
      tf.tidy(() => {
        expect(tf.matMul(tf.zeros([0, 4]), tf.zeros([4, 3])).shape).toEqual([0, 3]);
        const zeros = tf.matMul(tf.ones([2, 0]), tf.ones([0, 3]));
        expect(Array.from(zeros.dataSync())).toEqual([0, 0, 0, 0, 0, 0]);
        expect(() => tf.matMul(tf.ones([2, 3]), tf.ones([4, 2]))).toThrow(/inner shapes/);
      });
    });

    it('int32 inputs fall back to the stock kernel', () => {
      tf.tidy(() => {
        const a = tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32');
        if (backend === 'cpu') {
          expect(Array.from(tf.matMul(a, a).dataSync())).toEqual([7, 10, 15, 22]);
        } else {
          // The stock wasm kernel rejects int32; the replacement must behave the same.
          expect(() => tf.matMul(a, a)).toThrow(/float32/);
        }
      });
    });

    it('gradients of a ViT-like loss through tf.grads match the stock kernel', () => {
      tf.tidy(() => {
        const params = [
          tensorFor([2, 9, 8], 41),
          tf.mul(tensorFor([8, 24], 42), 0.3),
          tf.mul(tensorFor([8, 8], 43), 0.3),
          tf.mul(tensorFor([8, 16], 44), 0.3),
          tf.mul(tensorFor([16, 8], 45), 0.3),
        ];
        const f = (...xs: tf.Tensor[]) => vitLikeLoss(xs[0]!, xs[1]!, xs[2]!, xs[3]!, xs[4]!);
        const got = tf.grads(f)(params);
        const want = withStock(backend, () => tf.grads(f)(params));
        for (let i = 0; i < params.length; i++) {
          expect(relativeMaxDiff(got[i]!.dataSync(), want[i]!.dataSync()), `grad ${i}`).toBeLessThanOrEqual(
            1e-4,
          );
        }
      });
    });

    it('writes correctly when allocating the output grows WebAssembly memory', () => {
      const heapFloats = () =>
        backend === 'wasm'
          ? (tf.backend() as unknown as { wasm: { HEAPF32: Float32Array } }).wasm.HEAPF32.length
          : 0;
      const before = heapFloats();
      // An output larger than the whole current heap forces the allocator to grow WebAssembly memory.
      const m = 1024;
      const k = 16;
      const n = Math.min(64 * 1024, Math.max(4096, Math.ceil((before * 1.25) / m / 16) * 16));
      tf.tidy(() => {
        const aData = randomFloats(m * k, 51);
        const bData = randomFloats(k * n, 52);
        const got = tf.matMul(tf.tensor2d(aData, [m, k]), tf.tensor2d(bData, [k, n])).dataSync();
        for (const [i, j] of [
          [0, 0],
          [m - 1, n - 1],
          [517, n >> 1],
          [17, n - 3],
        ] as const) {
          let sum = 0;
          for (let p = 0; p < k; p++) sum += (aData[i * k + p] as number) * (bData[p * n + j] as number);
          expect(Math.abs((got[i * n + j] as number) - sum)).toBeLessThanOrEqual(1e-4);
        }
      });
      if (backend === 'wasm') expect(heapFloats()).toBeGreaterThan(before);
    });

    it('leaks no tensors and no backend buffers over repeated calls', () => {
      const a = tensorFor([3, 17, 65], 61);
      const b = tensorFor([3, 33, 65], 62);
      const run = () =>
        tf.tidy(() => {
          const y = tf.matMul(a, b, false, true);
          const g = tf.grads((x: tf.Tensor) => tf.sum(tf.matMul(x, b, false, true)))([a]);
          return tf.add(tf.sum(y), tf.sum(g[0]!)).dataSync()[0];
        });
      run();
      const tensors = tf.memory().numTensors;
      const buffers = tf.engine().backend.numDataIds();
      for (let i = 0; i < 10; i++) run();
      expect(tf.memory().numTensors).toBe(tensors);
      expect(tf.engine().backend.numDataIds()).toBe(buffers);
      a.dispose();
      b.dispose();
    });
  });
}
