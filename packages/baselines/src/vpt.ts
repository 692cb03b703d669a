import {
  HOOK_SPEC_VERSION,
  type HookContext,
  type JsonObject,
  type PeftPlugin,
  type Tensor3D,
  type TokenStream,
  repeatBatch,
  requirePositiveInt,
} from '@peftjs/core';
import {
  BASELINES_VERSION,
  type PluginIdentityOptions,
  type ResolvedIdentity,
  dropout,
  identityJson,
  requireDropout,
  requireOneOf,
  requireOptionsObject,
  resolveIdentity,
  uniformTensor,
} from './common.js';

/**
 * `shallow`: one prompt inserted before block 0; `deep`: a fresh prompt at every block (see
 * `VptOptions.mode`).
 */
export type VptMode = 'shallow' | 'deep';

export interface VptOptions extends PluginIdentityOptions {
  /** `shallow`: prompts enter once, before block 0. `deep`: new prompts at every block. */
  mode: VptMode;
  /** Prompt tokens per insertion. */
  tokens: number;
  /** Dropout on the prompt tokens while training (default 0). */
  dropout?: number;
}

/** `VptOptions` validated, with defaults applied (what the plugin saves as its options). */
export interface ResolvedVptOptions extends ResolvedIdentity {
  /** Shallow or deep prompting. */
  mode: VptMode;
  /** Prompt tokens n per insertion. */
  tokens: number;
  /** Dropout rate on the prompt tokens while training. */
  dropout: number;
}

/** Validates `VptOptions` (throws `INVALID_OPTION` naming the option) and fills in defaults. */
export function resolveVptOptions(options: VptOptions): ResolvedVptOptions {
  requireOptionsObject('vpt', options);
  return {
    ...resolveIdentity('vpt', options, { name: 'vpt', prefix: 'vpt' }),
    mode: requireOneOf('vpt.mode', options.mode, ['shallow', 'deep'] as const),
    tokens: requirePositiveInt('vpt.tokens', options.tokens),
    dropout: requireDropout('vpt.dropout', options.dropout ?? 0),
  };
}

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
export function vpt(options: VptOptions): PeftPlugin {
  const o = resolveVptOptions(options);
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
    name: o.name,
    type: 'vpt',
    version: BASELINES_VERSION,
    specVersion: HOOK_SPEC_VERSION,
    prefix: o.prefix,
    ...(o.tier !== undefined ? { tier: o.tier } : {}),
    options: { ...identityJson(o), mode: o.mode, tokens: o.tokens, dropout: o.dropout } satisfies JsonObject,
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
