import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  installNativeElementwise,
  isNativeElementwiseInstalled,
  uninstallNativeElementwise,
} from './elementwise.js';
import { setNativeThreads } from './gemm.js';
import { nativeStatusForTests, randomFloats, tf, useBackend } from './test-helpers.js';

const status = nativeStatusForTests();

const tensor = (shape: number[], seed: number) =>
  tf.tensor(
    randomFloats(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ),
    shape,
  );

/** Runs fn with tfjs's own kernels, then with the native ones; returns both results' values and shapes. */
function bothWays(backend: 'wasm' | 'cpu', fn: () => tf.Tensor): { stock: tf.Tensor; native: tf.Tensor } {
  uninstallNativeElementwise(backend);
  const stock = tf.tidy(fn);
  installNativeElementwise(backend);
  return { stock, native: tf.tidy(fn) };
}

function expectSame(backend: 'wasm' | 'cpu', label: string, fn: () => tf.Tensor): void {
  const { stock, native } = bothWays(backend, fn);
  expect(native.shape, label).toEqual(stock.shape);
  expect(native.dtype, label).toBe(stock.dtype);
  // Element-wise ops and transposes are exact: the same float operation on the same operands.
  expect(Array.from(native.dataSync()), label).toEqual(Array.from(stock.dataSync()));
  tf.dispose([stock, native]);
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe.skipIf(!status.ok)(`native Add/Sub/Multiply/Transpose on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
      expect(installNativeElementwise(backend)).toBe(true);
    });
    afterAll(() => {
      uninstallNativeElementwise(backend);
      setNativeThreads(1);
    });

    for (const threads of [1, 2]) {
      it(`element-wise ops equal tfjs's bit for bit: same shapes, scalars, trailing vectors (${threads} thread(s))`, () => {
        setNativeThreads(threads);
        const cases: [number[], number[]][] = [
          [
            [16, 75, 192],
            [16, 75, 192],
          ], // residual add (two-threaded size)
          [
            [7, 13],
            [7, 13],
          ],
          [[1576, 576], [576]], // bias
          [
            [3, 5, 7],
            [1, 7],
          ],
          [[16, 3, 75, 64], []], // q · scale
          [[], [4, 9]], // scalar first: commutative ops swap it
          [
            [1, 33],
            [5, 33],
          ],
          [[3], [3]],
        ];
        for (const [sa, sb] of cases)
          for (const [name, op] of [
            ['add', tf.add],
            ['sub', tf.sub],
            ['mul', tf.mul],
          ] as const)
            expectSame(backend, `${name} [${sa}] [${sb}]`, () => op(tensor(sa, 1), tensor(sb, 2)));
      });

      it(`transposes equal tfjs's for ranks 2–5 and every kind of permutation (${threads} thread(s))`, () => {
        setNativeThreads(threads);
        const cases: [number[], number[]][] = [
          [
            [16, 75, 9, 64],
            [0, 2, 1, 3],
          ], // head split
          [
            [16, 3, 75, 64],
            [0, 2, 1, 3],
          ], // head merge
          [
            [65, 17],
            [1, 0],
          ],
          [
            [4, 5, 6],
            [2, 0, 1],
          ],
          [
            [2, 3, 4, 5, 6],
            [4, 3, 2, 1, 0],
          ],
          [
            [2, 3, 4, 5, 6],
            [0, 1, 3, 2, 4],
          ],
          [
            [1, 7, 1, 5],
            [3, 2, 1, 0],
          ],
        ];
        for (const [shape, perm] of cases)
          expectSame(backend, `transpose [${shape}] by [${perm}]`, () =>
            tf.transpose(tensor(shape, 3), perm),
          );
      });
    }

    it('other cases run the stock kernels: general broadcasting, integers, identity permutations', () => {
      expectSame(backend, 'add [2,1] [1,3]', () => tf.add(tensor([2, 1], 1), tensor([1, 3], 2)));
      expectSame(backend, 'sub [1,3] [2,3]', () => tf.sub(tensor([1, 3], 1), tensor([2, 3], 2)));
      expectSame(backend, 'int32 add', () =>
        tf.add(tf.tensor1d([1, 2, 3], 'int32'), tf.tensor1d([4, 5, 6], 'int32')),
      );
      expectSame(backend, 'identity transpose', () => tf.transpose(tensor([3, 4], 5), [0, 1]));
      expectSame(backend, 'int32 transpose', () => tf.transpose(tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32')));
      expectSame(backend, 'empty add', () => tf.add(tf.zeros([0, 3]), tf.zeros([0, 3])));
    });

    it('gradients through the replaced kernels equal the stock ones, and nothing leaks', () => {
      const x = tensor([4, 6, 8], 7);
      const w = tensor([8], 8);
      const loss = (t: tf.Tensor) =>
        tf.sum(tf.mul(tf.transpose(tf.sub(tf.add(t, w), tf.mul(t, 0.5)), [2, 0, 1]), 3));
      const { stock, native } = bothWays(backend, () => tf.grad(loss)(x));
      expect(Array.from(native.dataSync())).toEqual(Array.from(stock.dataSync()));
      tf.dispose([stock, native]);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) tf.dispose(tf.grad(loss)(x));
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, w]);
    });

    it('installs once and uninstalls cleanly', () => {
      expect(installNativeElementwise(backend)).toBe(true);
      expect(isNativeElementwiseInstalled(backend)).toBe(true);
      const native = tf.getKernel('Add', backend);
      expect(uninstallNativeElementwise(backend)).toBe(true);
      expect(tf.getKernel('Add', backend)).not.toBe(native);
      expect(uninstallNativeElementwise(backend)).toBe(false);
      expect(installNativeElementwise(backend)).toBe(true);
    });
  });
}
