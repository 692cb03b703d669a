/**
 * Gated deep prompts — an example of a prompt strategy published as its own package. It depends on
 * `@peftjs/core` only and uses nothing but public exports.
 *
 * Each block gets `tokens` learned prompt tokens scaled by a learned gate tanh(g_l), initialised at 0: the prompts
 * start as zero vectors and each block learns how much of its prompt to let in. The prompts depend only on
 * parameters, so they are declared image-independent: under decoupled attention the backbone computes them once
 * per forward and the inference prompt cache reuses them.
 */
import {
  HOOK_SPEC_VERSION,
  type JsonObject,
  type PeftPlugin,
  type Tensor3D,
  requirePositiveInt,
  tf,
} from '@peftjs/core';

export interface GatedPromptsOptions {
  /** Prompt tokens per block (default 4). */
  tokens?: number;
  /** Uniform init bound of the prompt tokens (default 0.05). */
  initScale?: number;
  name?: string;
}

export const GATED_PROMPTS_TYPE = 'gated-prompts';

export function gatedPrompts(options: GatedPromptsOptions = {}): PeftPlugin {
  const tokens = requirePositiveInt('tokens', options.tokens ?? 4);
  const initScale = options.initScale ?? 0.05;
  const name = options.name ?? GATED_PROMPTS_TYPE;
  const resolved: JsonObject = { tokens, initScale, name };
  return {
    name,
    type: GATED_PROMPTS_TYPE,
    version: '0.0.0',
    specVersion: HOOK_SPEC_VERSION,
    prefix: name.replace(/[^A-Za-z0-9_]/g, '_'),
    options: resolved,
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
}

/** For `loadAdapter(base, dir, { factories: { ...others, ...GATED_PROMPTS_FACTORY } })`. */
export const GATED_PROMPTS_FACTORY = {
  [GATED_PROMPTS_TYPE]: (options: JsonObject) => gatedPrompts(options as GatedPromptsOptions),
};
