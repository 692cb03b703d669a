import { VisionTransformer } from '@peftjs/backbone';
import {
  type PeftModel,
  type PeftPlugin,
  type Tensor1D,
  type Tensor4D,
  createPeftModel,
  tf,
} from '@peftjs/core';
import { describeBackends, expectNoLeakedTensors } from '@peftjs/core/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mnistDigitTensors } from './mnist.js';
import { tinyMnistVit } from './tiny-vit.js';

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

/** One optimizer step on batch `i` of the cycle; returns the loss before the update. Disposes what it creates. */
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

/** The arithmetic mean. */
export const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;

/** The tiny MNIST ViT's blocks, for listing per-block parameter names. */
export const TINY_BLOCKS = [0, 1, 2, 3] as const;

/** `names(block)` for every block of the tiny ViT, flattened. */
export const perBlock = (names: (block: number) => string[]): string[] => TINY_BLOCKS.flatMap(names);

/** One plugin setup that must train on MNIST. */
export interface TrainingCase {
  /** Test name. */
  readonly label: string;
  /** Fresh plugins for one model. */
  readonly plugins: () => PeftPlugin[];
  /** Adam's learning rate. */
  readonly learningRate: number;
  /** Names that must receive gradients (the head is added), from the backbone's own name list. */
  readonly expected: (backboneNames: string[]) => string[];
}

const STEPS = 20;
const HEAD = ['head.bias', 'head.weight'];

/**
 * Trains each case for 20 Adam steps on the tiny MNIST ViT, on every backend of the test matrix: the loss falls,
 * gradients reach exactly the expected tensors and the head, and a step leaks no tensors.
 */
export async function trainingSuite(title: string, cases: readonly TrainingCase[]): Promise<void> {
  await describeBackends(title, () => {
    let images: Tensor4D;
    let labels: Tensor1D;

    beforeAll(() => {
      ({ images, labels } = mnistDigitTensors('t10k', 0, 12));
    });
    afterAll(() => {
      tf.dispose([images, labels]);
    });

    it.each(cases)('$label: loss falls, gradients reach exactly its tensors + head, no leaks', async (c) => {
      // A fresh backbone per case: full fine-tuning and BitFit update the shared backbone variables.
      const vit = VisionTransformer.create(tinyMnistVit(), { seed: 3 });
      const backboneNames = vit.registry.list((e) => e.owner === 'backbone').map((e) => e.name);
      const model = createPeftModel(vit, c.plugins(), { seed: 5 });
      const optimizer = tf.train.adam(c.learningRate);

      const losses = Array.from({ length: STEPS }, (_, i) => trainStep(model, optimizer, images, labels, i));
      // Steps 0–2 and 17–19 see the same three batches (batch = step mod 3), so the means are comparable.
      const first = mean(losses.slice(0, 3));
      const last = mean(losses.slice(STEPS - 3));
      expect(last, `losses ${losses.map((l) => l.toFixed(3)).join(' ')}`).toBeLessThan(first * 0.9);

      // All images at once: with four, every ReLU of a small bottleneck can be inactive and a gradient exactly 0.
      const { loss, grads } = model.lossAndGradients(images, labels);
      const expected = [...c.expected(backboneNames), ...HEAD].sort();
      expect(Object.keys(grads).sort()).toEqual(expected);
      for (const [name, g] of Object.entries(grads)) {
        const largest = Array.from(g.dataSync() as Float32Array).reduce(
          (m, v) => Math.max(m, Math.abs(v)),
          0,
        );
        expect(largest, `gradient of ${name}`).toBeGreaterThan(0);
      }
      tf.dispose([loss, ...Object.values(grads)]);

      let step = STEPS;
      await expectNoLeakedTensors(() => trainStep(model, optimizer, images, labels, step++), {
        warmup: 0,
        repeats: 2,
      });

      optimizer.dispose();
      model.dispose();
      vit.dispose();
    });
  });
}
