/** Test helpers for this package (not exported from the index): a small training loop over fixed batches. */
import { type PeftModel, type Tensor1D, type Tensor4D, tf } from '@peftjs/core';

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
