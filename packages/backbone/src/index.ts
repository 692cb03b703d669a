export * from './presets.js';
export * from './parameters.js';
export * from './vit.js';
export * from './load.js';
export * from './pretrained-hints.js';
export * from './io/name-maps.js';
export * from './io/npz.js';
export * from './io/npy.js';
