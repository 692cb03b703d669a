import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, tf } from '@peftjs/core';
import { serializeSafetensors } from '@peftjs/core/safetensors';
import { MockHub } from '@peftjs/hub/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadVit } from './load.js';
import { customVit } from './presets.js';
import { VisionTransformer } from './vit.js';

/** timm's config.json for a 32-wide ViT: shapes alone cannot tell its 2 heads (32 is not a multiple of 64). */
function timmConfig(inputSize: number[]): Uint8Array {
  const config = {
    architecture: 'vit_tiny_mock_patch8_32',
    num_classes: 10,
    model_args: { num_heads: 2 },
    pretrained_cfg: { input_size: inputSize, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], num_classes: 10 },
  };
  return new TextEncoder().encode(JSON.stringify(config));
}

let hub: MockHub;
let dir: string;
let original: VisionTransformer;

beforeAll(async () => {
  await initBackend({ prefer: 'cpu', log: false });
  dir = await mkdtemp(join(tmpdir(), 'peftjs-load-hub-'));
  original = VisionTransformer.create(
    customVit({ imageSize: 32, patchSize: 8, dim: 32, depth: 2, heads: 2, numClasses: 10 }),
    { seed: 3 },
  );
  // No num_heads in the file's metadata: the heads must come from the repository's config.json.
  const weights = serializeSafetensors(
    [...original.toTorchTensors()].map(([name, t]) => ({ name, shape: t.shape, data: t.data })),
  );
  hub = await MockHub.start({
    repos: {
      'acme/tiny-vit': { files: { 'model.safetensors': weights, 'config.json': timmConfig([3, 32, 32]) } },
      'acme/tiny-vit-wrong-cfg': {
        files: { 'model.safetensors': weights, 'config.json': timmConfig([3, 64, 64]) },
      },
    },
  });
});
afterAll(async () => {
  original.dispose();
  await hub.close();
  await rm(dir, { recursive: true, force: true });
});

describe('loadVit with a Hub reference', () => {
  it('downloads once, takes the heads from config.json, reproduces the logits, then loads from the cache', async () => {
    const hubOptions = { endpoint: hub.endpoint, cacheDir: join(dir, 'cache'), progress: false } as const;
    const before = tf.memory().numTensors;
    const loaded = await loadVit('hf:acme/tiny-vit', { hub: hubOptions });
    expect(loaded.model.config).toMatchObject({ heads: 2, dim: 32, imageSize: [32, 32], numClasses: 10 });
    expect(loaded.hub).toMatchObject({
      pinned: `hf:acme/tiny-vit@${hub.commitOf('acme/tiny-vit')}:model.safetensors`,
      origin: 'hub',
      pretrained: { mean: [0.5, 0.5, 0.5], inputSize: [3, 32, 32] },
    });
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
    const diff = tf.tidy(
      () => tf.max(tf.abs(tf.sub(loaded.model.predict(x), original.predict(x)))).dataSync()[0],
    );
    expect(diff).toBeLessThan(1e-6);
    x.dispose();
    loaded.model.dispose();

    hub.requests.length = 0;
    const cached = await loadVit('hf:acme/tiny-vit', { hub: hubOptions, heads: 4 });
    expect(hub.requests).toEqual([]);
    expect(cached.hub?.origin).toBe('cache');
    expect(cached.model.config.heads).toBe(4); // an explicit option still wins over the config
    cached.model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses weights whose shapes contradict config.json, naming the reference, leaking no tensor', async () => {
    const before = tf.memory().numTensors;
    const hubOptions = { endpoint: hub.endpoint, cacheDir: join(dir, 'cache'), progress: false };
    await expect(loadVit('hf:acme/tiny-vit-wrong-cfg', { hub: hubOptions })).rejects.toThrow(
      'hf:acme/tiny-vit-wrong-cfg: config.json input size [3, 64, 64] but the weights hold [3, 32, 32]',
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('offline with an empty cache names the reference', async () => {
    const hubOptions = { endpoint: hub.endpoint, cacheDir: join(dir, 'empty'), offline: true };
    await expect(
      loadVit('timm:vit_base_patch16_224.augreg2_in21k_ft_in1k', { hub: hubOptions }),
    ).rejects.toMatchObject({
      code: 'HUB_OFFLINE_MISS',
      message: expect.stringMatching(/^timm:vit_base_patch16_224\.augreg2_in21k_ft_in1k: offline/),
    });
  });
});
