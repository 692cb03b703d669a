import { BACKBONE_OWNER, pluginFunction, type z } from '@peftjs/core';
import { identityOnlyMethod } from './common.js';

/**
 * Full fine-tuning: every backbone tensor trains, with the head. Weight decay follows each tensor's registered
 * `decay` flag, so biases, LayerNorms and the position/class embeddings stay undecayed as in timm.
 *
 * The backbone's variables are shared with the `VisionTransformer` the model was built from: training changes
 * that backbone.
 */
export const FULL_FINE_TUNING_METHOD = identityOnlyMethod(
  {
    name: 'full',
    type: 'full-fine-tuning',
    prefix: 'full_fine_tuning',
    description: 'full fine-tuning: every backbone tensor trains, with the head',
  },
  () => ({
    setup(ctx) {
      ctx.setTrainable((e) => e.owner === BACKBONE_OWNER, true);
    },
    hooks: {},
  }),
);

/** Options of `fullFineTuning`: only the plugin's identity (name, prefix, tier). */
export type FullFineTuningOptions = z.input<typeof FULL_FINE_TUNING_METHOD.options>;

/** A full-fine-tuning plugin from options (parsed by its schema: unknown keys are refused). */
export const fullFineTuning = pluginFunction(FULL_FINE_TUNING_METHOD);
