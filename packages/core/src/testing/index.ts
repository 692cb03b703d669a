/**
 * Test helpers shared by every PEFT.js package (and usable by plugin authors): the backend matrix, a tensor-leak
 * check and tensor closeness assertions. Import from `@peftjs/core/testing`; requires vitest.
 */
import { beforeAll, describe, expect } from 'vitest';
import { availableBackends, initBackend, type ConcreteBackend } from '../backend.js';
import { installFastMatMulGradient } from '../ops.js';
import { tf } from '../tf.js';
import type { Tensor } from '../tf.js';

export { InjectedFault, faultyFs } from './faults.js';

let matrix: Promise<ConcreteBackend[]> | null = null;

/**
 * Every backend that loads on this machine (cpu and wasm always; tfjs-node where installed), optionally narrowed
 * by `PEFTJS_TEST_BACKENDS=cpu,wasm`.
 */
export function testBackends(): Promise<ConcreteBackend[]> {
  matrix ??= availableBackends().then((found) => {
    const wanted = process.env.PEFTJS_TEST_BACKENDS?.split(',').map((s) => s.trim());
    return wanted ? found.filter((b) => wanted.includes(b)) : found;
  });
  return matrix;
}

/** `describe` once per backend of the matrix, with that backend active for the block's tests. */
export async function describeBackends(
  name: string,
  body: (backend: ConcreteBackend) => void,
): Promise<void> {
  const backends = await testBackends();
  describe.each(backends)(`${name} [%s backend]`, (backend) => {
    beforeAll(async () => {
      await initBackend({ prefer: backend, log: false });
      installFastMatMulGradient();
    });
    body(backend);
  });
}

/**
 * Runs `fn` `warmup` times (kernels may create constants once), then `repeats` more times, and fails if the number
 * of live tensors grew between the end of the warm-up and the end.
 */
export async function expectNoLeakedTensors(
  fn: () => unknown | Promise<unknown>,
  options: { warmup?: number; repeats?: number } = {},
): Promise<void> {
  const warmup = options.warmup ?? 1;
  const repeats = options.repeats ?? 3;
  for (let i = 0; i < warmup; i++) await fn();
  const before = tf.memory().numTensors;
  for (let i = 0; i < repeats; i++) await fn();
  const after = tf.memory().numTensors;
  expect(after - before, `live tensors grew from ${before} to ${after} over ${repeats} calls`).toBe(0);
}

/**
 * Tolerances of `expectTensorClose`: an element passes when `|actual − expected| ≤ atol + rtol·|expected|`;
 * NaN must match NaN.
 */
export interface CloseOptions {
  /** Maximum absolute difference allowed (default 1e-5). */
  atol?: number;
  /** Relative tolerance added to atol, scaled by |expected| (default 0). */
  rtol?: number;
  /** Name used in failure messages. */
  label?: string;
}

function toFloatArray(value: Tensor | ArrayLike<number>): {
  data: Float32Array | number[];
  shape?: number[];
} {
  if (value instanceof tf.Tensor) return { data: value.dataSync() as Float32Array, shape: value.shape };
  return { data: Array.from(value) };
}

/** Largest |a − b| between two tensors or arrays of the same size. */
export function maxAbsDiff(a: Tensor | ArrayLike<number>, b: Tensor | ArrayLike<number>): number {
  const x = toFloatArray(a).data;
  const y = toFloatArray(b).data;
  if (x.length !== y.length) throw new Error(`size mismatch: ${x.length} vs ${y.length}`);
  let max = 0;
  for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs((x[i] as number) - (y[i] as number)));
  return max;
}

/** Asserts shape (when both are tensors) and element-wise closeness, reporting the worst element. */
export function expectTensorClose(
  actual: Tensor | ArrayLike<number>,
  expected: Tensor | ArrayLike<number>,
  options: CloseOptions = {},
): void {
  const atol = options.atol ?? 1e-5;
  const rtol = options.rtol ?? 0;
  const label = options.label ?? 'tensor';
  const a = toFloatArray(actual);
  const e = toFloatArray(expected);
  if (a.shape && e.shape) expect(a.shape, `${label}: shape`).toEqual(e.shape);
  expect(a.data.length, `${label}: element count`).toBe(e.data.length);
  let worst = -1;
  let worstExcess = 0;
  let maxDiff = 0;
  for (let i = 0; i < a.data.length; i++) {
    const x = a.data[i] as number;
    const y = e.data[i] as number;
    const diff = Math.abs(x - y);
    if (Number.isNaN(x) !== Number.isNaN(y)) {
      worst = i;
      worstExcess = Number.POSITIVE_INFINITY;
      break;
    }
    maxDiff = Math.max(maxDiff, diff);
    const excess = diff - (atol + rtol * Math.abs(y));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    expect.fail(
      `${label}: element ${worst} is ${a.data[worst]}, expected ${e.data[worst]} ` +
        `(max |diff| ${maxDiff.toExponential(3)} > atol ${atol} + rtol ${rtol})`,
    );
  }
}
