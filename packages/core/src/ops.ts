import { FUSED_KERNELS, NATIVE_MATMUL_MARK } from '@peftjs/native/kernel-names';
import { PeftError } from './errors.js';
import { tf } from './tf.js';
import type { Tensor, Tensor1D } from './tf.js';

/**
 * Numerical building blocks with PyTorch/timm semantics, shared by the backbone and every plugin.
 */

const SQRT1_2 = Math.SQRT1_2;

/** Whether the active backend has `@peftjs/native`'s fused kernel `name` (registered by `initBackend`). */
function hasFusedKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

// Gradients of the fused kernels (registered once; used only where the kernels themselves are registered).
tf.registerGradient({
  kernelName: FUSED_KERNELS.gelu,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => ({
    x: () => tf.engine().runKernel(FUSED_KERNELS.geluGrad, { dy: dy as Tensor, x: saved[0] as Tensor }),
  }),
});
tf.registerGradient({
  kernelName: FUSED_KERNELS.layerNorm,
  inputsToSave: ['x', 'weight'],
  gradFunc: (dy, saved, attrs) => {
    // One native pass yields all three gradients. It runs here, in the backward pass's own scope, not inside
    // the per-input tidy the engine wraps each closure in, which would dispose the two not returned.
    const [dx, dweight, dbias] = tf
      .engine()
      .runKernel(
        FUSED_KERNELS.layerNormGrad,
        { dy: dy as Tensor, x: saved[0] as Tensor, weight: saved[1] as Tensor },
        attrs as unknown as tf.NamedAttrMap,
      ) as Tensor[];
    return { x: () => dx as Tensor, weight: () => dweight as Tensor, bias: () => dbias as Tensor };
  },
});

tf.registerGradient({
  kernelName: FUSED_KERNELS.linear,
  inputsToSave: ['x', 'weight'],
  gradFunc: (dy, saved, attrs) => {
    const [x, weight] = saved as [Tensor, Tensor];
    if ((attrs as { activation?: string }).activation === 'gelu')
      throw new Error(
        `${FUSED_KERNELS.linear} with activation "gelu" has no gradient: use linear, then gelu`,
      );
    const grad = Array.isArray(dy) ? (dy[0] as Tensor) : dy;
    const [inFeatures, outFeatures] = weight.shape as [number, number];
    const dy2 = () => tf.reshape(grad, [-1, outFeatures]) as tf.Tensor2D;
    return {
      x: () => tf.reshape(matMulT(dy2(), weight, false, true), x.shape),
      weight: () => matMulT(tf.reshape(x, [-1, inFeatures]), dy2(), true, false),
      bias: () => tf.sum(dy2(), 0),
    };
  },
});
tf.registerGradient({
  kernelName: FUSED_KERNELS.softmax,
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => ({
    x: () =>
      tf
        .engine()
        .runKernel(
          FUSED_KERNELS.softmaxGrad,
          { dy: dy as Tensor, y: saved[0] as Tensor },
          attrs as unknown as tf.NamedAttrMap,
        ) as Tensor,
  }),
});

/**
 * Exact (erf) GELU, as `torch.nn.GELU()` by default: 0.5·x·(1 + erf(x/√2)). One fused native kernel (and one
 * for its gradient) where `@peftjs/native` is installed on the active backend; tfjs ops elsewhere.
 */
export function gelu<T extends Tensor>(x: T): T {
  if (x.dtype === 'float32' && hasFusedKernel(FUSED_KERNELS.gelu))
    return tf.engine().runKernel(FUSED_KERNELS.gelu, { x }) as T;
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, SQRT1_2))))) as T;
}

/**
 * LayerNorm over the last axis with biased variance and eps inside the square root, as `torch.nn.LayerNorm`.
 * Fused natively (forward and gradient) where `@peftjs/native` is installed on the active backend.
 */
