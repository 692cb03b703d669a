/**
 * `@peftjs/core`: what a PEFT.js user and a plugin or method author need — the plugin contract (`plugin.ts`),
 * plugin and method definitions with their option schemas (`definitions.ts`, `options.ts`), the model, adapter
 * files, backend selection, the seeded PRNG and errors. Specialised parts live behind subpaths:
 * `@peftjs/core/ops` (tensor helpers for hooks), `@peftjs/core/safetensors` (the file format),
 * `@peftjs/core/backbone` (the contract for backbone implementers), `@peftjs/core/testing` (vitest helpers) and
 * `@peftjs/core/internal` (plumbing shared by PEFT.js's own packages; no stability promise).
 */

// The plugin contract: hook sites, contexts, the PeftPlugin object.
export * from './plugin.js';
// Definitions: one object per plugin and per method, its strict option schema the only home of its defaults.
export * from './definitions.js';
export {
  type OptionProblem,
  type OptionRow,
  type OptionsAccepted,
  type OptionsCheck,
  type OptionsRefused,
  checkOptions,
  optionDefaults,
  optionKeysAt,
  optionRows,
  parseOptions,
} from './options.js';
export { z } from 'zod';
export { didYouMean } from './suggest.js';

// Models: attaching plugins to a backbone, parameters, token streams.
export * from './model.js';
export type { PeftBackbone } from './backbone-api.js';
export * from './registry.js';
export * from './tokens.js';
export { type VitConfig, type VitGeometry, vitGeometry } from './config.js';

// Adapter files: save a tuned model, rebuild it on its base.
export {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type AdapterConfig,
  type AdapterPluginRecord,
  type AdapterTensorRecord,
  type PluginFactory,
} from './adapter-format.js';
export {
  type AdapterFileOptions,
  type LoadAdapterOptions,
  type SerializedAdapter,
  backboneFingerprint,
  loadAdapter,
  loadAdapterFromBytes,
  saveAdapter,
  serializeAdapter,
} from './adapter-files.js';
export type { FileSetFs } from './file-set.js';
export * from './adapter-bytes.js';

// Runtime: tensors, backends, randomness, errors, version.
export * from './tf.js';
export {
  BACKEND_PREFERENCES,
  type BackendChoice,
  type BackendPreference,
  type ConcreteBackend,
  type InitBackendOptions,
  availableBackends,
  currentBackend,
  describeChoice,
  initBackend,
} from './backend.js';
export * from './random.js';
export {
  PeftError,
  type PeftErrorCode,
  describeValue,
  invalidOption,
  requireNumberInRange,
  requirePositiveInt,
} from './errors.js';
export * from './version.js';
