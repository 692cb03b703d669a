export * from './errors.js';
export * from './atomic-write.js';
export * from './tf.js';
export * from './random.js';
export * from './backend.js';
export {
  areWasmCopyFreeKernelsInstalled,
  installWasmCopyFreeKernels,
  uninstallWasmCopyFreeKernels,
} from './wasm-kernels.js';
export * from './ops.js';
export * from './config.js';
export * from './tokens.js';
export * from './registry.js';
export * from './plugin.js';
export * from './backbone-api.js';
export * from './driver.js';
export * from './model.js';
export * from './safetensors.js';
export * from './saliency.js';
export * from './version.js';
export * from './adapter-files.js';
export * from './adapter-bytes.js';