export function layerNorm<T extends Tensor>(x: T, weight: Tensor1D, bias: Tensor1D, eps: number): T {
  if (
    x.dtype === 'float32' &&
    weight.dtype === 'float32' &&
    bias.dtype === 'float32' &&
    hasFusedKernel(FUSED_KERNELS.layerNorm)
  )
    return tf.engine().runKernel(FUSED_KERNELS.layerNorm, { x, weight, bias }, { eps }) as T;
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(normed, weight), bias);
  }) as T;
}

/**
 * Softmax over the last axis, as `tf.softmax`: one native pass (and one for its gradient) where `@peftjs/native`
 * is installed on the active backend.
 */
export function softmax<T extends Tensor>(x: T): T {
  const n = x.shape[x.rank - 1] as number;
  return segmentSoftmax(x, n, 1, 1);
}

/**
 * Softmax over the last axis in two segments: columns `[0, split)` and `[split, n)` are normalised separately and
 * scaled by `weight0` and `weight1` (`split = n`: the plain softmax times `weight0`). Decoupled attention mixes two
 * attention paths this way: `[w0·softmax(image keys) | w1·softmax(prompt keys)] · V` is the weighted sum of the two
 * paths' outputs, in one product. One native pass where `@peftjs/native` is installed, composite tfjs ops elsewhere.
 */
export function segmentSoftmax<T extends Tensor>(x: T, split: number, weight0: number, weight1: number): T {
  const n = x.shape[x.rank - 1] as number;
  if (!Number.isInteger(split) || split < 0 || split > n)
    throw new PeftError(
      'SHAPE_MISMATCH',
      `segmentSoftmax: split must be an integer in [0, ${n}], got ${split}`,
    );
  if (!(weight0 >= 0 && weight1 >= 0))
    throw new PeftError(
      'INVALID_OPTION',
      `segmentSoftmax: weights must be ≥ 0, got ${weight0} and ${weight1}`,
    );
  if (x.dtype === 'float32' && hasFusedKernel(FUSED_KERNELS.softmax))
    return tf.engine().runKernel(FUSED_KERNELS.softmax, { x }, { split, weight0, weight1 }) as T;
  return tf.tidy(() => {
    const weighted = (t: Tensor, w: number) => (w === 1 ? tf.softmax(t) : tf.mul(tf.softmax(t), w));
    if (split === n || split === 0) return weighted(x, split === n ? weight0 : weight1);
    const [a, b] = tf.split(x, [split, n - split], -1) as [Tensor, Tensor];
    return tf.concat([weighted(a, weight0), weighted(b, weight1)], -1);
  }) as T;
}

/** Swaps the last two axes with an explicit transpose. */
export function transposeLast2<T extends Tensor>(x: T): T {
  const rank = x.rank;
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return tf.transpose(x, perm) as T;
}

/**
 * Whether the active backend multiplies transposed operands (`matMul`'s `transposeA/B`) as fast as plain ones.
 * tfjs-wasm's own `BatchMatMul` does not — XNNPACK takes only the untransposed case, and the flags run 10–50×
 * slower — so on wasm without `@peftjs/native` operands are transposed explicitly first. The native matmul (it
 * packs either layout) and every other backend take the flags.
 */
export function transposedMatMulIsFast(): boolean {
  const backend = tf.getBackend();
  if (backend !== 'wasm') return true;
  const kernel: object | undefined = tf.getKernel('BatchMatMul', backend)?.kernelFunc;
  return kernel !== undefined && (kernel as Record<string, unknown>)[NATIVE_MATMUL_MARK] === true;
}

/**
 * `op(a) · op(b)` over the last two axes, where `op` transposes when its flag is set: through the matmul's flags
 * where the backend runs them fast ({@link transposedMatMulIsFast}), else by explicit transposes. Same values.
 */
export function matMulT<T extends Tensor>(a: Tensor, b: Tensor, transposeA = false, transposeB = false): T {
  if (!(transposeA || transposeB) || transposedMatMulIsFast()) {
    return tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D, transposeA, transposeB) as unknown as T;
  }
  return tf.matMul(
    (transposeA ? transposeLast2(a) : a) as tf.Tensor3D,
    (transposeB ? transposeLast2(b) : b) as tf.Tensor3D,
  ) as unknown as T;
}

