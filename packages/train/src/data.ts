import { invalidOption, PeftError, Rng, requirePositiveInt, type Seed, tf } from '@peftjs/core';
import type { Tensor1D, Tensor4D } from '@peftjs/core';
import { Sha256 } from '@peftjs/core/internal';

/** What `TrainingData.batches` is asked for. */
export interface BatchOptions {
  /** Examples per batch; the last batch may be smaller unless `dropLast`. */
  readonly batchSize: number;
  /** Whether to permute the examples (seeded by `seed` and `epoch`); false keeps the storage order. */
  readonly shuffle: boolean;
  /** With `epoch`, fully determines the order: the same (seed, epoch) always yields the same batches. */
  readonly seed: Seed;
  /** 0-based epoch index; with `seed`, selects the permutation. */
  readonly epoch: number;
  /** Skip a final batch smaller than `batchSize`. */
  readonly dropLast: boolean;
}

/** One batch of examples; the tensors belong to the producer. */
export interface Batch {
  /** `[B, H, W, C]`, float32. */
  readonly images: Tensor4D;
  /** `[B]`, int32 class indices. */
  readonly labels: Tensor1D;
}

/**
 * A labelled image split as the trainer sees it. The order of `batches` must depend only on its options, so that a
 * resumed run sees the same batches as an uninterrupted one. Batch tensors belong to the producer: consumers must
 * not dispose them and must clone anything they keep past the next iteration.
 */
export interface TrainingData {
  /** Number of examples. */
  readonly size: number;
  /** Number of classes; labels lie in [0, numClasses). */
  readonly numClasses: number;
  /** One pass over the data in the order `options` determines. */
  batches(options: BatchOptions): AsyncIterable<Batch>;
  /**
   * A digest of the examples (and their preprocessing), recorded by checkpoints so that a resumed run refuses
   * other data; data without one cannot be told apart on resume.
   */
  fingerprint?(): string;
}

/** Number of batches `batches` yields for `size` examples. */
export function batchCount(size: number, batchSize: number, dropLast: boolean): number {
  return dropLast ? Math.floor(size / batchSize) : Math.ceil(size / batchSize);
}

/**
 * In-memory `TrainingData` over NHWC float32 pixels. The epoch order is
 * `new Rng(seed).split(`epoch:${epoch}`).permutation(size)`; without shuffling it is the storage order.
 */
export function arrayData(
  images: Float32Array,
  labels: Int32Array,
  shape: readonly [number, number, number],
  numClasses: number,
): TrainingData {
  const [h, w, c] = shape;
  for (const [i, d] of shape.entries()) requirePositiveInt(`shape[${i}]`, d);
  requirePositiveInt('numClasses', numClasses);
  const size = labels.length;
  const pixels = h * w * c;
  if (images.length !== size * pixels) {
    throw new PeftError(
      'SHAPE_MISMATCH',
      `arrayData: images hold ${images.length} values but ${size} labels × [${h}, ${w}, ${c}] need ${size * pixels}`,
    );
  }
  for (let i = 0; i < size; i++) {
    const label = labels[i] as number;
    if (label < 0 || label >= numClasses) {
      invalidOption(`labels[${i}]`, label, `a class index in [0, ${numClasses})`);
    }
  }
  let digest: string | null = null;
  return {
    size,
    numClasses,
    fingerprint() {
      if (digest === null) {
        const hash = new Sha256().update(`${h}x${w}x${c};${numClasses};`);
        hash.update(new Uint8Array(labels.buffer, labels.byteOffset, labels.byteLength));
        hash.update(new Uint8Array(images.buffer, images.byteOffset, images.byteLength));
        digest = hash.hex();
      }
      return digest;
    },
    async *batches(options: BatchOptions) {
      const batchSize = requirePositiveInt('batchSize', options.batchSize);
      const order = options.shuffle
        ? new Rng(options.seed).split(`epoch:${options.epoch}`).permutation(size)
        : Array.from({ length: size }, (_, i) => i);
      const count = batchCount(size, batchSize, options.dropLast);
      for (let b = 0; b < count; b++) {
        const index = order.slice(b * batchSize, (b + 1) * batchSize);
        const x = new Float32Array(index.length * pixels);
        const y = new Int32Array(index.length);
        index.forEach((src, k) => {
          x.set(images.subarray(src * pixels, (src + 1) * pixels), k * pixels);
          y[k] = labels[src] as number;
        });
        const batch = {
          images: tf.tensor4d(x, [index.length, h, w, c]),
          labels: tf.tensor1d(y, 'int32'),
        };
        try {
          yield batch;
        } finally {
          batch.images.dispose();
          batch.labels.dispose();
        }
      }
    },
  };
}
