import {
  HOOK_SPEC_VERSION,
  type HookContext,
  type JsonObject,
  type PeftPlugin,
  type PluginHooks,
  type Tensor,
  tf,
} from '@peftjs/core';
import {
  BASELINES_VERSION,
  type PluginIdentityOptions,
  type ResolvedIdentity,
  attachOnce,
  identityJson,
  requireOneOf,
  requireOptionsObject,
  requireSubset,
  resolveIdentity,
} from './common.js';

/**
 * Where a scale-and-shift sits, named after the operation it follows:
 * - `patch_embed`: the patch projection, before the CLS token and position embedding (the `patchEmbed` hook);
 * - `norm1`: LayerNorm-1 output (applied to the `qkv` hook's input, which is that output);
 * - `qkv`: the fused q|k|v projection `[B, N, 3D]`;
 * - `proj`: the attention output projection (the `proj` hook);
 * - `norm2`: LayerNorm-2 output (the `mlp` hook's input);
 * - `fc1`: the MLP's first linear, before GELU (the `fc1` hook);
 * - `fc2`: the MLP's second linear, i.e. the MLP output (the `fc2` hook);
 * - `norm`: the final LayerNorm on the CLS features (the `head` hook, declared as composing).
 */
export type SsfSite = 'patch_embed' | 'norm1' | 'qkv' | 'proj' | 'norm2' | 'fc1' | 'fc2' | 'norm';
/** Every `SsfSite`, in forward order: the paper's full set. */
export const SSF_SITES: readonly SsfSite[] = [
  'patch_embed',
  'norm1',
  'qkv',
  'proj',
  'norm2',
  'fc1',
  'fc2',
  'norm',
];

/**
 * `identity`: γ = 1, β = 0, so the model starts as the frozen one. `normal`: γ ~ N(1, 0.02²), β ~ N(0, 0.02²), the
 * official SSF code's init.
 */
export type SsfInit = 'identity' | 'normal';

export interface SsfOptions extends PluginIdentityOptions {
  /** Sites to scale and shift (default: all of `SSF_SITES`). */
  sites?: readonly SsfSite[];
  /** Default `identity`. */
  init?: SsfInit;
}

/** `SsfOptions` validated, with defaults applied (what the plugin saves as its options). */
export interface ResolvedSsfOptions extends ResolvedIdentity {
  /** Sites that get a scale and shift, distinct, in the order given. */
  sites: SsfSite[];
  /** Initialisation of γ and β. */
  init: SsfInit;
}

/** Validates `SsfOptions` (throws `INVALID_OPTION` naming the option) and fills in defaults. */
export function resolveSsfOptions(options: SsfOptions = {}): ResolvedSsfOptions {
  requireOptionsObject('ssf', options);
  return {
    ...resolveIdentity('ssf', options, { name: 'ssf', prefix: 'ssf' }),
    sites: requireSubset('ssf.sites', options.sites ?? SSF_SITES, SSF_SITES),
    init: requireOneOf('ssf.init', options.init ?? 'identity', ['identity', 'normal'] as const),
  };
}

/**
 * SSF, Scaling & Shifting your Features (Lian et al., 2022): a per-channel γ ⊙ x + β after each operation of the
 * frozen backbone. Parameters are `blocks.{i}.{site}.scale` / `.shift` (and `patch_embed.*`, `norm.*` once).
 *
 * `norm1` reaches the qkv projection only, not `AttentionArgs.input` (which only attention overrides
 * such as decoupled attention read).
 */
export function ssf(options: SsfOptions = {}): PeftPlugin {
  const o = resolveSsfOptions(options);
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
    name: o.name,
    type: 'ssf',
    version: BASELINES_VERSION,
    specVersion: HOOK_SPEC_VERSION,
    prefix: o.prefix,
    ...(o.tier !== undefined ? { tier: o.tier } : {}),
    ...(on.has('norm') ? { composes: ['head'] as const } : {}),
    options: { ...identityJson(o), sites: o.sites, init: o.init } satisfies JsonObject,
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
