import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { createRng } from './random.js';
import { tf } from './tf.js';
import {
  areWasmCopyFreeKernelsInstalled,
  installWasmCopyFreeKernels,
  uninstallWasmCopyFreeKernels,
} from './wasm-kernels.js';

/** Runs `fn` once with tfjs's stock wasm kernels and once with the copy-free ones; returns both results' values. */
function bothWays(fn: () => tf.Tensor | tf.Tensor[]): [Float32Array[], Float32Array[]] {
  const run = () =>
    tf.tidy(() => {
      const out = fn();
      return (Array.isArray(out) ? out : [out]).map((t) => t.dataSync() as Float32Array);
    });
  uninstallWasmCopyFreeKernels();
  const stockValues = run();
  installWasmCopyFreeKernels();
  return [stockValues, run()];
}

describe('copy-free wasm kernels', () => {
  const rng = createRng(7);
  let x5: tf.Tensor;
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm', log: false });
    x5 = tf.tensor(
      Array.from({ length: 2 * 3 * 4 * 5 * 6 }, () => rng.normal()),
      [2, 3, 4, 5, 6],
    );
  });
  afterAll(() => x5.dispose());

  it('initBackend installs them on wasm', () => {
    expect(tf.getBackend()).toBe('wasm');
    expect(areWasmCopyFreeKernelsInstalled()).toBe(true);
  });

  it('Slice matches the stock kernel bit for bit at every rank, begin and size', () => {
    for (let trial = 0; trial < 60; trial++) {
      const rank = 1 + (trial % 5);
      const x = rank === 5 ? x5 : tf.reshape(x5, [...[2, 3, 4, 5, 6].slice(0, rank - 1), -1]);
      const begin = x.shape.map((d) => Math.floor(rng.uniform(0, 1) * d));
      const size = x.shape.map((d, i) => 1 + Math.floor(rng.uniform(0, 1) * (d - (begin[i] as number))));
      const [stockValues, fast] = bothWays(() => tf.slice(x, begin, size));
      expect(fast).toEqual(stockValues);
      if (x !== x5) x.dispose();
    }
  });

  it('whole trailing axes and the whole tensor slice correctly (the folded contiguous runs)', () => {
    const [a, b] = bothWays(() => [
      tf.slice(x5, [1, 0, 0, 0, 0], [1, 3, 4, 5, 6]),
      tf.slice(x5, [0, 1, 0, 0, 0], [2, 2, 4, 5, 6]),
      tf.slice(x5, [0, 0, 0, 0, 0], [2, 3, 4, 5, 6]),
      tf.slice(x5, [0, 0, 1, 2, 0], [2, 3, 3, 3, 6]),
    ]);
    expect(b).toEqual(a);
  });

  it('SplitV matches the stock kernel on every axis, equal and uneven splits', () => {
    for (let axis = 0; axis < 5; axis++) {
      const d = x5.shape[axis] as number;
      const [a, b] = bothWays(() => [
        ...tf.split(x5, d, axis),
        ...(d > 2 ? tf.split(x5, [1, d - 1], axis) : []),
      ]);
      expect(b).toEqual(a);
    }
  });

  it('gradients through slice and split are unchanged', () => {
    const loss = (t: tf.Tensor) => {
      const [p, q] = tf.split(t, [2, 4], 4);
      return tf
        .sum(tf.mul(tf.slice(p as tf.Tensor, [0, 1, 0, 0, 0], [2, 2, 4, 5, 2]), 3))
        .add(tf.sum(q as tf.Tensor));
    };
    const [a, b] = bothWays(() => tf.grad(loss)(x5));
    expect(b).toEqual(a);
  });

  it('Identity shares the buffer: clones stay valid after the original is disposed, and nothing leaks', () => {
    const tensorsBefore = tf.memory().numTensors;
    const bytesBefore = tf.memory().numBytes;
    const original = tf.tensor1d([1, 2, 3]);
    const copy = tf.clone(original);
    original.dispose();
    expect(Array.from(copy.dataSync())).toEqual([1, 2, 3]);
    copy.dispose();
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(tf.memory().numBytes).toBe(bytesBefore);
  });

  it('a training-style loop holds its tensor count steady across steps', () => {
    const w = tf.variable(tf.slice(x5, [0, 0, 0, 0, 0], [1, 1, 1, 5, 6]));
    const step = () =>
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() =>
          tf.sum(tf.mul(tf.split(tf.reshape(x5, [-1, 5, 6]), 2, 0)[0] as tf.Tensor, w)),
        );
        w.assign(tf.sub(w, tf.mul(grads[w.name] as tf.Tensor, 0.01)));
      });
    step();
    const after1 = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) step();
    expect(tf.memory().numTensors).toBe(after1);
    w.dispose();
  });

  it('string tensors keep the stock kernels', () => {
    const s = tf.tensor1d(['a', 'b', 'c'], 'string');
    const parts = [0, 1, 2].map((i) => tf.slice(s, [i], [1]));
    expect(parts.map((p) => p.dataSync()[0])).toEqual(['a', 'b', 'c']);
    const c = tf.clone(s);
    s.dispose();
    expect(Array.from(c.dataSync())).toEqual(['a', 'b', 'c']);
    tf.dispose([c, ...parts]);
  });

  it('install and uninstall are idempotent and report what they did', () => {
    expect(installWasmCopyFreeKernels()).toBe(true);
    expect(uninstallWasmCopyFreeKernels()).toBe(true);
    expect(uninstallWasmCopyFreeKernels()).toBe(false);
    expect(areWasmCopyFreeKernelsInstalled()).toBe(false);
    expect(installWasmCopyFreeKernels()).toBe(true);
    expect(installWasmCopyFreeKernels()).toBe(true);
  });
});
