import { Rng, tf } from '@peftjs/core';
import type { Tensor2D } from '@peftjs/core';
import { describeBackends, expectNoLeakedTensors, expectTensorClose } from '@peftjs/core/testing';
import { expect, it } from 'vitest';
import { AffinityAccumulator } from './affinity.js';
import { layerFeatures } from './features.js';

/** features[l][b] = D-vector of image b at layer l. */
function randomFeatures(layers: number, images: number, dim: number, seed: string): number[][][] {
  const rng = new Rng(seed);
  return Array.from({ length: layers }, () =>
    Array.from({ length: images }, () => Array.from({ length: dim }, () => rng.normal(0, 1) + 0.5)),
  );
}

/** The definition in float64: per image, cosine of every layer pair; then the mean over images. */
function naiveAffinity(features: number[][][]): number[][] {
  const L = features.length;
  const B = (features[0] as number[][]).length;
  const unit = features.map((layer) =>
    layer.map((v) => {
      const n = Math.hypot(...v);
      return v.map((x) => x / n);
    }),
  );
  const out = Array.from({ length: L }, () => new Array<number>(L).fill(0));
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < L; i++) {
      for (let j = 0; j < L; j++) {
        const u = (unit[i] as number[][])[b] as number[];
        const w = (unit[j] as number[][])[b] as number[];
        (out[i] as number[])[j] =
          ((out[i] as number[])[j] as number) + u.reduce((s, x, k) => s + x * (w[k] as number), 0) / B;
      }
    }
  }
  return out;
}

/** Tensors for images [from, to) of every layer. */
function batch(features: number[][][], from: number, to: number): Tensor2D[] {
  return features.map((layer) => tf.tensor2d(layer.slice(from, to)));
}

await describeBackends('AffinityAccumulator', () => {
  it('equals the naive per-image cosine mean, independent of batch order', () => {
    const features = randomFeatures(5, 7, 6, 'aff');
    const first = batch(features, 0, 3);
    const second = batch(features, 3, 7);
    const forward = new AffinityAccumulator(5);
    forward.add(first);
    forward.add(second);
    const backward = new AffinityAccumulator(5);
    backward.add(second);
    backward.add(first);
    expect(forward.count).toBe(7);
    const expected = naiveAffinity(features);
    expectTensorClose(forward.result().flat(), expected.flat(), { atol: 1e-5, label: 'affinity' });
    expectTensorClose(backward.result().flat(), forward.result().flat(), { atol: 1e-6, label: 'reordered' });
    const A = forward.result();
    for (let i = 0; i < 5; i++) {
      expect((A[i] as number[])[i]).toBe(1);
      for (let j = 0; j < 5; j++) expect((A[i] as number[])[j]).toBe((A[j] as number[])[i]);
    }
    tf.dispose([...first, ...second]);
  });

  it('averages per-image matrices, which is not the cosine of averaged features', () => {
    // Image 1: layer 0 = e1, layer 1 = e2 (cosine 0). Image 2: swapped (cosine 0). Means are equal (cosine 1).
    const acc = new AffinityAccumulator(2);
    const perLayer = [
      tf.tensor2d([
        [1, 0],
        [0, 1],
      ]),
      tf.tensor2d([
        [0, 1],
        [1, 0],
      ]),
    ];
    acc.add(perLayer);
    expect((acc.result()[0] as number[])[1]).toBeCloseTo(0, 6);
    const meanCosine = naiveAffinity([[[0.5, 0.5]], [[0.5, 0.5]]]);
    expect((meanCosine[0] as number[])[1]).toBeCloseTo(1, 6);
    tf.dispose(perLayer);
  });

  it('keeps no tensors between calls and rejects bad input', async () => {
    const features = randomFeatures(3, 4, 5, 'leak');
    const perLayer = batch(features, 0, 4);
    const acc = new AffinityAccumulator(3);
    await expectNoLeakedTensors(() => acc.add(perLayer));
    expect(() => acc.add(perLayer.slice(0, 2))).toThrow(/must hold 3 layers; got 2/);
    const odd = tf.zeros([4, 6]) as Tensor2D;
    expect(() => acc.add([perLayer[0] as Tensor2D, odd, perLayer[2] as Tensor2D])).toThrow(/perLayer\[1\]/);
    expect(() => new AffinityAccumulator(3).result()).toThrow(/no images/);
    tf.dispose([...perLayer, odd]);
  });

  it('picks the CLS token or the mean of patch tokens', () => {
    const x = tf.tensor3d([
      [
        [1, 2],
        [3, 4],
        [5, 8],
      ],
      [
        [0, 1],
        [2, 2],
        [4, 0],
      ],
    ]);
    const before = tf.memory().numTensors;
    const [cls] = layerFeatures([x], 'cls');
    const [mean] = layerFeatures([x], 'mean-patch');
    expect(tf.memory().numTensors).toBe(before + 2);
    expectTensorClose(cls as Tensor2D, [1, 2, 0, 1], { label: 'cls' });
    expectTensorClose(mean as Tensor2D, [4, 6, 3, 1], { label: 'mean-patch' });
    expect(() => layerFeatures([x], 'avg' as 'cls')).toThrow(/option "token"/);
    tf.dispose([x, cls as Tensor2D, mean as Tensor2D]);
  });
});
