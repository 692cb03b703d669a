import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The functions the compiled addon exports (see src/addon.cc). */
export interface NativeAddon {
  readonly supported: boolean;
  readonly reason: string;
  /** The CPU's brand string (CPUID). */
  readonly cpu: string;
  /** Kernel tables this CPU can run, best last: `avx2`, then `avx512` where available. */
  readonly isas: readonly string[];
  /** Why `avx512` is not in `isas` (empty when it is). */
  readonly avx512Reason: string;
  /** The kernel table in use ('' before `selectIsa` or the first kernel call). */
  readonly isa: string;
  readonly maxThreads: number;
  /** Chooses the kernel table once per process (`auto` or one of `isas`); returns its name. */
  selectIsa(name: string): string;
  /** GFLOP/s of the chosen table's register-only FMA loop. */
  peakGflops(threads: number, seconds: number): number;
  gemm(
    a: Float32Array,
    aOffset: number,
    b: Float32Array,
    bOffset: number,
    c: Float32Array,
    cOffset: number,
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    strideA: number,
    strideB: number,
    threads: number,
  ): void;
  linear(
    x: Float32Array,
    xOffset: number,
    weight: Float32Array,
    weightOffset: number,
    bias: Float32Array | null,
    biasOffset: number,
    y: Float32Array,
    yOffset: number,
    rows: number,
    inFeatures: number,
    outFeatures: number,
    gelu: boolean,
    threads: number,
  ): void;
  softmax(
    x: Float32Array,
    xOffset: number,
    y: Float32Array,
    yOffset: number,
    rows: number,
    n: number,
    split: number,
    weight0: number,
    weight1: number,
    threads: number,
  ): void;
  softmaxGrad(
    dy: Float32Array,
    dyOffset: number,
    y: Float32Array,
    yOffset: number,
    dx: Float32Array,
    dxOffset: number,
    rows: number,
    n: number,
    split: number,
    weight0: number,
    weight1: number,
    threads: number,
  ): void;
  binary(
    op: number,
    a: Float32Array,
    aOffset: number,
    b: Float32Array,
    bOffset: number,
    y: Float32Array,
    yOffset: number,
    n: number,
    period: number,
    threads: number,
  ): void;
  transpose(
    x: Float32Array,
    xOffset: number,
    y: Float32Array,
    yOffset: number,
    shape: readonly number[],
    perm: readonly number[],
    threads: number,
  ): void;
  gelu(x: Float32Array, xOffset: number, y: Float32Array, yOffset: number, n: number, threads: number): void;
  geluGrad(
    dy: Float32Array,
    dyOffset: number,
    x: Float32Array,
    xOffset: number,
    dx: Float32Array,
    dxOffset: number,
    n: number,
    threads: number,
  ): void;
  layerNorm(
    x: Float32Array,
    xOffset: number,
    weight: Float32Array,
    weightOffset: number,
    bias: Float32Array,
    biasOffset: number,
    y: Float32Array,
    yOffset: number,
    rows: number,
    dim: number,
    eps: number,
    threads: number,
  ): void;
  layerNormGrad(
    dy: Float32Array,
    dyOffset: number,
    x: Float32Array,
    xOffset: number,
    weight: Float32Array,
    weightOffset: number,
    dx: Float32Array,
    dxOffset: number,
    dweight: Float32Array,
    dweightOffset: number,
    dbias: Float32Array,
    dbiasOffset: number,
    rows: number,
    dim: number,
    eps: number,
    threads: number,
  ): void;
}

/** Where `scripts/build-native.mjs` (the install script) leaves the addon and its status. */
const packageRoot = fileURLToPath(new URL('..', import.meta.url));
export const ADDON_PATH = fileURLToPath(new URL('../build/Release/peftjs_native.node', import.meta.url));
const BUILD_STATUS_PATH = fileURLToPath(new URL('../build/native-build.json', import.meta.url));

type LoadResult = { addon: NativeAddon } | { reason: string };
let loaded: LoadResult | undefined;

function buildFailureReason(): string | undefined {
  try {
    const status = JSON.parse(readFileSync(BUILD_STATUS_PATH, 'utf8')) as { ok?: boolean; reason?: string };
    return status.ok === false && status.reason ? status.reason : undefined;
  } catch {
    return undefined;
  }
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}

/** Loads the compiled addon once per process; never throws. */
export function loadAddon(): LoadResult {
  if (loaded) return loaded;
  if (process.platform === 'win32' || process.arch !== 'x64') {
    loaded = {
      reason: `needs x86-64 Linux/macOS with AVX2 and FMA, this is ${process.platform}-${process.arch}`,
    };
  } else if (!existsSync(ADDON_PATH)) {
    const why = buildFailureReason();
    loaded = {
      reason: why
        ? `the addon did not build at install (${why})`
        : `the addon is not built (no ${ADDON_PATH}; run "node scripts/build-native.mjs" in ${packageRoot})`,
    };
  } else {
    try {
      const require = createRequire(import.meta.url);
      const addon = require(ADDON_PATH) as NativeAddon;
      loaded = addon.supported ? { addon } : { reason: addon.reason || 'the CPU lacks AVX2/FMA' };
    } catch (error) {
      loaded = { reason: `the addon failed to load: ${firstLine(error)}` };
    }
  }
  return loaded;
}
