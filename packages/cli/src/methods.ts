import {
  type AdapterOptions,
  BASELINE_PLUGIN_FACTORIES,
  type BitFitOptions,
  type LoraOptions,
  type SsfOptions,
  type VptOptions,
  adapter,
  bitfit,
  fullFineTuning,
  linearProbe,
  lora,
  ssf,
  vpt,
} from '@peftjs/baselines';
import type { PeftPlugin, PluginFactory } from '@peftjs/core';
import { SHIP_PLUGIN_FACTORIES, type ShipOptions, ship } from '@peftjs/ship';
import type { MethodName } from './options.js';

/** The plugins of a method, built from the config's `method.options` (each factory validates its options). */
export function methodPlugins(name: MethodName, options: Record<string, unknown>): PeftPlugin[] {
  switch (name) {
    case 'ship':
      return ship(options as ShipOptions);
    case 'vpt':
      return [vpt({ mode: 'deep', tokens: 50, ...options } as VptOptions)];
    case 'lora':
      return [lora({ rank: 8, alpha: 8, ...options } as LoraOptions)];
    case 'adapter':
      return [adapter({ kind: 'houlsby', bottleneck: 8, ...options } as AdapterOptions)];
    case 'bitfit':
      return [bitfit(options as BitFitOptions)];
    case 'ssf':
      return [ssf(options as SsfOptions)];
    case 'linear':
      return [linearProbe(options)];
    case 'full':
      return [fullFineTuning(options)];
  }
}

/** Every plugin PEFT.js ships, for rebuilding models from adapter files. */
export const ALL_PLUGIN_FACTORIES: Readonly<Record<string, PluginFactory>> = Object.freeze({
  ...SHIP_PLUGIN_FACTORIES,
  ...BASELINE_PLUGIN_FACTORIES,
});
