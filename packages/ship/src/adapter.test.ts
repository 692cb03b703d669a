import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VisionTransformer } from '@peftjs/backbone';
import {
  ADAPTER_CONFIG_FILE,
  type AdapterConfig,
  PEFTJS_VERSION,
  type Tensor4D,
  createPeftModel,
  initBackend,
  loadAdapter,
  saveAdapter,
  tf,
} from '@peftjs/core';
import { expectTensorClose } from '@peftjs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHIP_PLUGIN_FACTORIES, ship } from './ship.js';
import { mnistDigits, tinyMnistVit, prepareDataOf } from '@peftjs/test-fixtures';

const config = tinyMnistVit({ depth: 6 });

describe('SHIP adapter files', () => {
  let dir: string;
  let vit: VisionTransformer;
  let images: Tensor4D;
  let labels: tf.Tensor1D;
  let savedLogits: tf.Tensor;

  beforeAll(async () => {
    await initBackend({ prefer: 'wasm', log: false });
    dir = await mkdtemp(join(tmpdir(), 'peftjs-adapter-'));
    vit = VisionTransformer.create(config, { seed: 5 });
    const sample = mnistDigits('t10k', 0, 32);
    images = tf.tensor4d(sample.images, [32, 28, 28, 1]);
    labels = tf.tensor1d(sample.labels, 'int32');
    const model = createPeftModel(
      vit,
      ship({ threshold: 0.95, promptLength: 3, hierarchy: { prototypes: 6 } }),
      {
        seed: 2,
        numClasses: 10,
      },
    );
    await model.prepare(prepareDataOf(images, 16));
    const optimizer = tf.train.adam(0.02);
    for (let i = 0; i < 3; i++) {
      const { loss, grads } = model.lossAndGradients(images, labels);
      model.applyGradients(optimizer, grads);
      tf.dispose([loss, ...Object.values(grads)]);
    }
    await saveAdapter(model, dir);
    savedLogits = model.predict(images);
    model.dispose();
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('write the config with plugins, options, artifacts, base fingerprint and every tuned tensor', async () => {
    expect((await readdir(dir)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    const saved = JSON.parse(await readFile(join(dir, ADAPTER_CONFIG_FILE), 'utf8')) as AdapterConfig;
    expect(saved.library).toEqual({ name: 'peftjs', version: PEFTJS_VERSION });
    expect(saved.plugins.map((p) => p.type)).toEqual([
      'ship-hierarchy',
      'ship-prompts',
      'ship-pml',
      'decoupled-attention',
    ]);
    const hierarchy = saved.plugins[0]!;
    expect(hierarchy.artifacts).toMatchObject({ threshold: 0.95, token: 'cls' });
    expect(saved.plugins[1]!.artifacts.starts).toEqual(hierarchy.artifacts.starts);
    expect(saved.plugins[1]!.options.promptLength).toBe(3);
    expect(saved.base.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    const names = Object.keys(saved.tensors);
    expect(names).toContain('head.weight');
    expect(names).toContain('head.bias');
    expect(names).toContain('ship.prototypes');
    expect(saved.tensors['ship.prototypes']).toMatchObject({
      kind: 'buffer',
      trainable: false,
      shape: [6, 32],
    });
    expect(names.some((n) => n.startsWith('blocks.'))).toBe(false);
  });

  it('load back into the same base with identical logits', async () => {
    const loaded = await loadAdapter(vit, dir, { factories: SHIP_PLUGIN_FACTORIES });
    expectTensorClose(loaded.predict(images), savedLogits, { atol: 1e-6, label: 'round-trip logits' });
    expect(loaded.artifacts()['ship-prompts']?.starts).toBeDefined();
    loaded.dispose();
  });

  it('refuse a base with other weights, naming both fingerprints', async () => {
    const other = VisionTransformer.create(config, { seed: 6 });
    await expect(loadAdapter(other, dir, { factories: SHIP_PLUGIN_FACTORIES })).rejects.toThrow(
      /base weights differ from the ones the adapter was trained on \(fingerprint sha256:\w+ ≠ sha256:\w+\)/,
    );
    other.dispose();
  });

  it('make a τ/K mismatch impossible: a config edited to another K fails listing every mismatched tensor', async () => {
    const edited = join(dir, 'edited');
    const saved = JSON.parse(await readFile(join(dir, ADAPTER_CONFIG_FILE), 'utf8')) as AdapterConfig;
    saved.plugins[1]!.options.promptLength = 5;
    await rm(edited, { recursive: true, force: true });
    await saveCopy(dir, edited, saved);
    const attempt = loadAdapter(vit, edited, { factories: SHIP_PLUGIN_FACTORIES });
    await expect(attempt).rejects.toThrow(
      /adapter does not fit the rebuilt model: .*ship\.sip\.0: saved \[1,3,32\] vs model \[1,5,32\]/,
    );
  });

  it('name unknown plugin types', async () => {
    await expect(loadAdapter(vit, dir, { factories: {} })).rejects.toThrow(
      /no factory for plugin type\(s\) "ship-hierarchy", "ship-prompts", "ship-pml", "decoupled-attention"/,
    );
  });
});

async function saveCopy(from: string, to: string, config: AdapterConfig): Promise<void> {
  const { mkdir, copyFile } = await import('node:fs/promises');
  await mkdir(to, { recursive: true });
  await copyFile(join(from, 'adapter_model.safetensors'), join(to, 'adapter_model.safetensors'));
  await writeFile(join(to, ADAPTER_CONFIG_FILE), JSON.stringify(config));
}
