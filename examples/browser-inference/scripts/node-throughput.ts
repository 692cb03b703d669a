/**
 * The page's fine-tune, run in Node for docs/performance.md ("Training in the browser"): the same task files
 * (.cache/tasks, written by scripts/assets.ts), the same first N training images, method, recipe, seed and
 * throughput meter as src/worker.ts, on Node's backend (wasm + native kernels unless PEFTJS_NATIVE=off).
 *
 *   node --conditions=@peftjs/source --import tsx scripts/node-throughput.ts [task] [method] [trainImages] [epochs]
 */
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadVit } from '@peftjs/backbone';
import { createPeftModel, initBackend } from '@peftjs/core';
import { ImageDataset, asPrepareData, readVtabTask } from '@peftjs/data';
import { evaluate, train } from '@peftjs/train';
import { METHODS, TRAIN_DEFAULTS, isMethodName } from '../src/methods.js';
import { BUNDLED_TASKS } from '../src/tasks.js';
import { throughputMeter } from '../src/throughput.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [task = 'orientation', methodName = 'lora', count = '320', epochs = '2'] = process.argv.slice(2);
if (!isMethodName(methodName)) throw new Error(`unknown method ${methodName}`);
const numClasses = BUNDLED_TASKS.find((t) => t.name === task)?.classNames.length;
if (!numClasses) throw new Error(`${task} is not a bundled task`);
const backend = await initBackend({ prefer: 'wasm', log: false });
const { model: vit } = await loadVit(join(root, '../../models/peftjs-vit-tiny12-p8-32.safetensors'));
const splits = (await readVtabTask(join(root, '.cache/tasks'), task, { numClasses })).splits;
const options = {
  imageSize: vit.config.imageSize,
  channels: 3,
  normalization: 'inception',
  numClasses,
} as const;
const first = { ...splits.train800, samples: splits.train800.samples.slice(0, Number(count)) };
const trainData = new ImageDataset(first, options);
const method = METHODS[methodName];
const model = createPeftModel(vit, method.plugins(), { seed: 1, numClasses });
if (model.plugins.some((p) => p.prepare)) await model.prepare(asPrepareData(trainData, 64));
const meter = throughputMeter(TRAIN_DEFAULTS.batchSize);
await train(
  model,
  { train: trainData, val: new ImageDataset(splits.val200, options) },
  { ...TRAIN_DEFAULTS, epochs: Number(epochs), lr: method.lr, seed: 1, onEvent: (e) => meter.onEvent(e) },
);
const test = await evaluate(model, new ImageDataset(splits.test, options), { batchSize: 100 });
const kernels = backend.native.installed
  ? `wasm + native ${backend.native.isa}`
  : 'wasm (stock tfjs kernels)';
console.log(
  `${task} ${methodName} ${count} images × ${epochs} epochs, batch ${TRAIN_DEFAULTS.batchSize}: ` +
    `${meter.imagesPerSecond().toFixed(1)} training images/s, test top-1 ${(test.top1 * 100).toFixed(1)} % ` +
    `(${kernels}; ${cpus()[0]?.model ?? 'CPU'} × ${cpus().length})`,
);
model.dispose();
vit.dispose();
