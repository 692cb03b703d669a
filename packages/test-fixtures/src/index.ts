/**
 * Fixtures shared by the tests of several PEFT.js packages (a private workspace package: never published, imported
 * only from `*.test.ts` files): the tiny MNIST ViT and its weights file, MNIST digits (in memory or as IDX files),
 * a weightless backbone for counting parameters at ViT-B size, and the small training helpers the plugin tests
 * share.
 */
export * from './plain.js';
export {
  TINY_BLOCKS,
  type TrainingCase,
  cycleBatch,
  mean,
  perBlock,
  trainStep,
  trainingSuite,
} from './training.js';
