/**
 * `@peftjs/references`: the rows a fine-tune is judged against, as methods the `peft` command line runs like any
 * other — `knn` (k-nearest neighbours in pixel or frozen-feature space, k chosen on validation; fitted, not trained)
 * and `scratch` (the same ViT trained from a random initialisation).
 */
import { type MethodDefinition, type PluginFactory, pluginFactories } from '@peftjs/core';
import { KNN_METHOD } from './knn.js';
import { SCRATCH_METHOD } from './scratch.js';

export { REFERENCES_VERSION } from './common.js';
export { KNN_METHOD, KNN_OPTIONS, type KnnOptions, knn, knnLogits } from './knn.js';
export { SCRATCH_METHOD, SCRATCH_OPTIONS, type ScratchOptions, scratch } from './scratch.js';

/** Both reference methods, each one definition that is its method and its plugin. */
export const REFERENCE_METHODS = Object.freeze([
  KNN_METHOD,
  SCRATCH_METHOD,
] as const) satisfies readonly MethodDefinition[];

/** Factories that rebuild each reference plugin from its saved options: `loadAdapter(base, dir, { factories })`. */
export const REFERENCE_PLUGIN_FACTORIES: Readonly<Record<string, PluginFactory>> =
  pluginFactories(REFERENCE_METHODS);
