import { type PeftPlugin, createPlugin, z } from '@peftjs/core';
import { baselineMethod, identityFields, pluginHeader } from './common.js';

/** Options of the linear probe: only the plugin's identity. */
export const LINEAR_PROBE_OPTIONS = z.strictObject(
  identityFields({ name: 'linear-probe', prefix: 'linear_probe' }),
);

/** Options of `linearProbe` as given (see `LINEAR_PROBE_OPTIONS`). */
export type LinearProbeOptions = z.input<typeof LINEAR_PROBE_OPTIONS>;

/**
 * Linear probing: only the classification head trains. `createPeftModel` already freezes the backbone and trains
 * the head, so this plugin adds nothing to the forward pass; it exists so that configs, adapter files and
 * parameter reports name the method.
 */
export const LINEAR_PROBE_METHOD = baselineMethod({
  type: 'linear-probe',
  name: 'linear',
  description: 'linear probe: only the classification head trains',
  options: LINEAR_PROBE_OPTIONS,
  create: (o) => ({ ...pluginHeader('linear-probe', o), hooks: {} }),
});

/** A linear-probe plugin from options (parsed by `LINEAR_PROBE_OPTIONS`). */
export function linearProbe(options: LinearProbeOptions = {}): PeftPlugin {
  return createPlugin(LINEAR_PROBE_METHOD, options);
}
