import { describe, expect, it } from 'vitest';
import { parsePretrainedConfig } from './pretrained.js';
import { formatWeightsReference, isWeightsReference, parseWeightsReference } from './reference.js';

describe('weights references', () => {
  it('parse hf: and timm: with optional revision and file; paths are not references', () => {
    expect(parseWeightsReference('timm:vit_base_patch16_224.augreg2_in21k_ft_in1k')).toEqual({
      scheme: 'timm',
      repo: 'timm/vit_base_patch16_224.augreg2_in21k_ft_in1k',
      revision: 'main',
      file: 'model.safetensors',
    });
    expect(parseWeightsReference('hf:google/vit-base-patch16-224@refs/pr/3:flax/model.npz')).toEqual({
      scheme: 'hf',
      repo: 'google/vit-base-patch16-224',
      revision: 'refs/pr/3',
      file: 'flax/model.npz',
    });
    expect(parseWeightsReference('hf:gpt2')?.repo).toBe('gpt2');
    for (const path of ['./hf:x', 'weights/model.safetensors', 'C:\\w\\vit.npz', 'https://x/y']) {
      expect(isWeightsReference(path)).toBe(false);
      expect(parseWeightsReference(path)).toBeNull();
    }
  });

  it('format canonically and pinned to a commit', () => {
    const ref = parseWeightsReference('timm:vit_small_patch16_224.augreg_in21k');
    if (!ref) throw new Error('not parsed');
    expect(formatWeightsReference(ref)).toBe(
      'hf:timm/vit_small_patch16_224.augreg_in21k@main:model.safetensors',
    );
    expect(formatWeightsReference(ref, 'a'.repeat(40))).toBe(
      `hf:timm/vit_small_patch16_224.augreg_in21k@${'a'.repeat(40)}:model.safetensors`,
    );
  });

  it('refuse repository names and files the Hub would not accept', () => {
    for (const bad of [
      'hf:org--x/y',
      'hf:org/y..z',
      'hf:-org/y',
      'hf:org/y:/abs',
      'hf:org/y:a//b',
      'hf:org/y@a b',
    ]) {
      expect(() => parseWeightsReference(bad), bad).toThrow(/^weights reference/);
    }
  });
});

describe('config.json', () => {
  it('reads transformers configs (heads, eps, labels, image size) without inventing mean/std', () => {
    const config = parsePretrainedConfig(
      JSON.stringify({
        architectures: ['ViTForImageClassification'],
        model_type: 'vit',
        hidden_size: 768,
        num_attention_heads: 12,
        image_size: 224,
        patch_size: 16,
        num_channels: 3,
        layer_norm_eps: 1e-12,
        id2label: { 0: 'a', 1: 'b', 2: 'c' },
      }),
      'hf:google/vit: config.json',
    );
    expect(config).toEqual({
      library: 'transformers',
      architecture: 'ViTForImageClassification',
      inputSize: [3, 224, 224],
      numClasses: 3,
      heads: 12,
      patchSize: 16,
      layerNormEps: 1e-12,
    });
  });

  it('names the source and field of a malformed value; other libraries give null', () => {
    expect(() =>
      parsePretrainedConfig('{"pretrained_cfg": {"input_size": [3, 224]}}', 'timm:x: config.json'),
    ).toThrow('timm:x: config.json: "pretrained_cfg.input_size" must be 3 positive integers; got [3,224]');
    expect(() => parsePretrainedConfig('{"pretrained_cfg": {"std": [0.5, 0, 0.5]}}', 's')).toThrow(
      '"pretrained_cfg.std" must be 1 or 3 positive numbers',
    );
    expect(() => parsePretrainedConfig('{oops', 'timm:x: config.json')).toThrow(
      /^timm:x: config\.json: not valid JSON/,
    );
    expect(parsePretrainedConfig('{"_class_name": "UNet2DModel"}', 's')).toBeNull();
  });
});
