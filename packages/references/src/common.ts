import { PLUGIN_TIERS, pluginIdentity, z } from '@peftjs/core';

/** Version of every plugin in this package. */
export const REFERENCES_VERSION = '0.1.0';

/** The identity options of a reference plugin: `name`, `prefix` (defaults: the method's own) and hook `tier`. */
export function identityFields(defaults: { name: string; prefix: string }) {
  return {
    name: z.string().min(1).default(defaults.name).describe('plugin name, unique within a model'),
    prefix: z
      .string()
      .min(1)
      .default(defaults.prefix)
      .describe("namespace of the plugin's tensors (<prefix>.<name>), unique within a model"),
    tier: z
      .enum(PLUGIN_TIERS)
      .nullable()
      .default(null)
      .describe('hook tier (pre, normal or post; see the ordering rule in @peftjs/core); null: normal'),
  };
}

/** The fields a reference plugin object starts with: identity, type, version and its options recorded whole. */
export function pluginHeader(
  type: string,
  options: { name: string; prefix: string; tier: (typeof PLUGIN_TIERS)[number] | null },
) {
  const { name, prefix, tier } = options;
  return pluginIdentity({ type, version: REFERENCES_VERSION, name, prefix, tier }, options);
}
