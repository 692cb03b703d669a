import {
  type PeftPlugin,
  type Scalar,
  type Tensor3D,
  pluginFunction,
  pluginIdentity,
  definePlugin,
  tf,
  z,
} from '@peftjs/core';
import { clsSaliency, l2Normalize, selectTokens, topKSelection } from '@peftjs/core/ops';

/** Version of the prompt-matching-loss plugin (`PeftPlugin.version`). */
export const PML_VERSION = '0.1.0';

/** Options of the prompt matching loss: the only place their defaults live (docs/ship-method.md §7). */
export const PML_OPTIONS = z.strictObject({
  enabled: z.boolean().default(true).describe('switch for the loss; false keeps the plugin but adds nothing'),
  weight: z
    .number()
    .finite()
    .min(0)
    .default(0.5)
    .describe('factor of the loss in the training objective; 0 disables it'),
  topK: z.int().positive().default(10).describe('most salient image tokens the prompts are matched against'),
  warmupEpochs: z
    .int()
    .nonnegative()
    .default(0)
    .describe(
      'epochs without the loss at the start of training (0: from the first step, as the official code)',
    ),
  block: z
    .int()
    .nonnegative()
    .nullable()
    .default(null)
    .describe('block whose output is matched; null: the last block'),
  name: z
    .string()
    .min(1)
    .default('ship-pml')
    .describe(
      'plugin name; the prefix is the name with characters other than letters, digits and _ replaced by _',
    ),
});

/** Options of `promptMatchingLoss` as given: every key optional (see `PML_OPTIONS` for defaults). */
export type PromptMatchingLossOptions = z.input<typeof PML_OPTIONS>;

/** Mean over samples and prompt tokens of min_j (1 − cos(P_p, Z_j)). */
export function promptMatchingDistance(prompts: Tensor3D, salient: Tensor3D): Scalar {
  return tf.tidy(() => {
    const cos = tf.matMul(l2Normalize(prompts), tf.transpose(l2Normalize(salient), [0, 2, 1]));
    return tf.mean(tf.sub(1, tf.max(cos, 2))) as Scalar;
  });
}

/**
 * SHIP's prompt matching loss (docs/ship-method.md §7): on the chosen block's output (default the last), each
 * prompt token is matched to its nearest (cosine) token among the `topK` most salient image tokens (head-averaged
 * CLS logits of that block), and the mean cosine distance is added to the training loss as `pml` with `weight`.
 * It has no parameters. Unlike the official code, the switch works: `enabled: false` or `weight: 0` removes it,
 * and `warmupEpochs` delays it.
 */
export const PML_PLUGIN = definePlugin({
  type: 'ship-pml',
  version: PML_VERSION,
  description:
    "SHIP's prompt matching loss: pulls every prompt output towards its nearest salient image token in the last block",
  options: PML_OPTIONS,
  create(options): PeftPlugin {
    const { enabled, weight, topK, warmupEpochs, block, name } = options;
    const active = (training: boolean, epoch: number) =>
      enabled && weight > 0 && training && epoch >= warmupEpochs;
    return {
      ...pluginIdentity({ type: 'ship-pml', version: PML_VERSION, name }, options),
      hooks: {
        attnLogits(ctx, logits, info) {
          if (!active(ctx.training, ctx.epoch) || info.block !== (block ?? ctx.config.depth - 1)) return;
          ctx.scratch.set('selection', topKSelection(clsSaliency(logits, info.layout.numImageTokens), topK));
        },
        blockEnd(ctx, stream, at) {
          if (!active(ctx.training, ctx.epoch) || at !== (block ?? ctx.config.depth - 1)) return undefined;
          const selection = ctx.scratch.get('selection') as Tensor3D | undefined;
          const prompts = stream.promptTensor();
          if (!selection || !prompts) return undefined;
          ctx.addLoss('pml', promptMatchingDistance(prompts, selectTokens(selection, stream.image)), weight);
          return undefined;
        },
      },
    };
  },
});

/** The prompt-matching-loss plugin from options (parsed by `PML_OPTIONS`: unknown keys and bad values are refused). */
export const promptMatchingLoss = pluginFunction(PML_PLUGIN);
