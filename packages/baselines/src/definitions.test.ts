import { type PeftPlugin, optionDefaults } from '@peftjs/core';
import { describe, expect, it } from 'vitest';
import {
  BASELINE_METHODS,
  BASELINE_PLUGIN_FACTORIES,
  adapter,
  bitfit,
  fullFineTuning,
  linearProbe,
  lora,
  ssf,
  vpt,
} from './index.js';

/** Each method's library function, by method name. */
const LIBRARY: Record<string, (options?: Record<string, unknown>) => PeftPlugin> = {
  vpt,
  lora,
  adapter,
  bitfit,
  ssf,
  linear: linearProbe,
  full: fullFineTuning,
};

describe('every baseline is one definition: method, plugin and schema', () => {
  it('has a library function, a factory and defaults that come from its schema alone', () => {
    expect(BASELINE_METHODS.map((m) => m.name)).toEqual([
      'vpt',
      'lora',
      'adapter',
      'bitfit',
      'ssf',
      'linear',
      'full',
    ]);
    for (const method of BASELINE_METHODS) {
      const build = LIBRARY[method.name] as (options?: Record<string, unknown>) => PeftPlugin;
      const plugin = build();
      // The plugin records its options whole: exactly the schema's defaults.
      expect(plugin.options, method.name).toEqual(JSON.parse(JSON.stringify(optionDefaults(method.options))));
      expect(plugin.type).toBe(method.type);
      const rebuilt = BASELINE_PLUGIN_FACTORIES[method.type]?.(plugin.options ?? {});
      expect(rebuilt?.options, method.name).toEqual(plugin.options);
    }
  });

  it('refuses a typo in any option of any baseline with a did-you-mean, in code and in adapter files', () => {
    expect(() => lora({ rnak: 4 } as never)).toThrow(
      'unknown option "lora.rnak" (did you mean "lora.rank"?)',
    );
    for (const method of BASELINE_METHODS) {
      const build = LIBRARY[method.name] as (options?: Record<string, unknown>) => PeftPlugin;
      for (const key of Object.keys(method.options.shape)) {
        const typo = key.slice(0, -1);
        const message = `unknown option "${method.type}.${typo}" (did you mean "${method.type}.${key}"?)`;
        expect(() => build({ [typo]: 1 }), `${method.name}.${key}`).toThrow(message);
        expect(() => BASELINE_PLUGIN_FACTORIES[method.type]?.({ [typo]: 1 })).toThrow(message);
      }
    }
  });
});
