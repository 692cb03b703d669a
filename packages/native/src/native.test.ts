import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { loadNativeKernels, nativeGemm } from './gemm.js';
import { installNativeMatMul, isNativeMatMulInstalled } from './kernels.js';

describe('loading the native kernels', () => {
  it('loads on CI machines (a broken build must not pass silently)', () => {
    const status = loadNativeKernels();
    // Only an explicit PEFTJS_NATIVE=off may leave a CI machine without the addon.
    if (!process.env.CI || process.env.PEFTJS_NATIVE === 'off') {
      if (!status.ok)
        console.warn(`[@peftjs/native tests] native kernels unavailable here: ${status.reason}`);
      return;
    }
    expect(status, status.ok ? '' : `native kernels unavailable under CI: ${status.reason}`).toMatchObject({
      ok: true,
    });
  });

  it('reports { ok: true, isa, isaReason, cpu, threads } or { ok: false, reason } and never throws', () => {
    const status = loadNativeKernels();
    if (status.ok) {
      expect(['avx2', 'avx512']).toContain(status.isa);
      expect(status.isaReason.length).toBeGreaterThan(0);
      expect(status.cpu.length).toBeGreaterThan(0);
      expect(status.threads).toBeGreaterThanOrEqual(1);
    } else {
      expect(status.reason.length).toBeGreaterThan(0);
    }
  });

  // scripts/native-isa.test.ts re-runs this package's tests with PEFTJS_NATIVE_ISA forced and
  // PEFTJS_EXPECT_NATIVE_ISA set: every kernel test above and below then ran on that path.
  it.skipIf(!process.env.PEFTJS_EXPECT_NATIVE_ISA)('runs the instruction set the environment forced', () => {
    expect(loadNativeKernels()).toMatchObject({ ok: true, isa: process.env.PEFTJS_EXPECT_NATIVE_ISA });
  });

  it('refuses an unknown PEFTJS_NATIVE_ISA, naming it, before loading anything', () => {
    expect(loadNativeKernels({ PEFTJS_NATIVE_ISA: 'sse4' })).toEqual({
      ok: false,
      reason: 'PEFTJS_NATIVE_ISA=sse4 is not one of auto, avx2, avx512',
    });
  });
});

describe('PEFTJS_NATIVE=off (what a machine without the addon sees)', () => {
  it('returns a reason and installs nothing', async () => {
    await tf.setBackend('cpu');
    const saved = process.env.PEFTJS_NATIVE;
    process.env.PEFTJS_NATIVE = 'off';
    try {
      const status = loadNativeKernels();
      expect(status).toEqual({ ok: false, reason: 'disabled by PEFTJS_NATIVE=off' });
      const stock = tf.getKernel('BatchMatMul', 'cpu');
      expect(installNativeMatMul('cpu')).toBe(false);
      expect(isNativeMatMulInstalled('cpu')).toBe(false);
      expect(tf.getKernel('BatchMatMul', 'cpu')).toBe(stock);
      expect(() => nativeGemm(new Float32Array(1), new Float32Array(1), { m: 1, n: 1, k: 1 })).toThrow(
        /unavailable: disabled by PEFTJS_NATIVE=off/,
      );
      // tf.matMul keeps working on the stock kernel.
      expect(Array.from(tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])).dataSync())).toEqual([11]);
    } finally {
      if (saved === undefined) delete process.env.PEFTJS_NATIVE;
      else process.env.PEFTJS_NATIVE = saved;
    }
  });

  it('an injected environment works the same', () => {
    expect(loadNativeKernels({ PEFTJS_NATIVE: 'off' })).toMatchObject({ ok: false });
    expect(loadNativeKernels({ PEFTJS_NATIVE: '0' })).toMatchObject({ ok: false });
  });
});
