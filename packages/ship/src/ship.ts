import {
  type MethodDefinition,
  type PeftPlugin,
  type PluginFactory,
  createMethodPlugins,
  defineMethod,
  pluginFactories,
} from '@peftjs/core';
import { DECOUPLED_ATTENTION_PLUGIN } from '@peftjs/decoupled-attention';
import { HIERARCHY_PLUGIN } from '@peftjs/hierarchy';
import { PML_PLUGIN } from '@peftjs/pml';
import { SHIP_PROMPTS_PLUGIN } from '@peftjs/prompts';
import { shipDataLimits, shipOutputs, shipPlaceholder, shipReport } from './capabilities.js';
import { type ResolvedShipOptions, SHIP_OPTIONS, type ShipOptions } from './options.js';
import { SHIP_METHOD_PRESETS } from './vtab-presets.js';

/** Version of the SHIP method definition. */
export const SHIP_VERSION = '0.1.0';

function shipPlugins(o: ResolvedShipOptions): PeftPlugin[] {
  const plugins: PeftPlugin[] = [];
  // The hierarchy pass is needed for the starts (unless fixed) and for the prototype bank of attribute prompts.
  if (o.starts === null || o.prompts.ap) {
    plugins.push(HIERARCHY_PLUGIN.create({ ...o.hierarchy, threshold: o.threshold, endLayer: o.endLayer }));
  }
  plugins.push(SHIP_PROMPTS_PLUGIN.create({ ...o.prompts, promptLength: o.promptLength, starts: o.starts }));
  if (o.pml !== false) plugins.push(PML_PLUGIN.create(o.pml));
  if (o.decoupledAttention !== false) plugins.push(DECOUPLED_ATTENTION_PLUGIN.create(o.decoupledAttention));
  return plugins;
}

/**
 * SHIP (Semantic Hierarchical Prompt tuning, arXiv 2412.16956; docs/ship-method.md) as a method: hierarchy
 * analysis (τ = 0.93, CLS features, 200 prototypes) → SIP/SSP/AP prompts (K = 50) → prompt matching loss
 * (weight 0.5) → decoupled attention (λ = 0.1). Its data pass writes the hierarchy and the prototype bank
 * (`peft prepare`), its report shows the affinity heatmap, and `vtab:<task>` presets hold the published per-task
 * settings.
 */
export const SHIP_METHOD: MethodDefinition<typeof SHIP_OPTIONS> = defineMethod({
  name: 'ship',
  version: SHIP_VERSION,
  description:
    'Semantic Hierarchical Prompt tuning: prompts per semantic hierarchy of layers, shared and attribute prompts, ' +
    'a prompt matching loss and decoupled attention',
  options: SHIP_OPTIONS,
  create: shipPlugins,
  plugins: [HIERARCHY_PLUGIN, SHIP_PROMPTS_PLUGIN, PML_PLUGIN, DECOUPLED_ATTENTION_PLUGIN],
  prepare: {
    summary:
      'layer affinity and hierarchy starts (hierarchy.json, affinity.png) and the prototype bank (prototypes.safetensors)',
    outputs: shipOutputs,
    placeholder: shipPlaceholder,
  },
  report: shipReport,
  presets: SHIP_METHOD_PRESETS,
  dataLimits: shipDataLimits,
});

/**
 * The SHIP plugins, in run order: hierarchy (omitted when `starts` is given and AP is off), prompts, prompt
 * matching loss and decoupled attention (each unless `false`). Unknown options and bad values throw
 * `INVALID_OPTION` with a did-you-mean. Pass the array to `createPeftModel`, then run `PeftModel.prepare`.
 */
export function ship(options: ShipOptions = {}): PeftPlugin[] {
  return createMethodPlugins(SHIP_METHOD, options);
}

/**
 * Factories that rebuild each SHIP plugin from the options saved in an adapter file (parsed strictly):
 * `loadAdapter(base, dir, { factories: SHIP_PLUGIN_FACTORIES })`.
 */
export const SHIP_PLUGIN_FACTORIES: Readonly<Record<string, PluginFactory>> = pluginFactories(
  SHIP_METHOD.plugins ?? [],
);
