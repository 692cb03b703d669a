import {
  BACKBONE_OWNER,
  HOOK_SPEC_VERSION,
  type ParameterEntry,
  type PeftPlugin,
  PeftError,
} from '@peftjs/core';
import {
  BASELINES_VERSION,
  type PluginIdentityOptions,
  identityJson,
  requireOptionsObject,
  resolveIdentity,
} from './common.js';

/** Options of `bitfit`: only the plugin's identity (name, prefix, tier). */
export type BitFitOptions = PluginIdentityOptions;

/**
 * Whether BitFit tunes a registry entry: backbone bias terms, i.e. tensors named `*.bias` (every linear bias, the
 * patch-embedding bias and the LayerNorm shifts β). LayerNorm scales are rank-1 too and registered with kind
 * `bias`, so the kind alone would wrongly include them; the name decides.
 */
export function isBitFitBias(entry: ParameterEntry): boolean {
  return entry.owner === BACKBONE_OWNER && entry.kind === 'bias' && entry.name.endsWith('.bias');
}

/** BitFit (Ben Zaken et al., 2022): only the backbone's bias terms and the head train. */
export function bitfit(options: BitFitOptions = {}): PeftPlugin {
  requireOptionsObject('bitfit', options);
  const id = resolveIdentity('bitfit', options, { name: 'bitfit', prefix: 'bitfit' });
  return {
    name: id.name,
    type: 'bitfit',
    version: BASELINES_VERSION,
    specVersion: HOOK_SPEC_VERSION,
    prefix: id.prefix,
    ...(id.tier !== undefined ? { tier: id.tier } : {}),
    options: identityJson(id),
    setup(ctx) {
      if (ctx.setTrainable(isBitFitBias, true) === 0) {
        throw new PeftError(
          'PARAMETER_INVALID',
          `plugin "${id.name}" found no backbone bias (a tensor named "*.bias") to train`,
        );
      }
    },
    hooks: {},
  };
}
