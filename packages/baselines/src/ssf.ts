import {
  type HookContext,
  type PeftPlugin,
  type PluginHooks,
  type Tensor,
  tf,
  z,
  pluginFunction,
} from '@peftjs/core';
import { attachOnce, baselineMethod, distinctList, identityFields, pluginHeader } from './common.js';

/**
 * Every place a scale-and-shift can sit, in forward order (the paper's full set), named after the operation it
 * follows, named after the operation it follows:
 * - `patch_embed`: the patch projection, before the CLS token and position embedding (the `patchEmbed` hook);
 * - `norm1`: LayerNorm-1 output (applied to the `qkv` hook's input, which is that output);
 * - `qkv`: the fused q|k|v projection `[B, N, 3D]`;
 * - `proj`: the attention output projection (the `proj` hook);
 * - `norm2`: LayerNorm-2 output (the `mlp` hook's input);
 * - `fc1`: the MLP's first linear, before GELU (the `fc1` hook);
 * - `fc2`: the MLP's second linear, i.e. the MLP output (the `fc2` hook);
 * - `norm`: the final LayerNorm on the CLS features (the `head` hook, declared as composing).
 */
export const SSF_SITES = ['patch_embed', 'norm1', 'qkv', 'proj', 'norm2', 'fc1', 'fc2', 'norm'] as const;
/** One of `SSF_SITES`. */
export type SsfSite = (typeof SSF_SITES)[number];

/** Options of SSF: the only place their defaults live. */
export const SSF_OPTIONS = z
  .strictObject({
    sites: distinctList(z.enum(SSF_SITES))
      .default([...SSF_SITES])
      .describe('sites to scale and shift (all by default)'),
    init: z
      .enum(['identity', 'normal'])
      .default('identity')
      .describe(
        'identity: γ = 1, β = 0 (starts as the frozen model); normal: γ ~ N(1, 0.02²), β ~ N(0, 0.02²)',
      ),
    ...identityFields({ name: 'ssf', prefix: 'ssf' }),
  })
  .describe(
    'SSF (Lian et al., 2022): a learned per-channel scale and shift after each operation of the backbone',
  );

/**
 * SSF, Scaling & Shifting your Features (Lian et al., 2022): a per-channel γ ⊙ x + β after each operation of the
 * frozen backbone. Parameters are `blocks.{i}.{site}.scale` / `.shift` (and `patch_embed.*`, `norm.*` once).
 *
 * `norm1` reaches the qkv projection only, not `AttentionArgs.input` (which only attention overrides
 * such as decoupled attention read).
 */
export const SSF_METHOD = baselineMethod('ssf', SSF_OPTIONS, createSsf);

/** An SSF plugin from options (parsed by `SSF_OPTIONS`: unknown keys and bad values are refused). */
export const ssf = pluginFunction(SSF_METHOD);

function createSsf(o: z.output<typeof SSF_OPTIONS>): PeftPlugin {
  const on = new Set(o.sites);
  const claim = attachOnce(o.name);

  const affine = <T extends Tensor>(ctx: HookContext, x: T, base: string): T =>
    tf.add(tf.mul(x, ctx.param(`${base}.scale`)), ctx.param(`${base}.shift`)) as T;
  const at = <T extends Tensor>(ctx: HookContext, x: T, block: number, site: SsfSite): T =>
    on.has(site) ? affine(ctx, x, `blocks.${block}.${site}`) : x;

  const hooks: PluginHooks = {};
  if (on.has('norm1') || on.has('qkv')) {
    hooks.qkv = (ctx, input, next, block) => at(ctx, next(at(ctx, input, block, 'norm1')), block, 'qkv');
  }
  // Each scale-and-shift follows the operation it is named after: the linear layers' hooks wrap them directly.
  for (const site of ['proj', 'fc1', 'fc2'] as const) {
    if (on.has(site)) hooks[site] = (ctx, input, next, block) => at(ctx, next(input), block, site);
  }
  if (on.has('norm2')) hooks.mlp = (ctx, input, next, block) => next(at(ctx, input, block, 'norm2'));
  if (on.has('patch_embed')) hooks.patchEmbed = (ctx, input, next) => affine(ctx, next(input), 'patch_embed');
  if (on.has('norm')) hooks.head = (ctx, features, next) => next(affine(ctx, features, 'norm'));

  return {
    ...pluginHeader('ssf', o),
    ...(on.has('norm') ? { composes: ['head'] as const } : {}),
    setup(ctx) {
      claim();
      const { dim, depth, mlpHidden } = ctx.config;
      const width: Record<SsfSite, number> = {
        patch_embed: dim,
        norm1: dim,
        qkv: 3 * dim,
        proj: dim,
        norm2: dim,
        fc1: mlpHidden,
        fc2: dim,
        norm: dim,
      };
      const add = (base: string, channels: number) => {
        const rng = ctx.rng.split(base);
        const values = (mean: number) =>
          o.init === 'identity'
            ? new Float32Array(channels).fill(mean)
            : rng.fillNormal(new Float32Array(channels), mean, 0.02);
        ctx.addParameter(`${base}.scale`, tf.tensor1d(values(1)));
        ctx.addParameter(`${base}.shift`, tf.tensor1d(values(0)));
      };
      // patch_embed and norm occur once per model, every other site once per block.
      const once = (site: SsfSite) => site === 'patch_embed' || site === 'norm';
      if (on.has('patch_embed')) add('patch_embed', dim);
      for (let i = 0; i < depth; i++) {
        for (const site of o.sites) if (!once(site)) add(`blocks.${i}.${site}`, width[site]);
      }
      if (on.has('norm')) add('norm', dim);
    },
    hooks,
  };
}

/** Options of `ssf` as given: every key optional (see `SSF_OPTIONS`). */
export type SsfOptions = z.input<typeof SSF_OPTIONS>;
/** How γ and β start (see `SSF_OPTIONS.init`). */
export type SsfInit = z.output<typeof SSF_OPTIONS>['init'];
