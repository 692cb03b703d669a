export { BASELINES_VERSION, type PluginIdentityOptions, type ResolvedIdentity } from './common.js';
export * from './linear-probe.js';
export * from './full-fine-tuning.js';
export * from './vpt.js';
export * from './lora.js';
export * from './adapter.js';
export * from './bitfit.js';
export * from './ssf.js';
