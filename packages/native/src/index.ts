/**
 * Optional native kernels for PEFT.js (an N-API addon built at install, AVX2/FMA): a single-precision GEMM that
 * replaces tfjs's `BatchMatMul` kernel on the `wasm` and `cpu` backends, and fused GELU and LayerNorm kernels
 * with their gradients; all read and write tensor memory in place.
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
export { FUSED_KERNELS } from './kernel-names.js';
export {
  type NativeBackendName,
  areFusedKernelsInstalled,
  installFusedKernels,
  installNativeMatMul,
  isNativeMatMulInstalled,
  stockMatMulKernel,
  uninstallFusedKernels,
  uninstallNativeMatMul,
} from './kernels.js';
export { type MatMulPlan, planMatMul } from './plan.js';
