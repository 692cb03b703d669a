import { customVit } from '@peftjs/backbone';
import type { VitConfig } from '@peftjs/core';

/**
 * The ViT most tests run: 28×28 grey MNIST digits in 7×7 patches (CLS + 16 = 17 tokens), width 32, 2 heads, 10
 * classes, 4 blocks unless `overrides` say otherwise. Small enough for a training step in milliseconds on the cpu
 * backend, yet every hook site and head split is exercised.
 */
export function tinyMnistVit(overrides: Partial<Omit<VitConfig, 'imageSize'>> = {}): VitConfig {
  return customVit({
    imageSize: 28,
    patchSize: 7,
    channels: 1,
    dim: 32,
    depth: 4,
    heads: 2,
    numClasses: 10,
    ...overrides,
  });
}
