import { pluginFunction, type z } from '@peftjs/core';
import { identityOnlyMethod } from './common.js';

/**
 * Linear probing: only the classification head trains. `createPeftModel` already freezes the backbone and trains
 * the head, so this plugin adds nothing to the forward pass; it exists so that configs, adapter files and
 * parameter reports name the method.
 */
export const LINEAR_PROBE_METHOD = identityOnlyMethod(
  {
    name: 'linear',
    type: 'linear-probe',
    prefix: 'linear_probe',
    description: 'linear probe: only the classification head trains',
  },
  () => ({ hooks: {} }),
);

/** Options of `linearProbe`: only the plugin's identity (name, prefix, tier). */
export type LinearProbeOptions = z.input<typeof LINEAR_PROBE_METHOD.options>;

/** A linear-probe plugin from options (parsed by its schema: unknown keys are refused). */
export const linearProbe = pluginFunction(LINEAR_PROBE_METHOD);
