import { timmInitialValues, toStorageLayout, vitParameterSpecs } from '@peftjs/backbone';
import {
  BACKBONE_OWNER,
  PeftError,
  type PeftPlugin,
  type SetupContext,
  definePluginMethod,
  pluginFunction,
  tf,
  z,
} from '@peftjs/core';
import { REFERENCES_VERSION, identityFields, pluginHeader } from './common.js';

/** Options of the from-scratch reference: only the plugin's identity. */
export const SCRATCH_OPTIONS = z
  .strictObject(identityFields({ name: 'scratch', prefix: 'scratch' }))
  .describe(
    'reference: the same ViT trained from a random initialisation (timm init, seeded), every weight trainable',
  );

/** Parsed from-scratch options. */
export type ScratchOptions = z.output<typeof SCRATCH_OPTIONS>;

/**
 * Gives the model its own copy of every backbone tensor (copy-on-write through `setTrainable`; the shared base is
 * never written) and draws each copy afresh with timm's initialisation from the plugin's seeded stream, in
 * `vitParameterSpecs` order — the values `VisionTransformer.create` would draw from the same stream.
 */
function reinitialise(ctx: SetupContext): void {
  ctx.setTrainable(() => true, true);
  const specs = new Map(vitParameterSpecs(ctx.config).map((spec) => [spec.name, spec]));
  const copies = new Map(
    ctx
      .parameters()
      .filter((entry) => entry.owner === BACKBONE_OWNER)
      .map((entry) => [entry.name, entry]),
  );
  const unknown = [...copies.keys()].filter((name) => !specs.has(name));
  if (unknown.length > 0) {
    throw new PeftError(
      'PLUGIN_INVALID',
      `scratch re-initialises ViT tensors in timm naming; the backbone also has ${unknown.join(', ')}`,
    );
  }
  for (const [name, spec] of specs) {
    const entry = copies.get(name);
    if (!entry) continue;
    if (entry.shared) throw new PeftError('BASE_READ_ONLY', `scratch got no own copy of "${name}"`);
    const values = tf.tensor(timmInitialValues(spec, ctx.config, ctx.rng), [...spec.torchShape]);
    const stored = toStorageLayout(spec, values);
    entry.variable.assign(stored);
    tf.dispose([values, stored]);
  }
}

function createScratch(o: ScratchOptions): PeftPlugin {
  return { ...pluginHeader('scratch', o), setup: reinitialise, hooks: {} };
}

/**
 * Training from scratch as a method: the reference that says what the pretrained weights are worth. The model trains
 * every weight of the same architecture from a random initialisation; its adapter file holds them all.
 */
export const SCRATCH_METHOD = definePluginMethod({
  type: 'scratch',
  name: 'scratch',
  version: REFERENCES_VERSION,
  description: SCRATCH_OPTIONS.description ?? '',
  options: SCRATCH_OPTIONS,
  create: createScratch,
});

/** A from-scratch plugin from options (parsed by `SCRATCH_OPTIONS`). */
export const scratch = pluginFunction(SCRATCH_METHOD);
