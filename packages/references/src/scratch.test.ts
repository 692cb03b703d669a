import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VisionTransformer, timmInitialValues, toStorageLayout, vitParameterSpecs } from '@peftjs/backbone';
import {
  BACKBONE_OWNER,
  Rng,
  type Tensor4D,
  backboneFingerprint,
  createPeftModel,
  initBackend,
  loadAdapter,
  saveAdapter,
  tf,
} from '@peftjs/core';
import { mnistDigitTensors, tinyMnistVit } from '@peftjs/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFERENCE_PLUGIN_FACTORIES } from './index.js';
import { scratch } from './scratch.js';

let vit: VisionTransformer;
let pristine: string;
let dir: string;

beforeAll(async () => {
  await initBackend({ prefer: 'cpu', log: false });
  vit = VisionTransformer.create(tinyMnistVit(), { seed: 0 });
  pristine = backboneFingerprint(vit);
  dir = await mkdtemp(join(tmpdir(), 'peftjs-scratch-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const values = (t: tf.Tensor) => Array.from(t.dataSync());

describe('scratch reference', () => {
  it("trains model-owned copies drawn with timm's init from the plugin's stream; the shared base is untouched", () => {
    const before = tf.memory().numTensors;
    const model = createPeftModel(vit, [scratch()], { seed: 3, numClasses: 10 });
    const copies = model.registry.list((e) => e.owner === BACKBONE_OWNER);
    expect(copies.length).toBe(vit.registry.list((e) => e.owner === BACKBONE_OWNER).length);
    for (const entry of copies) {
      expect(entry.shared, entry.name).toBe(false);
      expect(entry.trainable, entry.name).toBe(true);
      expect(entry.copiedFor).toBe('scratch');
    }
    // The exact values: timm's init in vitParameterSpecs order from the plugin's init stream.
    const rng = new Rng(3).split('init').split('scratch');
    for (const spec of vitParameterSpecs(model.config).filter((s) => s.group !== 'head')) {
      const drawn = tf.tensor(timmInitialValues(spec, model.config, rng), [...spec.torchShape]);
      const stored = toStorageLayout(spec, drawn);
      expect(values(model.registry.get(spec.name)), spec.name).toEqual(values(stored));
      tf.dispose([drawn, stored]);
    }
    const qkv = 'blocks.0.attn.qkv.weight';
    expect(values(model.registry.get(qkv))).not.toEqual(values(vit.registry.get(qkv)));
    expect(model.parameterReport().trainableWithoutHead).toBe(
      model.parameterReport().byOwner.backbone?.total,
    );
    model.dispose();
    expect(backboneFingerprint(vit)).toBe(pristine);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('trains without touching the base and reloads from its adapter with the same predictions', async () => {
    const model = createPeftModel(vit, [scratch()], { seed: 4, numClasses: 10 });
    const { images, labels } = mnistDigitTensors('train', 0, 16);
    const optimizer = tf.train.adam(1e-3);
    const qkv = 'blocks.0.attn.qkv.weight';
    const initial = values(model.registry.get(qkv));
    for (let step = 0; step < 3; step++) {
      const { loss, grads } = model.lossAndGradients(images as Tensor4D, labels);
      model.applyGradients(optimizer, grads);
      tf.dispose([loss, ...Object.values(grads)]);
    }
    optimizer.dispose();
    expect(values(model.registry.get(qkv))).not.toEqual(initial);
    expect(backboneFingerprint(vit)).toBe(pristine);
    await saveAdapter(model, join(dir, 'scratch'));
    const loaded = await loadAdapter(vit, join(dir, 'scratch'), { factories: REFERENCE_PLUGIN_FACTORIES });
    const [a, b] = tf.tidy(() => [model.predict(images as Tensor4D), loaded.predict(images as Tensor4D)]);
    expect(values(b as tf.Tensor)).toEqual(values(a as tf.Tensor));
    tf.dispose([a as tf.Tensor, b as tf.Tensor, images, labels]);
    loaded.dispose();
    model.dispose();
    expect(backboneFingerprint(vit)).toBe(pristine);
  });
});
