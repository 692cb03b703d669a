import {
  type AttentionArgs,
  type AttentionResult,
  type PeftPlugin,
  type Tensor3D,
  type Tensor4D,
  pluginFunction,
  pluginIdentity,
  definePlugin,
  tf,
  z,
} from '@peftjs/core';
import {
  matMulT,
  mergeHeads,
  segmentSoftmax,
  softmax,
  transposeLast2,
  transposedMatMulIsFast,
} from '@peftjs/core/ops';

/** Version of the decoupled-attention plugin (`PeftPlugin.version`). */
export const DECOUPLED_ATTENTION_VERSION = '0.1.0';

/** Options of decoupled attention, one schema field per option (docs/ship-method.md §5). */
export const DECOUPLED_ATTENTION_OPTIONS = z.strictObject({
  lambda: z.number().min(0).max(1).default(0.1).describe('λ: share of the image-to-prompt path'),
  mix: z
    .enum(['convex', 'additive'])
    .default('convex')
    .describe(
      'how the two image paths combine: convex (1 − λ)·I2I + λ·I2P (official code) or additive I2I + λ·I2P',
    ),
  fullAttentionFrom: z
    .int()
    .nonnegative()
    .nullable()
    .default(null)
    .describe('first block where prompts attend (one joint softmax over all keys); null: the last block'),
  isolate: z
    .boolean()
    .default(true)
    .describe(
      'compute image-independent prompts once per forward at batch 1 and cache them at inference; false: per image ' +
        '(same numbers, more work)',
    ),
  name: z
    .string()
    .min(1)
    .default('decoupled-attention')
    .describe(
      'plugin name; the prefix is the name with characters other than letters, digits and _ replaced by _',
    ),
});

/** Options of `decoupledAttention` as given: every key optional (see `DECOUPLED_ATTENTION_OPTIONS`). */
export type DecoupledAttentionOptions = z.input<typeof DECOUPLED_ATTENTION_OPTIONS>;

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
 * SHIP's decoupled attention (docs/ship-method.md §5), for any prompt plugin: prompts are the tokens after the
 * image tokens (tier `normal`, exclusive `attention` site, no parameters).
 *
 * - Image tokens attend to image keys and to prompt keys through two separate softmaxes, mixed as
 *   Z' = (1 − λ)·I2I + λ·I2P (the official code; `mix: 'additive'` gives I2I + λ·I2P, the paper figure's form).
 *   The image-to-image softmax is never renormalised by prompt keys, so with λ = 0 image tokens equal the frozen
 *   prompt-free ViT's (to float rounding).
 * - Prompt tokens issue no queries before the last block: their attention output is their own LayerNorm-1 output
 *   (no value projection). From block `fullAttentionFrom` on (default: the last block) prompt rows use one joint
 *   softmax over all keys.
 *
 * Logits handed to observers are `[B, H, N_img, N]` in decoupled blocks and `[B, H, N, N]` in full blocks. Without
 * prompt tokens a block runs the standard attention.
 */
export const DECOUPLED_ATTENTION_PLUGIN = definePlugin({
  type: 'decoupled-attention',
  version: DECOUPLED_ATTENTION_VERSION,
  description:
    "SHIP's decoupled attention: image tokens keep their own softmax and take a fixed λ share from prompts, which " +
    'issue no queries before the last block',
  options: DECOUPLED_ATTENTION_OPTIONS,
  create(options): PeftPlugin {
    const { lambda, mix, fullAttentionFrom, isolate, name } = options;
    const fullFrom = (depth: number) => fullAttentionFrom ?? depth - 1;
    return {
      ...pluginIdentity({ type: 'decoupled-attention', version: DECOUPLED_ATTENTION_VERSION, name }, options),
      // Before the full-attention block prompt rows never read image rows: image-independent prompts can be
      // computed once per forward (and cached at inference).
      isolatesPrompts: (block, config) => isolate && block < fullFrom(config.depth),
      hooks: {
        attention(ctx, args, next) {
          if (args.layout.numPromptTokens === 0) return next(args);
          const promptsAttend = args.block >= fullFrom(ctx.config.depth);
          return decoupledAttentionCore(args, { lambda, mix, promptsAttend });
        },
      },
    };
  },
});

/** The decoupled-attention plugin from options (parsed by `DECOUPLED_ATTENTION_OPTIONS`). */
export const decoupledAttention = pluginFunction(DECOUPLED_ATTENTION_PLUGIN);
