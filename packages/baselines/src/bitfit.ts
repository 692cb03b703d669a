import { BACKBONE_OWNER, type ParameterEntry, PeftError, pluginFunction, type z } from '@peftjs/core';
import { identityOnlyMethod } from './common.js';

/**
 * Whether BitFit tunes a registry entry: backbone bias terms, i.e. tensors named `*.bias` (every linear bias, the
 * patch-embedding bias and the LayerNorm shifts β). LayerNorm scales are rank-1 too and registered with kind
 * `bias`, so the kind alone would wrongly include them; the name decides.
 */
export function isBitFitBias(entry: ParameterEntry): boolean {
  return entry.owner === BACKBONE_OWNER && entry.kind === 'bias' && entry.name.endsWith('.bias');
}

/** BitFit (Ben Zaken et al., 2022): only the backbone's bias terms and the head train. */
export const BITFIT_METHOD = identityOnlyMethod(
  {
    name: 'bitfit',
    type: 'bitfit',
    prefix: 'bitfit',
    description: "BitFit (Ben Zaken et al., 2022): only the backbone's bias terms and the head train",
  },
  (name) => ({
    setup(ctx) {
      if (ctx.setTrainable(isBitFitBias, true) === 0) {
        throw new PeftError(
          'PARAMETER_INVALID',
          `plugin "${name}" found no backbone bias (a tensor named "*.bias") to train`,
        );
      }
    },
    hooks: {},
  }),
);

/** Options of `bitfit`: only the plugin's identity (name, prefix, tier). */
export type BitFitOptions = z.input<typeof BITFIT_METHOD.options>;

/** A BitFit plugin from options (parsed by its schema: unknown keys are refused). */
export const bitfit = pluginFunction(BITFIT_METHOD);
