import { type MethodDefinition, type PluginFactory, pluginFactories } from '@peftjs/core';
import { ADAPTER_METHOD } from './adapter.js';
import { BITFIT_METHOD } from './bitfit.js';
import { FULL_FINE_TUNING_METHOD } from './full-fine-tuning.js';
import { LINEAR_PROBE_METHOD } from './linear-probe.js';
import { LORA_METHOD } from './lora.js';
import { SSF_METHOD } from './ssf.js';
import { VPT_METHOD } from './vpt.js';

export { BASELINES_VERSION } from './common.js';
export * from './linear-probe.js';
export * from './full-fine-tuning.js';
export * from './vpt.js';
export * from './lora.js';
export * from './adapter.js';
export * from './bitfit.js';
export * from './ssf.js';

/**
 * Every baseline, each one definition that is both its method (`method.name` in a run config) and its plugin
 * (the factory key in adapter files).
 */
export const BASELINE_METHODS = Object.freeze([
  VPT_METHOD,
  LORA_METHOD,
  ADAPTER_METHOD,
  BITFIT_METHOD,
  SSF_METHOD,
  LINEAR_PROBE_METHOD,
  FULL_FINE_TUNING_METHOD,
] as const) satisfies readonly MethodDefinition[];

/** Factories that rebuild each baseline from its saved options: `loadAdapter(base, dir, { factories })`. */
export const BASELINE_PLUGIN_FACTORIES: Readonly<Record<string, PluginFactory>> =
  pluginFactories(BASELINE_METHODS);
