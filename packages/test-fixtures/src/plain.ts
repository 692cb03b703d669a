/**
 * The fixtures that do not need vitest (models, digits, files), for scripts a test starts in a child process:
 * `@peftjs/test-fixtures/plain`. The package's main entry adds the vitest-based training helpers.
 */
export { GeometryOnlyBackbone } from './geometry-only-backbone.js';
export { type MnistDigits, type MnistSplit, mnistDigits, mnistDigitTensors } from './mnist.js';
export { tinyMnistVit } from './tiny-vit.js';
export { prepareDataOf } from './prepare-data.js';
export {
  ParamsBackbone,
  type TinyModel,
  promptPlugin,
  tinyModel,
  trainEverything,
  writeTinyVitWeights,
} from './models.js';
export { writeMnistIdx } from './files.js';
