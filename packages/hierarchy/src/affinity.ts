import { PeftError, requirePositiveInt, tf } from '@peftjs/core';
import type { Tensor2D, Tensor3D } from '@peftjs/core';

/** Guards the L2 normalisation of an all-zero feature vector (its cosines become 0). */
const NORM_EPS = 1e-12;

/**
 * Running layer-affinity estimate (docs/ship-method.md §2.2): for every image, the L×L matrix of cosine similarities between its
 * per-layer feature vectors, averaged over images. This is deliberately not the cosine of averaged features.
 * The sum lives on the host in float64, so no tensor survives between `add` calls.
 */
export class AffinityAccumulator {
  /** Number of layers L (the matrix is L×L). */
  readonly layers: number;
  private readonly sum: Float64Array;
  private images = 0;

  constructor(layers: number) {
    this.layers = requirePositiveInt('layers', layers);
    this.sum = new Float64Array(layers * layers);
  }

  /** Number of images accumulated so far. */
  get count(): number {
    return this.images;
  }

  /** Adds one batch: `perLayer[l]` is `[B, D]` (same B and D for every layer). Does not dispose its inputs. */
  add(perLayer: readonly Tensor2D[]): void {
    const L = this.layers;
    if (perLayer.length !== L) {
      throw new PeftError('SHAPE_MISMATCH', `perLayer must hold ${L} layers; got ${perLayer.length}`);
    }
    const first = perLayer[0] as Tensor2D;
    for (let l = 0; l < L; l++) {
      const t = perLayer[l] as Tensor2D;
      if (t.rank !== 2 || t.shape[0] !== first.shape[0] || t.shape[1] !== first.shape[1]) {
        throw new PeftError(
          'SHAPE_MISMATCH',
          `perLayer[${l}] must be [${first.shape}] like perLayer[0]; got [${t.shape}]`,
        );
      }
    }
    const batch = first.shape[0];
    if (batch === 0) return;
    const sims = tf.tidy(() => {
      const stacked = tf.stack(perLayer as Tensor2D[], 1) as Tensor3D; // [B, L, D]
      const norms = tf.maximum(tf.norm(stacked, 'euclidean', 2, true), NORM_EPS);
      const unit = tf.div(stacked, norms) as Tensor3D;
      // Per-image L×L cosines, summed over the batch.
      return tf.sum(tf.matMul(unit, unit, false, true), 0);
    });
    const values = sims.dataSync();
    sims.dispose();
    for (let i = 0; i < values.length; i++) this.sum[i] = (this.sum[i] as number) + (values[i] as number);
    this.images += batch;
  }

  /**
   * The mean matrix. It is symmetrised (the two float32 triangles can differ in the last bit) and its diagonal is
   * exactly 1 (a vector's cosine with itself), so it is ready for grouping and for saving.
   */
  result(): number[][] {
    if (this.images === 0)
      throw new PeftError('INVALID_CONFIG', 'AffinityAccumulator.result(): no images were added');
    const L = this.layers;
    const n = this.images;
    const out: number[][] = [];
    for (let i = 0; i < L; i++) {
      const row: number[] = [];
      for (let j = 0; j < L; j++) {
        row.push(i === j ? 1 : ((this.sum[i * L + j] as number) + (this.sum[j * L + i] as number)) / (2 * n));
      }
      out.push(row);
    }
    return out;
  }
}
