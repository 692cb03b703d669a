/**
 * Weights references without the downloader: tells `hf:`/`timm:` references from file paths and parses them,
 * with no Node module involved (safe in browser bundles). Resolve them with `resolveWeights` from `@peftjs/hub`.
 */
export {
  DEFAULT_REVISION,
  DEFAULT_WEIGHTS_FILE,
  type WeightsReference,
  formatWeightsReference,
  isWeightsReference,
  parseWeightsReference,
} from './reference.js';
