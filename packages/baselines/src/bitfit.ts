import {
  BACKBONE_OWNER,
  type ParameterEntry,
  type PeftPlugin,
  PeftError,
  createPlugin,
  z,
} from '@peftjs/core';
import { baselineMethod, identityFields, pluginHeader } from './common.js';

/** Options of BitFit: only the plugin's identity. */
export const BITFIT_OPTIONS = z.strictObject(identityFields({ name: 'bitfit', prefix: 'bitfit' }));

/** Options of `bitfit` as given (see `BITFIT_OPTIONS`). */
export type BitFitOptions = z.input<typeof BITFIT_OPTIONS>;

/**
 * Whether BitFit tunes a registry entry: backbone bias terms, i.e. tensors named `*.bias` (every linear bias, the
 * patch-embedding bias and the LayerNorm shifts β). LayerNorm scales are rank-1 too and registered with kind
 * `bias`, so the kind alone would wrongly include them; the name decides.
 */
export function isBitFitBias(entry: ParameterEntry): boolean {
  return entry.owner === BACKBONE_OWNER && entry.kind === 'bias' && entry.name.endsWith('.bias');
}

/** BitFit (Ben Zaken et al., 2022): only the backbone's bias terms and the head train. */
export const BITFIT_METHOD = baselineMethod({
  type: 'bitfit',
  name: 'bitfit',
  description: "BitFit (Ben Zaken et al., 2022): only the backbone's bias terms and the head train",
  options: BITFIT_OPTIONS,
  create: (options) => createBitfit(options),
});

/** A BitFit plugin from options (parsed by `BITFIT_OPTIONS`). */
export function bitfit(options: BitFitOptions = {}): PeftPlugin {
  return createPlugin(BITFIT_METHOD, options);
}

function createBitfit(id: z.output<typeof BITFIT_OPTIONS>): PeftPlugin {
  return {
    ...pluginHeader('bitfit', id),
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
