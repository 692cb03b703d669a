import {
  HOOK_SPEC_VERSION,
  type HookContext,
  type JsonObject,
  type PeftPlugin,
  type PluginHooks,
  type SetupContext,
  type Tensor,
  type Tensor3D,
  gelu,
  invalidOption,
  linear,
  requirePositiveInt,
  tf,
} from '@peftjs/core';
import {
  BASELINES_VERSION,
  type PluginIdentityOptions,
  type ResolvedIdentity,
  dropout,
  identityJson,
  kaimingUniformBound,
  requireBoolean,
  requireDropout,
  requireOneOf,
  requireOptionsObject,
  resolveIdentity,
  truncatedNormalTensor,
  uniformTensor,
} from './common.js';

/**
 * Adapter design: `houlsby` (sequential, after attention and MLP) or `adaptformer` (parallel to the MLP); see
 * `AdapterOptions.kind`.
 */
export type AdapterKind = 'houlsby' | 'adaptformer';

export interface AdapterOptions extends PluginIdentityOptions {
  /**
   * `houlsby`: sequential bottlenecks y + up(gelu(down(y))) on the attention branch (after the output projection)
   * and on the MLP output. `adaptformer`: one bottleneck parallel to the MLP, mlp(x) + s·up(relu(down(x))) on the
   * MLP input x (the LayerNorm-2 output).
   */
  kind: AdapterKind;
  /** Bottleneck width. */
  bottleneck: number;
  /** AdaptFormer's scale s (default 0.1); not used by Houlsby adapters. */
  scale?: number;
  /** Zero up-projection, so the model starts as the frozen one (default true). */
  zeroInit?: boolean;
  /** Dropout on the bottleneck activations while training (default 0; AdaptFormer's code uses 0.1). */
  dropout?: number;
}

/** `AdapterOptions` validated, with defaults applied (what the plugin saves as its options). */
export interface ResolvedAdapterOptions extends ResolvedIdentity {
  /** Adapter design. */
  kind: AdapterKind;
  /** Bottleneck width m. */
  bottleneck: number;
  /** 1 for Houlsby (no scale). */
  scale: number;
  /** Whether the up-projection starts at zero. */
  zeroInit: boolean;
  /** Dropout rate on the bottleneck activations while training. */
  dropout: number;
}

/**
 * Validates `AdapterOptions` (throws `INVALID_OPTION` naming the option, e.g. a `scale` given for Houlsby)
 * and fills in defaults.
 */
export function resolveAdapterOptions(options: AdapterOptions): ResolvedAdapterOptions {
  requireOptionsObject('adapter', options);
  const kind = requireOneOf('adapter.kind', options.kind, ['houlsby', 'adaptformer'] as const);
  if (kind === 'houlsby' && options.scale !== undefined) {
    invalidOption(
      'adapter.scale',
      options.scale,
      'left unset for Houlsby adapters (only AdaptFormer scales)',
    );
  }
  const scale = options.scale ?? (kind === 'adaptformer' ? 0.1 : 1);
  if (typeof scale !== 'number' || !Number.isFinite(scale))
    invalidOption('adapter.scale', scale, 'a finite number');
  return {
    ...resolveIdentity('adapter', options, { name: 'adapter', prefix: 'adapter' }),
    kind,
    bottleneck: requirePositiveInt('adapter.bottleneck', options.bottleneck),
    scale,
    zeroInit: requireBoolean('adapter.zeroInit', options.zeroInit ?? true),
    dropout: requireDropout('adapter.dropout', options.dropout ?? 0),
  };
}

/**
 * Bottleneck adapters: Houlsby et al. (2019) and AdaptFormer (Chen et al., 2022). Each adapter has
 * `{site}.down.weight` `[D, m]`, `{site}.down.bias`, `{site}.up.weight` `[m, D]`, `{site}.up.bias` under
 * `blocks.{i}`, with site `attn` or `mlp`.
 *
 * Init: Houlsby, near-identity as the paper (weights N(0, 0.01²) truncated at 2σ); AdaptFormer, its code's
 * LoRA-style init (down U(±1/√D)). Biases start at zero and, with `zeroInit`, so does the up-projection.
 * The Houlsby paper also tunes the LayerNorms; this plugin does not (combine with your own preset if wanted).
 */
export function adapter(options: AdapterOptions): PeftPlugin {
  const o = resolveAdapterOptions(options);
  const sites = o.kind === 'houlsby' ? ['attn', 'mlp'] : ['mlp'];

  function addAdapter(ctx: SetupContext, block: number, site: string): void {
    const { dim } = ctx.config;
    const m = o.bottleneck;
    const base = `blocks.${block}.${site}`;
    const rng = ctx.rng.split(base);
    const init = (name: string, shape: number[], fanIn: number): Tensor =>
      o.kind === 'houlsby'
        ? truncatedNormalTensor(rng.split(name), shape, 0.01)
        : uniformTensor(rng.split(name), shape, kaimingUniformBound(fanIn));
    ctx.addParameter(`${base}.down.weight`, init('down', [dim, m], dim));
    ctx.addParameter(`${base}.down.bias`, tf.zeros([m]));
    ctx.addParameter(`${base}.up.weight`, o.zeroInit ? tf.zeros([m, dim]) : init('up', [m, dim], m));
    ctx.addParameter(`${base}.up.bias`, tf.zeros([dim]));
  }

  /** up(act(down(x))), with dropout on the bottleneck while training. */
  function bottleneck(ctx: HookContext, x: Tensor3D, block: number, site: string): Tensor3D {
    const p = (name: string) => ctx.param(`blocks.${block}.${site}.${name}`);
    const down = linear(x, p('down.weight'), p('down.bias'));
    let hidden = o.kind === 'houlsby' ? gelu(down) : tf.relu(down);
    if (ctx.training) hidden = dropout(hidden, o.dropout, ctx.rng.split(`dropout:${site}:${block}`));
    return linear(hidden, p('up.weight'), p('up.bias')) as Tensor3D;
  }

  const hooks: PluginHooks =
    o.kind === 'houlsby'
      ? {
          attnOut: (ctx, output, block) => tf.add(output, bottleneck(ctx, output, block, 'attn')) as Tensor3D,
          mlp: (ctx, input, next, block) => {
            const y = next(input);
            return tf.add(y, bottleneck(ctx, y, block, 'mlp')) as Tensor3D;
          },
        }
      : {
          mlp: (ctx, input, next, block) =>
            tf.add(next(input), tf.mul(bottleneck(ctx, input, block, 'mlp'), o.scale)) as Tensor3D,
        };

  return {
    name: o.name,
    type: 'adapter',
    version: BASELINES_VERSION,
    specVersion: HOOK_SPEC_VERSION,
    prefix: o.prefix,
    ...(o.tier !== undefined ? { tier: o.tier } : {}),
    options: {
      ...identityJson(o),
      kind: o.kind,
      bottleneck: o.bottleneck,
      ...(o.kind === 'adaptformer' ? { scale: o.scale } : {}),
      zeroInit: o.zeroInit,
      dropout: o.dropout,
    } satisfies JsonObject,
    setup(ctx) {
      for (let i = 0; i < ctx.config.depth; i++) for (const site of sites) addAdapter(ctx, i, site);
    },
    hooks,
  };
}
