/**
 * Pretrained weights by name: `hf:<org>/<repo>[@revision][:file]` and `timm:<model-name>` resolved to verified
 * files in the Hugging Face cache (the layout Python's `huggingface_hub` writes and reads), with the repository's
 * `config.json`. Node only; `@peftjs/hub/reference` parses references anywhere.
 */
export {
  DEFAULT_REVISION,
  DEFAULT_WEIGHTS_FILE,
  type WeightsReference,
  formatWeightsReference,
  isWeightsReference,
  parseWeightsReference,
} from './reference.js';
export { type HubOptions, type HubSettings, hubSettings } from './settings.js';
export { CONFIG_FILE, type PretrainedConfig, parsePretrainedConfig } from './pretrained.js';
export {
  type HubProgressEvent,
  type HubProgressFields,
  type HubProgressSink,
  type ProgressStream,
  progressBar,
} from './progress.js';
export { type ResolvedWeights, resolveWeights } from './resolve.js';
