/**
 * The README's path as a function: load ViT weights → attach SHIP → `prepare` (hierarchy + prototypes) → train →
 * evaluate → parameter counts. Without a weights file it writes a seeded random ViT to a temporary safetensors
 * file first, so the loading path is exercised either way (a random backbone gives chance-level accuracy).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VisionTransformer, customVit, loadVit } from '@peftjs/backbone';
import {
  type BackendPreference,
  type ParameterReport,
  type PrepareData,
  createPeftModel,
  initBackend,
  tf,
} from '@peftjs/core';
import { serializeSafetensors } from '@peftjs/core/safetensors';
import { ship } from '@peftjs/ship';
import { arrayData, evaluate, train } from '@peftjs/train';
import { mnistDigits } from './mnist.js';

export interface QuickstartOptions {
  /** A timm/HF safetensors or Google npz file whose geometry fits 28×28×1 images; default: a seeded random ViT. */
  weights?: string;
  backend?: BackendPreference;
  trainImages?: number;
  testImages?: number;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface QuickstartResult {
  backend: string;
  losses: number[];
  top1: number;
  report: ParameterReport;
  starts: number[];
}

async function randomWeightsFile(dir: string): Promise<string> {
  const config = customVit({
    imageSize: 28,
    patchSize: 7,
    channels: 1,
    dim: 32,
    depth: 4,
    heads: 2,
    numClasses: 10,
  });
  const vit = VisionTransformer.create(config, { seed: 0 });
  const tensors = [...vit.toTorchTensors()].map(([name, t]) => ({ name, shape: t.shape, data: t.data }));
  vit.dispose();
  const path = join(dir, 'vit-tiny-random.safetensors');
  await writeFile(path, serializeSafetensors(tensors, { config: JSON.stringify({ num_heads: 2 }) }));
  return path;
}

export async function runQuickstart(options: QuickstartOptions = {}): Promise<QuickstartResult> {
  const log = options.log ?? console.log;
  const { trainImages = 200, testImages = 100, epochs = 5, batchSize = 20, lr = 5e-3, seed = 1 } = options;
  const choice = await initBackend({ prefer: options.backend ?? 'auto', log: false });
  log(`backend: ${choice.backend}`);

  const tmp = await mkdtemp(join(tmpdir(), 'peftjs-quickstart-'));
  try {
    const weights = options.weights ?? (await randomWeightsFile(tmp));
    const { model: vit } = await loadVit(weights, { numClasses: 10, seed });
    log(`loaded ${weights}: dim ${vit.config.dim}, depth ${vit.config.depth}`);

    const trainSet = await mnistDigits(0, trainImages);
    const testSet = await mnistDigits(5000, testImages);
    const trainData = arrayData(trainSet.images, trainSet.labels, [28, 28, 1], 10);
    const testData = arrayData(testSet.images, testSet.labels, [28, 28, 1], 10);

    const model = createPeftModel(vit, ship({ promptLength: 4, hierarchy: { prototypes: 8 } }), { seed });
    const prepareData: PrepareData = {
      size: trainImages,
      async *batches() {
        for (let start = 0; start < trainImages; start += batchSize) {
          const n = Math.min(batchSize, trainImages - start);
          const images = tf.tensor4d(trainSet.images.subarray(start * 784, (start + n) * 784), [
            n,
            28,
            28,
            1,
          ]);
          yield { images };
          images.dispose();
        }
      },
    };
    await model.prepare(prepareData);
    const starts = model.artifacts()['ship-hierarchy']?.starts as number[];
    log(`SHIP hierarchy starts: ${starts.join(', ')}`);

    const result = await train(
      model,
      { train: trainData },
      {
        epochs,
        batchSize,
        lr,
        weightDecay: 1e-3,
        seed,
        onEvent: (e) => {
          if (e.type === 'epoch-end') log(`epoch ${e.epoch}: loss ${e.loss.toFixed(4)}`);
        },
      },
    );
    const metrics = await evaluate(model, testData, { batchSize });
    const report = model.parameterReport();
    log(`test top-1: ${(100 * metrics.top1).toFixed(1)} % of ${metrics.count}`);
    log(
      `parameters: trainable ${report.trainable} (without head ${report.trainableWithoutHead}), ` +
        `frozen ${report.frozen}, ${((100 * report.trainableWithoutHead) / report.frozen).toFixed(2)} % of the backbone`,
    );
    model.dispose();
    vit.dispose();
    return {
      backend: choice.backend,
      losses: result.history.map((h) => h.loss),
      top1: metrics.top1,
      report,
      starts,
    };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
