/**
 * Gated deep prompts — an example of a prompt strategy published as its own package. It depends on
 * `@peftjs/core` only and uses nothing but public exports.
 *
 * Each block gets `tokens` learned prompt tokens scaled by a learned gate tanh(g_l), initialised at 0: the prompts
 * start as zero vectors and each block learns how much of its prompt to let in. The prompts depend only on
 * parameters, so they are declared image-independent: under decoupled attention the backbone computes them once
 * per forward and the inference prompt cache reuses them.
 *
 * The definition below is both the plugin (rebuilt from adapter files by its `type`) and a method the `peft`
 * command line can run: `method: { name: '@peftjs-examples/custom-prompt-strategy' }` (or a path to this module)
 * in a run config, with `method.options` checked against its schema like any built-in method's.
 */
import {
  type PeftPlugin,
  type Tensor3D,
  pluginFunction,
  pluginIdentity,
  definePluginMethod,
  pluginFactories,
  tf,
  z,
} from '@peftjs/core';

/** The options, with their defaults and descriptions (strict: a typo is an error with a did-you-mean). */
export const GATED_PROMPTS_OPTIONS = z.strictObject({
  tokens: z.int().positive().default(4).describe('prompt tokens per block'),
  initScale: z.number().positive().default(0.05).describe('uniform init bound of the prompt tokens'),
  name: z.string().min(1).default('gated-prompts').describe('plugin name'),
});

/** Options of `gatedPrompts` as given. */
export type GatedPromptsOptions = z.input<typeof GATED_PROMPTS_OPTIONS>;

/** The factory key in adapter files. */
export const GATED_PROMPTS_TYPE = 'gated-prompts';

/** Gated deep prompts as one definition: a plugin, and a method the `peft` command line can train. */
export const GATED_PROMPTS = definePluginMethod({
  type: GATED_PROMPTS_TYPE,
  name: 'gated-prompts',
  version: '0.0.0',
  description: 'deep prompts scaled per block by a learned gate tanh(g), starting closed',
  options: GATED_PROMPTS_OPTIONS,
  create({ tokens, initScale, name }): PeftPlugin {
    return {
      ...pluginIdentity({ type: GATED_PROMPTS_TYPE, version: '0.0.0', name }, { tokens, initScale, name }),
      setup(ctx) {
        const { depth, dim } = ctx.config;
        for (let block = 0; block < depth; block++) {
          const values = ctx.rng
            .split(`prompt:${block}`)
            .fillUniform(new Float32Array(tokens * dim), -initScale, initScale);
          ctx.addParameter(`prompt.${block}`, tf.tensor3d(values, [1, tokens, dim]));
        }
        ctx.addParameter('gate', tf.zeros([depth]), { decay: false });
      },
      hooks: {
        blockStart(ctx, stream, block) {
          const gate = tf.tanh(tf.slice(ctx.param('gate'), [block], [1]));
          const prompt = tf.mul(ctx.param(`prompt.${block}`), gate) as Tensor3D;
          return stream.withSegment('gated', ctx.plugin, prompt, { independent: true });
        },
      },
    };
  },
  // The report capability: `peft train` adds these lines to report.md and the fields to results.json.
  async report(model, { name }) {
    const prefix = name.replace(/[^A-Za-z0-9_]/g, '_');
    const gate = tf.tanh(model.registry.get(`${prefix}.gate`));
    const gates = Array.from(gate.dataSync());
    gate.dispose();
    return {
      lines: [`gates tanh(g) per block: ${gates.map((g) => g.toFixed(4)).join(', ')}`],
      fields: { gates },
      figures: [],
    };
  },
});

/** The gated-prompts plugin from options (parsed by the schema: unknown keys and bad values are refused). */
export const gatedPrompts = pluginFunction(GATED_PROMPTS);

/** For `loadAdapter(base, dir, { factories: { ...others, ...GATED_PROMPTS_FACTORY } })`. */
export const GATED_PROMPTS_FACTORY = pluginFactories([GATED_PROMPTS]);

/** What `peft train` looks for in a method module (`method` or the default export). */
export const method = GATED_PROMPTS;