/** Heads back into the width: `[B, H, N, dh]` → `[B, N, H·dh]`. */
export function mergeHeads(x: tf.Tensor4D): tf.Tensor3D {
  const [batch, heads, tokens, headDim] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [batch, tokens, heads * headDim]);
}

/**
 * `x · W + b` for x of any rank ≥ 2 with W stored `[in, out]`: one native GEMM with the bias added in its epilogue
 * where `@peftjs/native` is installed on the active backend; elsewhere the input is folded to 2-D so the backend
 * sees one large GEMM with no transposes (the fast path of the wasm backend), then the bias is added.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  if (
    x.dtype === 'float32' &&
    weight.dtype === 'float32' &&
    (bias === undefined || bias.dtype === 'float32') &&
    hasFusedKernel(FUSED_KERNELS.linear)
  ) {
    const inputs: tf.NamedTensorMap = bias ? { x, weight, bias } : { x, weight };
    return tf.engine().runKernel(FUSED_KERNELS.linear, inputs, { activation: 'linear' }) as Tensor;
  }
  return tf.tidy(() => {
    const inFeatures = x.shape[x.rank - 1] as number;
    const outFeatures = weight.shape[1] as number;
    const flat = x.rank === 2 ? x : tf.reshape(x, [-1, inFeatures]);
    let y: Tensor = tf.matMul(flat as tf.Tensor2D, weight as tf.Tensor2D);
    if (bias) y = tf.add(y, bias);
    return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), outFeatures]);
  });
}

/**
 * Repeats a batch-1 tensor `batch` times along axis 0. Same values as `tf.broadcastTo`, but built by
 * concatenation: tfjs-wasm's Tile kernel (behind broadcastTo) is an order of magnitude slower than Concat. The
 * gradient is one sum over the batch axis: left to tfjs, the gradient of a tensor used `batch` times in one concat
 * is `batch` slices added one by one (measured in a SHIP step at batch 16: ~1,000 of its ~3,800 kernel calls).
 */
export function repeatBatch<T extends Tensor>(x: T, batch: number): T {
  if (x.shape[0] !== 1) throw new Error(`repeatBatch needs a batch-1 tensor; got [${x.shape}]`);
  if (batch === 1) return x;
  const repeat = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.concat(new Array<Tensor>(batch).fill(args[0] as Tensor), 0),
    gradFunc: (dy: Tensor) => tf.sum(dy, 0, true),
  }));
  return repeat(x) as T;
}

/** Cross-entropy with integer labels, mean over the batch, from raw logits (log-softmax form, stable). */
export function softmaxCrossEntropy(logits: tf.Tensor2D, labels: Tensor1D): tf.Scalar {
  return tf.tidy((): tf.Scalar => {
    const numClasses = logits.shape[1];
    const oneHot = tf.oneHot(tf.cast(labels, 'int32'), numClasses);
    const logProbs = tf.logSoftmax(logits);
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, logProbs), -1))) as tf.Scalar;
  });
}

let fastGradientInstalled = false;

/**
 * Replaces tfjs's matmul gradient with one whose products go through {@link matMulT}: on tfjs-wasm's own matmul
 * the transposed operands are transposed explicitly and then multiplied without flags (training steps several times
 * faster); elsewhere the flags are used directly, with no transpose kernels at all. Same values either way.
 * Installed once per process by `initBackend`.
 */
export function installFastMatMulGradient(): void {
  if (fastGradientInstalled) return;
  fastGradientInstalled = true;
  tf.registerGradient({
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved as [Tensor, Tensor];
      const grad = Array.isArray(dy) ? (dy[0] as Tensor) : dy;
      const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
      const mm = matMulT;
      if (!transposeA && !transposeB)
        return { a: () => mm(grad, b, false, true), b: () => mm(a, grad, true) };
      if (!transposeA && transposeB) return { a: () => mm(grad, b), b: () => mm(grad, a, true) };
      if (transposeA && !transposeB) return { a: () => mm(b, grad, false, true), b: () => mm(a, grad) };
      return { a: () => mm(b, grad, true, true), b: () => mm(grad, a, true, true) };
    },
  });
}
