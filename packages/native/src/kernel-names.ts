/**
 * Names of the fused kernels `@peftjs/native` registers with tfjs (`installNativeKernels`). A separate entry
 * point with no Node imports, so `@peftjs/core` can look the kernels up (and register their gradients) in any
 * environment, including browsers where the addon never loads.
 */
export const FUSED_KERNELS = {
  /** `{ x }` → `x·Φ(x)`, exact (erf) GELU. */
  gelu: 'PeftjsGelu',
  /** `{ dy, x }` → `dy·(Φ(x) + x·φ(x))`. */
  geluGrad: 'PeftjsGeluGrad',
  /** `{ x, weight, bias }`, attr `eps` → LayerNorm over the last axis. */
  layerNorm: 'PeftjsLayerNorm',
  /** `{ dy, x, weight }`, attr `eps` → `[dx, dweight, dbias]`. */
  layerNormGrad: 'PeftjsLayerNormGrad',
  /**
   * `{ x, weight, bias? }` with weight `[in, out]` and x `[..., in]`, attr `activation` (`'linear'` or `'gelu'`) →
   * `act(x·weight + bias)` `[..., out]`: one GEMM with the bias (and GELU) applied in its epilogue.
   */
  linear: 'PeftjsLinear',
  /**
   * `{ x }`, attrs `split`, `weight0`, `weight1` → softmax over the last axis in two segments: columns `[0, split)`
   * and `[split, n)` each normalised on their own and scaled by their weight (`split = n`, `weight0 = 1`: softmax).
   */
  softmax: 'PeftjsSoftmax',
  /** `{ dy, y }` (y the softmax output), same attrs → dx. */
  softmaxGrad: 'PeftjsSoftmaxGrad',
} as const;

/**
 * Property set (to `true`) on the `kernelFunc` of the native `BatchMatMul`, so code without Node imports can tell
 * whether the registered matmul is the native one: it multiplies transposed operands (`transposeA/B`) as fast as
 * plain ones, which tfjs-wasm's own matmul does not.
 */
export const NATIVE_MATMUL_MARK = '__peftjsNativeMatMul';
