import { type NativeAddon, loadAddon } from './addon.js';
import type { MatMulPlan } from './plan.js';

/** Why the native kernels are or are not usable in this process. */
export type NativeStatus =
  | {
      /** The kernels loaded and can be used. */
      ok: true;
      /** Instruction set the addon was compiled for (`avx2+fma`). */
      isa: string;
      /** Threads a single GEMM uses (1 unless `PEFTJS_NATIVE_THREADS` or `setNativeThreads` raised it). */
      threads: number;
    }
  | {
      /** The kernels cannot be used. */
      ok: false;
      /** Why: the addon did not build or load, the CPU lacks AVX2/FMA, or `PEFTJS_NATIVE` disabled it. */
      reason: string;
    };

let threads = 1;
let threadsFromEnvRead = false;

// Default: every thread the addon can use (1 or 2; both cores measured 1.5x faster on a VPT training step than one,
// docs/performance.md). PEFTJS_NATIVE_THREADS=1 keeps the kernels on the calling thread.
function readThreadsFromEnv(env: Record<string, string | undefined>, maxThreads: number): void {
  if (threadsFromEnvRead) return;
  threadsFromEnvRead = true;
  threads = maxThreads;
  const raw = env.PEFTJS_NATIVE_THREADS;
  if (raw === undefined || raw.trim() === '') return;
  const value = Number.parseInt(raw, 10);
  if (Number.isFinite(value) && value >= 1) threads = Math.min(value, maxThreads);
}

/**
 * Loads the native AVX2/FMA GEMM. Never throws: where the addon did not build, the CPU lacks AVX2/FMA, or
 * `PEFTJS_NATIVE=off` is set, it returns `{ ok: false, reason }`. Large products and element-wise passes use both
 * cores where there are two (the default); `PEFTJS_NATIVE_THREADS=1` keeps them on the calling thread.
 */
export function loadNativeKernels(env: Record<string, string | undefined> = process.env): NativeStatus {
  const setting = env.PEFTJS_NATIVE?.trim().toLowerCase();
  if (setting === 'off' || setting === '0' || setting === 'false') {
    return { ok: false, reason: `disabled by PEFTJS_NATIVE=${env.PEFTJS_NATIVE}` };
  }
  const result = loadAddon();
  if (!('addon' in result)) return { ok: false, reason: result.reason };
  readThreadsFromEnv(env, result.addon.maxThreads);
  return { ok: true, isa: result.addon.isa, threads };
}

/** Threads a single native kernel call may use (1 or 2). Returns the value in effect. */
export function setNativeThreads(count: number): number {
  const result = loadAddon();
  const max = 'addon' in result ? result.addon.maxThreads : 1;
  threadsFromEnvRead = true;
  threads = Math.max(1, Math.min(Math.floor(count), max));
  return threads;
}

/** @internal The loaded addon, or an Error carrying the reason. */
export function requireAddon(): NativeAddon {
  const status = loadNativeKernels();
  if (!status.ok) throw new Error(`@peftjs/native is unavailable: ${status.reason}`);
  return (loadAddon() as { addon: NativeAddon }).addon;
}

/** @internal Threads a native kernel call may use (the value {@link setNativeThreads} set). */
export function nativeThreads(): number {
  return threads;
}

/** @internal Runs a planned BatchMatMul on flat float views (offsets in floats). */
export function runPlan(
  addon: NativeAddon,
  plan: MatMulPlan,
  a: Float32Array,
  aOffset: number,
  b: Float32Array,
  bOffset: number,
  out: Float32Array,
  outOffset: number,
): void {
  const { batch, m, n, k, transposeA, transposeB } = plan;
  if (batch === 0 || m === 0 || n === 0) return;
  if (plan.pairs === null) {
    addon.gemm(
      a,
      aOffset,
      b,
      bOffset,
      out,
      outOffset,
      batch,
      m,
      n,
      k,
      transposeA,
      transposeB,
      plan.strideA,
      plan.strideB,
      threads,
    );
    return;
  }
  const sizeA = m * k;
  const sizeB = k * n;
  const sizeC = m * n;
  for (let i = 0; i < batch; i++) {
    addon.gemm(
      a,
      aOffset + (plan.pairs.a[i] as number) * sizeA,
      b,
      bOffset + (plan.pairs.b[i] as number) * sizeB,
      out,
      outOffset + i * sizeC,
      1,
      m,
      n,
      k,
      transposeA,
      transposeB,
      0,
      0,
      threads,
    );
  }
}

/** Shape of a direct {@link nativeGemm} call. */
export interface GemmOptions {
  /** Rows of op(A) and of the result. */
  m: number;
  /** Columns of op(B) and of the result. */
  n: number;
  /** The shared dimension. */
  k: number;
  /** Number of products (default 1). */
  batch?: number;
  /** A is stored `[k, m]` (default false: `[m, k]`). */
  transposeA?: boolean;
  /** B is stored `[n, k]` (default false: `[k, n]`). */
  transposeB?: boolean;
  /** Floats between consecutive A matrices (default m·k; 0 uses one A for every batch). */
  strideA?: number;
  /** Floats between consecutive B matrices (default k·n; 0 uses one B for every batch). */
  strideB?: number;
  /** Float offsets of the first A, B and output matrix inside the given arrays (default 0). */
  aOffset?: number;
  /** Float offset of the first B matrix in `b` (default 0). */
  bOffset?: number;
  /** Float offset of the first output matrix in `out` (default 0). */
  outOffset?: number;
}

/**
 * `out[i] = op(A[i]) · op(B[i])` for `batch` row-major products, computed natively without copying the inputs.
 * Allocates `out` (batch·m·n floats) when not given. Throws when the addon is unavailable (check
 * {@link loadNativeKernels} first) or when an array is too small for the requested shape.
 */
export function nativeGemm(
  a: Float32Array,
  b: Float32Array,
  options: GemmOptions,
  out?: Float32Array,
): Float32Array {
  const addon = requireAddon();
  const { m, n, k } = options;
  const batch = options.batch ?? 1;
  const result = out ?? new Float32Array(batch * m * n);
  addon.gemm(
    a,
    options.aOffset ?? 0,
    b,
    options.bOffset ?? 0,
    result,
    options.outOffset ?? 0,
    batch,
    m,
    n,
    k,
    options.transposeA ?? false,
    options.transposeB ?? false,
    options.strideA ?? m * k,
    options.strideB ?? k * n,
    threads,
  );
  return result;
}
