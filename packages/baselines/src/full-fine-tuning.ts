import { BACKBONE_OWNER, type PeftPlugin, createPlugin, z } from '@peftjs/core';
import { baselineMethod, identityFields, pluginHeader } from './common.js';

/** Options of full fine-tuning: only the plugin's identity. */
export const FULL_FINE_TUNING_OPTIONS = z.strictObject(
  identityFields({ name: 'full-fine-tuning', prefix: 'full_fine_tuning' }),
);

/** Options of `fullFineTuning` as given (see `FULL_FINE_TUNING_OPTIONS`). */
export type FullFineTuningOptions = z.input<typeof FULL_FINE_TUNING_OPTIONS>;

/**
 * Full fine-tuning: every backbone tensor trains, with the head. Weight decay follows each tensor's registered
 * `decay` flag, so biases, LayerNorms and the position/class embeddings stay undecayed as in timm.
 *
 * The backbone's variables are shared with the `VisionTransformer` the model was built from: training changes
 * that backbone.
 */
export const FULL_FINE_TUNING_METHOD = baselineMethod({
  type: 'full-fine-tuning',
  name: 'full',
  description: 'full fine-tuning: every backbone tensor trains, with the head',
  options: FULL_FINE_TUNING_OPTIONS,
  create: (options) => createFullFineTuning(options),
});

/** A full-fine-tuning plugin from options (parsed by `FULL_FINE_TUNING_OPTIONS`). */
export function fullFineTuning(options: FullFineTuningOptions = {}): PeftPlugin {
  return createPlugin(FULL_FINE_TUNING_METHOD, options);
}

function createFullFineTuning(id: z.output<typeof FULL_FINE_TUNING_OPTIONS>): PeftPlugin {
  return {
    ...pluginHeader('full-fine-tuning', id),
    setup(ctx) {
      ctx.setTrainable((e) => e.owner === BACKBONE_OWNER, true);
    },
    hooks: {},
  };
}
