import { tf } from './tf.js';
import type { Tensor2D, Tensor3D, Tensor4D } from './tf.js';

/**
 * Saliency of image tokens as SHIP reads it: the CLS query's pre-softmax logits over the image keys, averaged over
 * heads → `[B, N_img]`. The CLS→CLS entry is included. Works on full logits `[B, H, N, N]` and on decoupled-attention
 * logits whose query rows are the image tokens only.
 */
export function clsSaliency(logits: Tensor4D, numImageTokens: number): Tensor2D {
  return tf.tidy(() => {
    const [batch, heads] = logits.shape;
    const clsRow = tf.slice(logits, [0, 0, 0, 0], [batch, heads, 1, numImageTokens]);
    return tf.reshape(tf.mean(clsRow, 1), [batch, numImageTokens]) as Tensor2D;
  });
}

/**
 * Indices of the `k` most salient image tokens per sample, as a one-hot selection matrix `[B, k, N_img]` with no
 * gradient (the selection is discrete). Multiplying it with tokens gathers them; unlike `gather`, that matmul has a
 * gradient on every backend (wasm lacks the kernel behind gather's gradient).
 */
export function topKSelection(saliency: Tensor2D, k: number): Tensor3D {
  return tf.tidy(() => {
    const [, numTokens] = saliency.shape;
    const { indices } = tf.topk(detach(saliency), Math.min(k, numTokens));
    // int32 one-hot then cast: tfjs-wasm 4.22's OneHot writes integer bits into float32 outputs.
    return tf.cast(tf.oneHot(indices, numTokens), 'float32') as Tensor3D;
  });
}

/**
 * A copy with no gradient path (tfjs has no stop-gradient op, and TopK has no gradient, so the selection must be
 * cut from the tape). The copy goes through the host: cheap for the `[B, N_img]` saliency it is used on.
 */
export function detach<T extends tf.Tensor>(x: T): T {
  return tf.tensor(x.dataSync(), x.shape, x.dtype) as T;
}

/** Rows of `tokens [B, N, D]` picked by a selection `[B, k, N]` → `[B, k, D]`. */
export function selectTokens(selection: Tensor3D, tokens: Tensor3D): Tensor3D {
  return tf.matMul(selection, tokens) as Tensor3D;
}

/** Rows scaled to unit L2 norm (with a small floor, as `F.normalize`). */
export function l2Normalize<T extends tf.Tensor>(x: T, eps = 1e-12): T {
  return tf.tidy(() => tf.div(x, tf.maximum(tf.norm(x, 'euclidean', -1, true), eps))) as T;
}
