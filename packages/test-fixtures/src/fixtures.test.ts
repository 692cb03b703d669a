import { expectNoLeakedTensors } from '@peftjs/core/testing';
import { vitPreset } from '@peftjs/backbone';
import { describe, expect, it } from 'vitest';
import { GeometryOnlyBackbone, mnistDigits, mnistDigitTensors, tinyMnistVit } from './index.js';

describe('mnistDigits', () => {
  it('reads the first digits of each split with their known labels, scaled to [−1, 1]', () => {
    expect(Array.from(mnistDigits('train', 0, 3).labels)).toEqual([5, 0, 4]);
    const test = mnistDigits('t10k', 0, 2);
    expect(Array.from(test.labels)).toEqual([7, 2]);
    expect(test.images).toHaveLength(2 * 28 * 28);
    expect(Math.min(...test.images)).toBe(-1); // background
    expect(Math.max(...test.images)).toBe(1); // full ink
    // An offset window is the same digits as a longer read from 0.
    expect(mnistDigits('t10k', 1, 1).images).toEqual(test.images.subarray(784));
  });

  it('names the split and the range when asked for digits that do not exist', () => {
    expect(() => mnistDigits('t10k', 9999, 2)).toThrow('MNIST t10k has 10000 digits; asked for 2 from 9999');
    expect(() => mnistDigits('train', 0, 0)).toThrow(RangeError);
  });

  it('gives tensors of the NHWC shape', async () => {
    await expectNoLeakedTensors(() => {
      const { images, labels } = mnistDigitTensors('t10k', 0, 4);
      expect(images.shape).toEqual([4, 28, 28, 1]);
      expect(labels.dtype).toBe('int32');
      images.dispose();
      labels.dispose();
    });
  });
});

describe('tinyMnistVit and GeometryOnlyBackbone', () => {
  it('tiny ViT: 4 blocks of width 32 unless overridden', () => {
    expect(tinyMnistVit()).toMatchObject({ imageSize: [28, 28], patchSize: 7, dim: 32, depth: 4, heads: 2 });
    expect(tinyMnistVit({ depth: 6 }).depth).toBe(6);
  });

  it('geometry-only backbone: ViT-B geometry and a head, no forward pass', () => {
    const backbone = new GeometryOnlyBackbone(vitPreset('vit_base_patch16_224', { numClasses: 7 }));
    expect(backbone.geometry.numPatches).toBe(196);
    expect(backbone.registry.get('head.weight').shape).toEqual([768, 7]);
    expect(() => backbone.forward()).toThrow('no weights');
    backbone.resetHead(3);
    expect(backbone.registry.get('head.bias').shape).toEqual([3]);
    backbone.registry.dispose(() => true);
  });
});
