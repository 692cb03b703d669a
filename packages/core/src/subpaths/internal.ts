/**
 * `@peftjs/core/internal`: plumbing shared by PEFT.js's own packages (atomic file writes, the backbone
 * fingerprint, plugin validation and ordering, kernel switches for benchmarks). Not part of the public API: names
 * here may change in any release.
 */
export { writeFileAtomic } from '../atomic-write.js';
export { Sha256 } from '../sha256.js';
export { FileRefused, kindOf, readRegularFile } from '../regular-file.js';
export { ADAPTER_FORMAT, ADAPTER_FORMAT_VERSION } from '../adapter-format.js';
export {
  type FileSetOptions,
  type SetFile,
  nodeFileSetFs,
  readFileSet,
  recoverFileSet,
  writeFileSet,
} from '../file-set.js';
export { resolvePluginOrder, validatePlugin } from '../driver.js';
export { installFastMatMulGradient } from '../ops.js';
export { wasmBinaryDirectory } from '../backend.js';
export {
  areWasmCopyFreeKernelsInstalled,
  installWasmCopyFreeKernels,
  uninstallWasmCopyFreeKernels,
} from '../wasm-kernels.js';
export { closestMatch, levenshtein } from '../suggest.js';
export { toJsonObject, undocumentedOptions } from '../options.js';
