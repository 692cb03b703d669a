import {
  type HookContext,
  type PeftPlugin,
  type Tensor3D,
  type TokenStream,
  z,
  pluginFunction,
} from '@peftjs/core';
import { repeatBatch } from '@peftjs/core/ops';
import { baselineMethod, identityFields, pluginHeader } from './common.js';
import { dropout, dropoutRate, uniformTensor } from './common.js';

/** Options of VPT: the only place their defaults live. */
export const VPT_OPTIONS = z
  .strictObject({
    mode: z
      .enum(['shallow', 'deep'])
      .default('deep')
      .describe('shallow: prompts enter once, before block 0; deep: new prompts at every block'),
    tokens: z.int().positive().default(50).describe('prompt tokens per insertion'),
    dropout: dropoutRate().default(0).describe('dropout on the prompt tokens while training'),
    ...identityFields({ name: 'vpt', prefix: 'vpt' }),
  })
  .describe(
    'Visual Prompt Tuning (Jia et al., 2022): learned prompt tokens, once (shallow) or at every block (deep)',
  );

/**
 * VPT's prompt init, Xavier-uniform over the patch embedding's fan-in: U(±√(6 / (3·p² + D))). The 3 is the RGB
 * channel count the reference code hard-codes; it is kept for any channel count so inits match VPT.
 */
export function vptInitBound(patchSize: number, dim: number): number {
  return Math.sqrt(6 / (3 * patchSize * patchSize + dim));
}

/**
 * Visual Prompt Tuning (Jia et al., 2022). Prompts form a segment (key: the plugin name, `vpt` by default) after the
 * image tokens. VPT places them between CLS and the patches; prompts carry no position embedding and attention is
 * permutation-equivariant, so the two orders give the same CLS output and differ only by a permutation of rows.
 *
 * - shallow: one `[1, n, D]` parameter `prompt`, inserted after the embedding; its block outputs are carried on.
 * - deep: one parameter `prompt.{i}` per block, inserted at the start of block i in place of the previous block's
 *   prompt outputs, so the sequence length stays N_img + n.
 */
export const VPT_METHOD = baselineMethod('vpt', VPT_OPTIONS, createVpt);

/** A VPT plugin from options (parsed by `VPT_OPTIONS`: unknown keys and bad values are refused). */
export const vpt = pluginFunction(VPT_METHOD);

function createVpt(o: z.output<typeof VPT_OPTIONS>): PeftPlugin {
  const key = o.name;

  /** The prompt as a stream segment: `[1, n, D]`, or per-sample dropped-out `[B, n, D]` while training. */
  function promptTokens(ctx: HookContext, name: string, site: string): Tensor3D {
    const prompt = ctx.param(name) as unknown as Tensor3D;
    if (!ctx.training || o.dropout === 0) return prompt;
    // VPT drops out each sample's copy independently (dropout after expanding to the batch).
    const batched = repeatBatch(prompt as Tensor3D, ctx.batchSize);
    return dropout(batched, o.dropout, ctx.rng.split(`dropout:${site}`));
  }

  const insert = (ctx: HookContext, stream: TokenStream, name: string, site: string) =>
    stream.withSegment(key, ctx.plugin, promptTokens(ctx, name, site));

  return {
    ...pluginHeader('vpt', o),
    setup(ctx) {
      const { dim, depth, patchSize } = ctx.config;
      const bound = vptInitBound(patchSize, dim);
      const shape = [1, o.tokens, dim];
      if (o.mode === 'shallow') {
        ctx.addParameter('prompt', uniformTensor(ctx.rng.split('prompt'), shape, bound));
        return;
      }
      for (let i = 0; i < depth; i++) {
        ctx.addParameter(`prompt.${i}`, uniformTensor(ctx.rng.split(`prompt.${i}`), shape, bound));
      }
    },
    hooks:
      o.mode === 'shallow'
        ? { embed: (ctx, stream) => insert(ctx, stream, 'prompt', 'embed') }
        : {
            // withSegment replaces the segment in place: block i−1's prompt outputs are discarded.
            blockStart: (ctx, stream, block) => insert(ctx, stream, `prompt.${block}`, `block:${block}`),
          },
  };
}

/** Options of `vpt` as given: every key optional (see `VPT_OPTIONS`). */
export type VptOptions = z.input<typeof VPT_OPTIONS>;
/** `shallow`: one prompt inserted before block 0; `deep`: a fresh prompt at every block. */
export type VptMode = z.output<typeof VPT_OPTIONS>['mode'];
