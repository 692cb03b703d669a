import {
  type HookContext,
  type PeftPlugin,
  type PluginHooks,
  type SetupContext,
  type Tensor,
  type Tensor3D,
  tf,
  z,
  pluginFunction,
} from '@peftjs/core';
import { gelu, linear } from '@peftjs/core/ops';
import { baselineMethod, identityFields, pluginHeader } from './common.js';
import { dropout, dropoutRate, kaimingUniformBound, truncatedNormalTensor, uniformTensor } from './common.js';

const ADAPTFORMER_SCALE = z
  .number()
  .finite()
  .default(0.1)
  .describe(
    "AdaptFormer's scale s of the parallel branch (Houlsby adapters have no scale: leave it at the default)",
  );

/** Options of the bottleneck adapters: the only place their defaults live. */
export const ADAPTER_OPTIONS = z
  .strictObject({
    kind: z
      .enum(['houlsby', 'adaptformer'])
      .default('houlsby')
      .describe(
        'houlsby: sequential bottlenecks y + up(gelu(down(y))) after attention and after the MLP; adaptformer: one ' +
          'bottleneck parallel to the MLP, mlp(x) + s·up(relu(down(x)))',
      ),
    bottleneck: z.int().positive().default(8).describe('bottleneck width m'),
    scale: ADAPTFORMER_SCALE,
    zeroInit: z.boolean().default(true).describe('zero up-projection, so the model starts as the frozen one'),
    dropout: dropoutRate()
      .default(0)
      .describe("dropout on the bottleneck activations while training (AdaptFormer's code uses 0.1)"),
    ...identityFields({ name: 'adapter', prefix: 'adapter' }),
  })
  .describe(
    'bottleneck adapters: Houlsby et al. (2019), sequential, or AdaptFormer (Chen et al., 2022), parallel',
  )
  .superRefine((o, ctx) => {
    if (o.kind === 'houlsby' && o.scale !== ADAPTFORMER_SCALE.parse(undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['scale'],
        message: 'only AdaptFormer adapters (kind "adaptformer") scale',
      });
    }
  });

/**
 * Bottleneck adapters: Houlsby et al. (2019) and AdaptFormer (Chen et al., 2022). Each adapter has
 * `{site}.down.weight` `[D, m]`, `{site}.down.bias`, `{site}.up.weight` `[m, D]`, `{site}.up.bias` under
 * `blocks.{i}`, with site `attn` or `mlp`.
 *
 * Init: Houlsby, near-identity as the paper (weights N(0, 0.01²) truncated at 2σ); AdaptFormer, its code's
 * LoRA-style init (down U(±1/√D)). Biases start at zero and, with `zeroInit`, so does the up-projection.
 * The Houlsby paper also tunes the LayerNorms; this plugin does not (combine with your own preset if wanted).
 */
export const ADAPTER_METHOD = baselineMethod('adapter', ADAPTER_OPTIONS, createAdapter);

/** An adapter plugin from options (parsed by `ADAPTER_OPTIONS`: unknown keys and bad values are refused). */
export const adapter = pluginFunction(ADAPTER_METHOD);

function createAdapter(o: z.output<typeof ADAPTER_OPTIONS>): PeftPlugin {
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
    ...pluginHeader('adapter', o),
    setup(ctx) {
      for (let i = 0; i < ctx.config.depth; i++) for (const site of sites) addAdapter(ctx, i, site);
    },
    hooks,
  };
}

/** Options of `adapter` as given: every key optional (see `ADAPTER_OPTIONS`). */
export type AdapterOptions = z.input<typeof ADAPTER_OPTIONS>;
/** Adapter design: `houlsby` (sequential, after attention and MLP) or `adaptformer` (parallel to the MLP). */
export type AdapterKind = z.output<typeof ADAPTER_OPTIONS>['kind'];
