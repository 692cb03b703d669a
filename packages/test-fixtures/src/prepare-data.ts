import { type PrepareData, type Tensor4D, tf } from '@peftjs/core';

/** A fixed-order `PrepareData` over in-memory images, in batches of `batchSize` (each disposed after use). */
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
