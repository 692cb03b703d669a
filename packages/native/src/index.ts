/**
 * Optional native kernels for PEFT.js: an AVX2/FMA single-precision GEMM (N-API addon built at install) that
 * replaces tfjs's `BatchMatMul` kernel on the `wasm` and `cpu` backends, reading tensor memory in place.
 *
 * ```ts
 * const status = loadNativeKernels(); // never throws: { ok: false, reason } where it cannot run
 * if (status.ok) installNativeMatMul('wasm');
 * ```
 */
export {
  type GemmOptions,
  type NativeStatus,
  loadNativeKernels,
  nativeGemm,
  setNativeThreads,
} from './gemm.js';
export {
  type NativeBackendName,
  installNativeMatMul,
  isNativeMatMulInstalled,
  stockMatMulKernel,
  uninstallNativeMatMul,
} from './kernels.js';
export { type MatMulPlan, planMatMul } from './plan.js';
