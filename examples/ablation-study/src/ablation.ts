/**
 * SHIP ablations by swapping components: the same frozen backbone, data, seed and budget for every variant; only
 * the `ship()` options change. Prints one markdown table.
 */
import { VisionTransformer, customVit } from '@peftjs/backbone';
import { type BackendPreference, type PrepareData, createPeftModel, initBackend, tf } from '@peftjs/core';
import { type ShipOptions, ship } from '@peftjs/ship';
import { arrayData, evaluate, train } from '@peftjs/train';
import { mnistDigits } from './mnist.js';

export interface AblationOptions {
  backend?: BackendPreference;
  epochs?: number;
  trainImages?: number;
  testImages?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  /** ViT width/depth (28×28×1 input, patch 7). */
  dim?: number;
  depth?: number;
}

export interface AblationRow {
  method: string;
  trainableWithoutHead: number;
  finalLoss: number;
  top1: number;
}

/** The seven variants of `docs/guides/ablations.md`, on top of the small-model settings in `base`. */
export function ablationVariants(base: ShipOptions): [string, ShipOptions][] {
  return [
    ['SHIP (full)', base],
    ['no AP', { ...base, prompts: { ...base.prompts, ap: false } }],
    ['no PML', { ...base, pml: false }],
    ['no DA', { ...base, decoupledAttention: false }],
    ['no SSP', { ...base, prompts: { ...base.prompts, ssp: false } }],
    ['SIP re-insert', { ...base, prompts: { ...base.prompts, sip: 'reinsert' } }],
    ['τ = 1', { ...base, threshold: 1 }],
  ];
}

export function markdownTable(rows: readonly AblationRow[]): string {
  const lines = [
    '| method | trainable params (w/o head) | final train loss | accuracy |',
    '|---|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.method} | ${r.trainableWithoutHead} | ${r.finalLoss.toFixed(4)} | ${(100 * r.top1).toFixed(1)} % |`,
    ),
  ];
  return lines.join('\n');
}

export async function runAblation(options: AblationOptions = {}): Promise<AblationRow[]> {
  const {
    epochs = 10,
    trainImages = 200,
    testImages = 200,
    batchSize = 20,
    lr = 5e-3,
    seed = 1,
    dim = 32,
    depth = 4,
  } = options;
  await initBackend({ prefer: options.backend ?? 'auto', log: false });
  const config = customVit({
    imageSize: 28,
    patchSize: 7,
    channels: 1,
    dim,
    depth,
    heads: 2,
    numClasses: 10,
  });
  const vit = VisionTransformer.create(config, { seed: 0 });
  const trainSet = await mnistDigits(0, trainImages);
  const testSet = await mnistDigits(5000, testImages);
  const trainData = arrayData(trainSet.images, trainSet.labels, [28, 28, 1], 10);
  const testData = arrayData(testSet.images, testSet.labels, [28, 28, 1], 10);
  const prepareImages = tf.tensor4d(trainSet.images, [trainImages, 28, 28, 1]);
  const prepareData: PrepareData = {
    size: trainImages,
    async *batches() {
      yield { images: prepareImages };
    },
  };

  const base: ShipOptions = { threshold: 0.93, promptLength: 4, hierarchy: { prototypes: 8 } };
  const rows: AblationRow[] = [];
  try {
    for (const [method, shipOptions] of ablationVariants(base)) {
      const model = createPeftModel(vit, ship(shipOptions), { seed });
      try {
        await model.prepare(prepareData);
        const result = await train(
          model,
          { train: trainData },
          { epochs, batchSize, lr, weightDecay: 1e-3, seed },
        );
        const metrics = await evaluate(model, testData, { batchSize });
        rows.push({
          method,
          trainableWithoutHead: model.parameterReport().trainableWithoutHead,
          finalLoss: result.history.at(-1)?.loss ?? Number.NaN,
          top1: metrics.top1,
        });
      } finally {
        model.dispose();
      }
    }
  } finally {
    prepareImages.dispose();
    vit.dispose();
  }
  return rows;
}
