export * from './options.js';
export * from './ship.js';
export * from './vtab-presets.js';
export { decoupledAttention, decoupledAttentionCore } from '@peftjs/decoupled-attention';
export { groupLayers, hierarchyPlugin } from '@peftjs/hierarchy';
export { promptMatchingLoss } from '@peftjs/pml';
export { shipPrompts } from '@peftjs/prompts';
