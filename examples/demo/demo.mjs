// The README's main command: fine-tune the bundled self-pretrained tiny ViT with SHIP on one offline mini-VTAB
// task and compare with a linear probe. Everything is seeded; the numbers are printed with their context.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadVit } from '@peftjs/backbone';
import { linearProbe } from '@peftjs/baselines';
import { createPeftModel, initBackend } from '@peftjs/core';
import { ImageDataset, asPrepareData, readVtabTask } from '@peftjs/data';
import { generateTask } from '@peftjs/mini-vtab';
import { ship } from '@peftjs/ship';
import { evaluate, train } from '@peftjs/train';

const here = fileURLToPath(new URL('.', import.meta.url));
const { values } = parseArgs({
  options: {
    task: { type: 'string', default: 'orientation' },
    epochs: { type: 'string', default: '6' },
    train: { type: 'string', default: '800' },
    val: { type: 'string', default: '200' },
    test: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    weights: { type: 'string', default: join(here, '../../models/peftjs-vit-tiny12-p8-32.safetensors') },
    data: { type: 'string', default: join(here, '../../.cache/mini-vtab-demo') },
  },
});
const started = performance.now();
const seconds = () => ((performance.now() - started) / 1000).toFixed(1);
const say = (line) => process.stdout.write(`[${seconds().padStart(6)} s] ${line}\n`);

const backend = await initBackend({ log: false });
const native = backend.native.installed
  ? ` + native ${backend.native.isa} matmul`
  : ` (native matmul unavailable: ${backend.native.reason})`;
say(`backend ${backend.backend}${native}`);
const counts = { train800: Number(values.train), val200: Number(values.val), test: Number(values.test) };
// One cache folder per split size, so a different size never reuses stale images.
const dataRoot = join(values.data, `${counts.train800}-${counts.val200}-${counts.test}`);
if (!existsSync(join(dataRoot, values.task, 'test.txt'))) {
  say(
    `generating mini-VTAB task "${values.task}" (${counts.train800}/${counts.val200}/${counts.test} images, seed 0)`,
  );
  await generateTask(values.task, { root: dataRoot, seed: 0, counts });
}
const task = await readVtabTask(dataRoot, values.task);
const { model: vit, layout } = await loadVit(values.weights);
say(
  `backbone ${values.weights.split('/').pop()} (${layout} naming): depth ${vit.config.depth}, width ${vit.config.dim}, ` +
    `${vit.config.imageSize.join('×')} px, patch ${vit.config.patchSize} — self-pretrained on fractals, contours and MNIST`,
);
const options = {
  imageSize: vit.config.imageSize,
  channels: 3,
  normalization: 'inception',
  numClasses: task.numClasses,
};
const trainData = new ImageDataset(task.splits.train800val200, options);
const testData = new ImageDataset(task.splits.test, options);
const epochs = Number(values.epochs);
const recipe = {
  epochs,
  batchSize: 64,
  microBatch: 32,
  weightDecay: 1e-4,
  warmupEpochs: 1,
  seed: values.seed,
  evalEvery: epochs,
  selection: 'val',
};

async function run(label, plugins, lr) {
  const model = createPeftModel(vit, plugins, { seed: Number(values.seed), numClasses: task.numClasses });
  if (model.plugins.some((p) => p.prepare)) {
    say(`${label}: hierarchy and prototypes from ${trainData.size} training images`);
    await model.prepare(asPrepareData(trainData, 64));
  }
  await train(
    model,
    { train: trainData },
    {
      ...recipe,
      lr,
      onEvent: (e) => {
        if (e.type === 'epoch-end') say(`${label}: epoch ${e.epoch + 1}/${epochs} loss ${e.loss.toFixed(3)}`);
      },
    },
  );
  const metrics = await evaluate(model, testData, { batchSize: 128 });
  const report = model.parameterReport();
  const starts = model.artifacts()['ship-hierarchy']?.starts;
  model.dispose();
  return {
    top1: metrics.top1,
    count: metrics.count,
    trainable: report.trainableWithoutHead,
    head: report.head,
    starts,
  };
}

const shipResult = await run(
  'SHIP',
  ship({ threshold: 0.97, promptLength: 10, hierarchy: { prototypes: 50 } }),
  5e-3,
);
const linear = await run('linear probe', [linearProbe()], 5e-3);
const pct = (x) => `${(x * 100).toFixed(1)} %`;
process.stdout.write(
  [
    '',
    `task "${values.task}" (${task.numClasses} classes): trained on ${trainData.size} images, tested once on ${shipResult.count}`,
    `SHIP          test top-1 ${pct(shipResult.top1)}   trainable ${shipResult.trainable.toLocaleString('en-US')} + head ${shipResult.head.toLocaleString('en-US')}   hierarchy starts ${shipResult.starts?.join(',')}`,
    `linear probe  test top-1 ${pct(linear.top1)}   trainable 0 + head ${linear.head.toLocaleString('en-US')}`,
    `wall time ${seconds()} s on ${backend.backend}; ${epochs} epochs each, seed ${values.seed}; fixed recipe, no tuning on the test split`,
    '',
  ].join('\n'),
);
