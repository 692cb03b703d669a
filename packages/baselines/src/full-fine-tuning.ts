import { BACKBONE_OWNER, HOOK_SPEC_VERSION, type PeftPlugin } from '@peftjs/core';
import {
  BASELINES_VERSION,
  type PluginIdentityOptions,
  identityJson,
  requireOptionsObject,
  resolveIdentity,
} from './common.js';

/** Options of `fullFineTuning`: only the plugin's identity (name, prefix, tier). */
export type FullFineTuningOptions = PluginIdentityOptions;

/**
 * Full fine-tuning: every backbone tensor trains, with the head. Weight decay follows each tensor's registered
 * `decay` flag, so biases, LayerNorms and the position/class embeddings stay undecayed as in timm.
 *
 * The backbone's variables are shared with the `VisionTransformer` the model was built from: training changes
 * that backbone.
 */
export function fullFineTuning(options: FullFineTuningOptions = {}): PeftPlugin {
  requireOptionsObject('fullFineTuning', options);
  const id = resolveIdentity('fullFineTuning', options, {
    name: 'full-fine-tuning',
    prefix: 'full_fine_tuning',
  });
  return {
    name: id.name,
    type: 'full-fine-tuning',
    version: BASELINES_VERSION,
    specVersion: HOOK_SPEC_VERSION,
    prefix: id.prefix,
    ...(id.tier !== undefined ? { tier: id.tier } : {}),
    options: identityJson(id),
    setup(ctx) {
      ctx.setTrainable((e) => e.owner === BACKBONE_OWNER, true);
    },
    hooks: {},
  };
}
