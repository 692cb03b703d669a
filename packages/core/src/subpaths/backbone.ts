/**
 * `@peftjs/core/backbone`: the contract for backbone implementers — the hook driver a backbone calls at every
 * site, its forward options and output, the inference prompt cache and the config helpers a ViT needs.
 */
export {
  type BackboneForwardOptions,
  type BackboneOutput,
  type HookDriver,
  type NamedLoss,
  type PeftBackbone,
  PromptCache,
} from '../backbone-api.js';
export { createHookDriver, sumLosses } from '../driver.js';
export { dropPathRateAt, validateVitConfig } from '../config.js';
