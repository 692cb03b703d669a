/**
 * Optional native kernels for PEFT.js (an N-API addon built at install; AVX-512 or AVX2/FMA, chosen once at load):
 * a single-precision GEMM that replaces tfjs's `BatchMatMul` kernel on the `wasm` and `cpu` backends, a linear layer
 * with its bias (and GELU) in the GEMM's epilogue, and fused GELU, LayerNorm and (two-segment) softmax kernels with
 * their gradients; all read and write tensor memory in place.
 *
 * ```ts
 * const status = loadNativeKernels(); // never throws: { ok: false, reason } where it cannot run
 * if (status.ok) installNativeMatMul('wasm');
 * ```
 */
export {
  type GemmOptions,
  type NativeIsa,
  type NativeStatus,
  NATIVE_ISA_CHOICES,
  loadNativeKernels,
  measureNativePeak,
  nativeGemm,
  nativeIsaRequest,
  setNativeThreads,
} from './gemm.js';
export {
  installNativeElementwise,
  isNativeElementwiseInstalled,
  uninstallNativeElementwise,
} from './elementwise.js';
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
