import {
  HOOK_SPEC_VERSION,
  type PeftPlugin,
  type Scalar,
  type Tensor3D,
  clsSaliency,
  l2Normalize,
  requireNumberInRange,
  invalidOption,
  requirePositiveInt,
  selectTokens,
  tf,
  topKSelection,
} from '@peftjs/core';

/**
 * SHIP's prompt matching loss (spec §7): on the last block's output, each prompt token is matched to its nearest
 * (cosine) token among the `topK` most salient image tokens (head-averaged CLS logits of that block), and the loss
 * is the mean cosine distance. It is added to the training loss with `weight` (0.5). Unlike the official code, the
 * switch works: `enabled: false` or `weight: 0` removes it, and `warmupEpochs` delays it.
 */
export interface PromptMatchingLossOptions {
  /** Switch for the loss (default true); false keeps the plugin but adds nothing. */
  enabled?: boolean;
  /** Factor of the loss in the training objective (≥ 0; default 0.5; 0 disables it). */
  weight?: number;
  /** Number of most salient image tokens the prompts are matched against (positive integer; default 10). */
  topK?: number;
  /** Epochs without the loss at the start of training (default 0: from the first step, as the code). */
  warmupEpochs?: number;
  /** Block whose output is matched (default: the last block). */
  block?: number | null;
  /**
   * Plugin name (default `ship-pml`); the prefix is the name with characters other than letters, digits and
   * `_` replaced by `_`.
   */
  name?: string;
}

/** Mean over samples and prompt tokens of min_j (1 − cos(P_p, Z_j)). */
export function promptMatchingDistance(prompts: Tensor3D, salient: Tensor3D): Scalar {
  return tf.tidy(() => {
    const cos = tf.matMul(l2Normalize(prompts), tf.transpose(l2Normalize(salient), [0, 2, 1]));
    return tf.mean(tf.sub(1, tf.max(cos, 2))) as Scalar;
  });
}

/**
 * The prompt-matching-loss plugin: observes the chosen block's attention logits and output in training
 * forwards (after the warm-up) and adds the loss as `pml`. It has no parameters. Invalid options throw
 * `INVALID_OPTION`.
 */
export function promptMatchingLoss(options: PromptMatchingLossOptions = {}): PeftPlugin {
  const enabled = options.enabled ?? true;
  const weight = requireNumberInRange('weight', options.weight ?? 0.5, 0, Number.MAX_VALUE);
  const topK = requirePositiveInt('topK', options.topK ?? 10);
  const warmupEpochs = options.warmupEpochs ?? 0;
  if (!Number.isInteger(warmupEpochs) || warmupEpochs < 0)
    invalidOption('warmupEpochs', warmupEpochs, 'a non-negative integer');
  const name = options.name ?? 'ship-pml';
  const active = (training: boolean, epoch: number) =>
    enabled && weight > 0 && training && epoch >= warmupEpochs;
  return {
    name,
    type: 'ship-pml',
    version: '0.1.0',
    specVersion: HOOK_SPEC_VERSION,
    prefix: name.replace(/[^A-Za-z0-9_]/g, '_'),
    options: { enabled, weight, topK, warmupEpochs, block: options.block ?? null, name },
    hooks: {
      attnLogits(ctx, logits, info) {
        if (!active(ctx.training, ctx.epoch) || info.block !== (options.block ?? ctx.config.depth - 1))
          return;
        ctx.scratch.set('selection', topKSelection(clsSaliency(logits, info.layout.numImageTokens), topK));
      },
      blockEnd(ctx, stream, block) {
        if (!active(ctx.training, ctx.epoch) || block !== (options.block ?? ctx.config.depth - 1))
          return undefined;
        const selection = ctx.scratch.get('selection') as Tensor3D | undefined;
        const prompts = stream.promptTensor();
        if (!selection || !prompts) return undefined;
        ctx.addLoss('pml', promptMatchingDistance(prompts, selectTokens(selection, stream.image)), weight);
        return undefined;
      },
    },
  };
}
