import {
  type AttentionArgs,
  type AttentionResult,
  HOOK_SPEC_VERSION,
  type PeftPlugin,
  type Tensor3D,
  type Tensor4D,
  invalidOption,
  mergeHeads,
  requireNumberInRange,
  segmentSoftmax,
  softmax,
  tf,
  matMulT,
  transposeLast2,
  transposedMatMulIsFast,
} from '@peftjs/core';

/**
 * SHIP's decoupled attention (spec §5), for any prompt plugin: prompts are the tokens after the image tokens.
 *
 * - Image tokens attend to image keys and to prompt keys through two separate softmaxes, mixed as
 *   Z' = (1 − λ)·I2I + λ·I2P (the official code; `mix: 'additive'` gives I2I + λ·I2P, the paper figure's form).
 *   The image-to-image softmax is never renormalised by prompt keys, so with λ = 0 image tokens equal the frozen
 *   prompt-free ViT's (to float rounding).
 * - Prompt tokens issue no queries before the last block: their attention output is their own LayerNorm-1 output
 *   (no value projection). From block `fullAttentionFrom` on (default: the last block) prompt rows use one joint
 *   softmax over all keys.
 *
 * Logits handed to observers are `[B, H, N_img, N]` in decoupled blocks and `[B, H, N, N]` in full blocks.
 */
export interface DecoupledAttentionOptions {
  /** Share of the image-to-prompt path (default 0.1). */
  lambda?: number;
  /** How the two image paths combine: `convex` (default) (1 − λ)·I2I + λ·I2P, or `additive` I2I + λ·I2P. */
  mix?: 'convex' | 'additive';
  /** First block where prompts attend (default: the last block). */
  fullAttentionFrom?: number | null;
  /**
   * Let the backbone compute image-independent prompts once per forward at batch 1 and cache them at inference
   * (default true). False computes every prompt row per image — same numbers, more work (kept for tests).
   */
  isolate?: boolean;
  /**
   * Plugin name (default `decoupled-attention`); the prefix is the name with characters other than letters,
   * digits and `_` replaced by `_`.
   */
  name?: string;
}

function sliceTokens(x: Tensor4D, start: number, length: number): Tensor4D {
  const [batch, heads, , dim] = x.shape;
  return tf.slice(x, [0, 0, start, 0], [batch, heads, length, dim]);
}

/** The decoupled attention computation itself, usable outside the plugin (tests, caches). */
export function decoupledAttentionCore(
  args: AttentionArgs,
  options: { lambda: number; mix: 'convex' | 'additive'; promptsAttend: boolean },
): AttentionResult {
  const { q, k, v, scale, layout, input } = args;
  const nImg = layout.numImageTokens;
  const nPrompt = layout.numPromptTokens;
  const [batch, , ,] = q.shape;
  // q·kᵀ through the matmul's flag where that is fast; elsewhere the keys are transposed once, for both products.
  const flags = transposedMatMulIsFast();
  const keys = flags ? k : transposeLast2(k);
  const logitsOf = (queries: Tensor4D) => matMulT<Tensor4D>(tf.mul(queries, scale), keys, false, flags);
  // One product gives both the image→image and image→prompt logits. One two-segment softmax normalises the image
  // and prompt key columns separately, already weighted (1 − λ | λ), so ONE product with all values is the mix
  // (1 − λ)·I2I + λ·I2P: no split of the logits, no value slices, no second product, no weighted sum.
  const imageLogits = logitsOf(sliceTokens(q, 0, nImg));
  const imageWeight = options.mix === 'convex' ? 1 - options.lambda : 1;
  const mixed = tf.matMul(segmentSoftmax(imageLogits, nImg, imageWeight, options.lambda), v) as Tensor4D;
  const imageOut = mergeHeads(mixed);
  if (!options.promptsAttend) {
    const dim = input.shape[2];
    const promptOut = tf.slice(input, [0, nImg, 0], [batch, nPrompt, dim]);
    return { output: tf.concat([imageOut, promptOut], 1) as Tensor3D, logits: imageLogits };
  }
  const promptLogits = logitsOf(sliceTokens(q, nImg, nPrompt));
  const promptOut = mergeHeads(tf.matMul(softmax(promptLogits), v) as Tensor4D);
  return {
    output: tf.concat([imageOut, promptOut], 1) as Tensor3D,
    logits: tf.concat([imageLogits, promptLogits], 2) as Tensor4D,
  };
}

/**
 * The decoupled-attention plugin (tier `normal`, exclusive `attention` site, no parameters). Without prompt
 * tokens a block runs the standard attention. Invalid options throw `INVALID_OPTION`.
 */
export function decoupledAttention(options: DecoupledAttentionOptions = {}): PeftPlugin {
  const lambda = requireNumberInRange('lambda', options.lambda ?? 0.1, 0, 1);
  const mix = options.mix ?? 'convex';
  if (mix !== 'convex' && mix !== 'additive') invalidOption('mix', options.mix, '"convex" or "additive"');
  const fullFrom = options.fullAttentionFrom ?? undefined;
  if (fullFrom !== undefined && (!Number.isInteger(fullFrom) || fullFrom < 0)) {
    invalidOption('fullAttentionFrom', fullFrom, 'a block index ≥ 0');
  }
  const name = options.name ?? 'decoupled-attention';
  const isolate = options.isolate ?? true;
  return {
    name,
    type: 'decoupled-attention',
    version: '0.1.0',
    specVersion: HOOK_SPEC_VERSION,
    prefix: name.replace(/[^A-Za-z0-9_]/g, '_'),
    options: { lambda, mix, fullAttentionFrom: fullFrom ?? null, isolate, name },
    // Before the full-attention block prompt rows never read image rows: image-independent prompts can be
    // computed once per forward (and cached at inference).
    isolatesPrompts: (block, config) => isolate && block < (fullFrom ?? config.depth - 1),
    hooks: {
      attention(ctx, args, next) {
        if (args.layout.numPromptTokens === 0) return next(args);
        const promptsAttend = args.block >= (fullFrom ?? ctx.config.depth - 1);
        return decoupledAttentionCore(args, { lambda, mix, promptsAttend });
      },
    },
  };
}
