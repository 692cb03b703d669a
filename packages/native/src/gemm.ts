import { type NativeAddon, loadAddon } from './addon.js';
import type { MatMulPlan } from './plan.js';

/** The instruction sets the native kernels are built for; `avx512` means AVX-512F/BW/VL/DQ with FMA. */
export type NativeIsa = 'avx2' | 'avx512';

/** Accepted values of `PEFTJS_NATIVE_ISA`: `auto` (the default) picks the best the CPU runs. */
export const NATIVE_ISA_CHOICES = ['auto', 'avx2', 'avx512'] as const;

/** Why the native kernels are or are not usable in this process. */
export type NativeStatus =
  | {
      /** The kernels loaded and can be used. */
      ok: true;
      /** Instruction set of the kernels in use, chosen once per process. */
      isa: NativeIsa;
      /** Why that one: the best this CPU runs, forced by `PEFTJS_NATIVE_ISA`, or why a request was not honoured. */
      isaReason: string;
      /** The CPU's model name as CPUID reports it. */
      cpu: string;
      /** Threads a single kernel uses (1 unless `PEFTJS_NATIVE_THREADS` or `setNativeThreads` raised it). */
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
let selection: { request: string; isa: NativeIsa; reason: string } | undefined;

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

/** `PEFTJS_NATIVE_ISA` read from `env`: one of {@link NATIVE_ISA_CHOICES}, or an error message. */
export function nativeIsaRequest(env: Record<string, string | undefined>):
  | {
      /** The requested choice, normalised: `'auto'` when unset or empty. */
      request: string;
    }
  | {
      /** Why the value is not accepted (it names the variable and the valid choices). */
      error: string;
    } {
  const raw = env.PEFTJS_NATIVE_ISA;
  const request = raw === undefined || raw.trim() === '' ? 'auto' : raw.trim().toLowerCase();
  if ((NATIVE_ISA_CHOICES as readonly string[]).includes(request)) return { request };
  return { error: `PEFTJS_NATIVE_ISA=${raw} is not one of ${NATIVE_ISA_CHOICES.join(', ')}` };
}

/** Chooses the kernel table once per process (the first successful load) and says why. */
function chooseIsa(addon: NativeAddon, request: string): { isa: NativeIsa; reason: string } {
  if (selection) {
    if (request === selection.request) return selection;
    return {
      isa: selection.isa,
      reason: `${selection.reason}; PEFTJS_NATIVE_ISA=${request} ignored: the kernels are chosen once per process`,
    };
  }
  const canAvx512 = addon.isas.includes('avx512');
  let reason: string;
  let wanted: string;
  if (request === 'avx512' && !canAvx512) {
    wanted = 'avx2';
    reason = `PEFTJS_NATIVE_ISA=avx512 asked for AVX-512, but ${addon.avx512Reason}; using avx2`;
  } else if (request === 'auto') {
    wanted = 'auto';
    reason = canAvx512
      ? 'the best this CPU runs'
      : `the best this CPU runs (no avx512: ${addon.avx512Reason})`;
  } else {
    wanted = request;
    reason = `forced by PEFTJS_NATIVE_ISA=${request}`;
  }
  const isa = addon.selectIsa(wanted) as NativeIsa;
  selection = { request, isa, reason };
  return selection;
}

/**
 * Loads the native kernels. Never throws: where the addon did not build, the CPU lacks AVX2/FMA, or
 * `PEFTJS_NATIVE=off` is set, it returns `{ ok: false, reason }`. The instruction set is chosen once per process, at
 * the first successful load: AVX-512 where the CPU and OS support it, AVX2 otherwise; `PEFTJS_NATIVE_ISA=avx2` forces
 * the AVX2 kernels (`avx512` asks for AVX-512 and falls back to AVX2, saying why, where it cannot run). Large products
 * and element-wise passes use both cores where there are two (the default); `PEFTJS_NATIVE_THREADS=1` keeps them on
 * the calling thread.
 */
export function loadNativeKernels(env: Record<string, string | undefined> = process.env): NativeStatus {
  const setting = env.PEFTJS_NATIVE?.trim().toLowerCase();
  if (setting === 'off' || setting === '0' || setting === 'false') {
    return { ok: false, reason: `disabled by PEFTJS_NATIVE=${env.PEFTJS_NATIVE}` };
  }
  const request = nativeIsaRequest(env);
  if ('error' in request) return { ok: false, reason: request.error };
  const result = loadAddon();
  if (!('addon' in result)) return { ok: false, reason: result.reason };
  readThreadsFromEnv(env, result.addon.maxThreads);
  const { isa, reason } = chooseIsa(result.addon, request.request);
  return { ok: true, isa, isaReason: reason, cpu: result.addon.cpu, threads };
}

/** Threads a single native kernel call may use (1 or 2). Returns the value in effect. */
export function setNativeThreads(count: number): number {
  const result = loadAddon();
  const max = 'addon' in result ? result.addon.maxThreads : 1;
  threadsFromEnvRead = true;
  threads = Math.max(1, Math.min(Math.floor(count), max));
  return threads;
}

/** @internal The loaded addon (kernel table chosen), or an Error carrying the reason. */
export function requireAddon(): NativeAddon {
  const status = loadNativeKernels();
  if (!status.ok) throw new Error(`@peftjs/native is unavailable: ${status.reason}`);
  return (loadAddon() as { addon: NativeAddon }).addon;
}

/**
 * GFLOP/s of a register-only FMA loop in the chosen instruction set on `threads` threads (1 or 2) for about
 * `seconds`: the measured peak that GEMM rates can be compared with. Throws when the kernels are unavailable.
 */
export function measureNativePeak(threadCount = 1, seconds = 0.5): number {
  return requireAddon().peakGflops(Math.max(1, Math.min(2, Math.floor(threadCount))), seconds);
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
