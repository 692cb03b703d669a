import { HOOK_SPEC_VERSION, type PeftPlugin } from '@peftjs/core';
import {
  BASELINES_VERSION,
  type PluginIdentityOptions,
  identityJson,
  requireOptionsObject,
  resolveIdentity,
} from './common.js';

/** Options of `linearProbe`: only the plugin's identity (name, prefix, tier). */
export type LinearProbeOptions = PluginIdentityOptions;

/**
 * Linear probing: only the classification head trains. `createPeftModel` already freezes the backbone and trains
 * the head, so this plugin adds nothing to the forward pass; it exists so that configs, adapter files and
 * parameter reports name the method.
 */
export function linearProbe(options: LinearProbeOptions = {}): PeftPlugin {
  requireOptionsObject('linearProbe', options);
  const id = resolveIdentity('linearProbe', options, { name: 'linear-probe', prefix: 'linear_probe' });
  return {
    name: id.name,
    type: 'linear-probe',
    version: BASELINES_VERSION,
    specVersion: HOOK_SPEC_VERSION,
    prefix: id.prefix,
    ...(id.tier !== undefined ? { tier: id.tier } : {}),
    options: identityJson(id),
    hooks: {},
  };
}
