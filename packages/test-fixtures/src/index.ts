/**
 * Fixtures shared by the tests of several PEFT.js packages (a private workspace package: never published, imported
 * only from `*.test.ts` files and test helpers).
 */
export { GeometryOnlyBackbone } from './geometry-only-backbone.js';
export { type MnistDigits, type MnistSplit, mnistDigits, mnistDigitTensors } from './mnist.js';
export { tinyMnistVit } from './tiny-vit.js';
