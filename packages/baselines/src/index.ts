export { BASELINES_VERSION, type PluginIdentityOptions, type ResolvedIdentity } from './common.js';
export * from './linear-probe.js';
export * from './full-fine-tuning.js';
export * from './vpt.js';
export * from './lora.js';
export * from './adapter.js';
export * from './bitfit.js';
export * from './ssf.js';

import type { JsonObject, PeftPlugin, PluginFactory } from '@peftjs/core';
import { type AdapterOptions, adapter } from './adapter.js';
import { type BitFitOptions, bitfit } from './bitfit.js';
import { type FullFineTuningOptions, fullFineTuning } from './full-fine-tuning.js';
import { type LinearProbeOptions, linearProbe } from './linear-probe.js';
import { type LoraOptions, lora } from './lora.js';
import { type SsfOptions, ssf } from './ssf.js';
import { type VptOptions, vpt } from './vpt.js';

const rebuild =
  <T>(factory: (options: T) => PeftPlugin): PluginFactory =>
  (options: JsonObject) =>
    factory(options as unknown as T);

/** Factories that rebuild each baseline from its saved options: `loadAdapter(base, dir, { factories })`. */
export const BASELINE_PLUGIN_FACTORIES: Readonly<Record<string, PluginFactory>> = Object.freeze({
  'linear-probe': rebuild<LinearProbeOptions>(linearProbe),
  'full-fine-tuning': rebuild<FullFineTuningOptions>(fullFineTuning),
  vpt: rebuild<VptOptions>(vpt),
  lora: rebuild<LoraOptions>(lora),
  adapter: rebuild<AdapterOptions>(adapter),
  bitfit: rebuild<BitFitOptions>(bitfit),
  ssf: rebuild<SsfOptions>(ssf),
});
