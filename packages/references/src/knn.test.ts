import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VisionTransformer } from '@peftjs/backbone';
import {
  type FitData,
  type PrepareData,
  type Tensor4D,
  createPeftModel,
  initBackend,
  loadAdapter,
  parseOptions,
  saveAdapter,
  tf,
} from '@peftjs/core';
import { linearProbe } from '@peftjs/baselines';
import { mnistDigits, tinyMnistVit } from '@peftjs/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFERENCE_PLUGIN_FACTORIES } from './index.js';
import { KNN_METHOD, KNN_OPTIONS, knn } from './knn.js';

/** A labelled split of MNIST digits as host arrays and as `PrepareData` (batches of 16, fixed order). */
function split(start: number, count: number) {
  const { images, labels } = mnistDigits('t10k', start, count);
  const data: PrepareData = {
    size: count,
    async *batches() {
      for (let s = 0; s < count; s += 16) {
        const n = Math.min(16, count - s);
        const batch = {
          images: tf.tensor4d(images.subarray(s * 784, (s + n) * 784), [n, 28, 28, 1]),
          labels: tf.tensor1d(labels.subarray(s, s + n), 'int32'),
        };
        try {
          yield batch;
        } finally {
          tf.dispose([batch.images, batch.labels]);
        }
      }
    },
  };
  return { images, labels, data, count };
}

/** The kNN vote the method documents, in plain arithmetic: one vote per neighbour, ties to the nearest. */
function bruteForce(
  memory: { rows: Float32Array[]; labels: ArrayLike<number> },
  query: Float32Array,
  k: number,
): number {
  const order = memory.rows
    .map((row, i) => ({ i, d: row.reduce((s, v, j) => s + (v - (query[j] as number)) ** 2, 0) }))
    .sort((a, b) => a.d - b.d || a.i - b.i)
    .slice(0, k);
  const votes = new Map<number, number>();
  order.forEach(({ i }, r) => {
    const label = memory.labels[i] as number;
    // One vote each; the class of the nearest neighbour among tied classes wins.
    votes.set(label, (votes.get(label) ?? (1e-3 * (k - r)) / k) + 1);
  });
  return [...votes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] as number;
}

const rowsOf = (values: Float32Array, count: number) =>
  Array.from({ length: count }, (_, i) =>
    values.subarray((i * values.length) / count, ((i + 1) * values.length) / count),
  );

const accuracy = (
  memory: { rows: Float32Array[]; labels: ArrayLike<number> },
  queries: Float32Array[],
  labels: ArrayLike<number>,
  k: number,
) => queries.filter((q, i) => bruteForce(memory, q, k) === labels[i]).length / queries.length;

let vit: VisionTransformer;
let dir: string;
const select = split(0, 60);
const val = split(60, 30);
const trainval = split(0, 90);
const test = split(200, 40);
const data: FitData = { select: select.data, val: val.data, trainval: trainval.data };

beforeAll(async () => {
  await initBackend({ prefer: 'cpu', log: false });
  vit = VisionTransformer.create(tinyMnistVit(), { seed: 0 });
  dir = await mkdtemp(join(tmpdir(), 'peftjs-knn-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fitted(options: Parameters<typeof knn>[0]) {
  const model = createPeftModel(vit, [knn(options)], { seed: 1, numClasses: 10 });
  const parsed = parseOptions(KNN_OPTIONS, options, 'knn');
  const outcome = await KNN_METHOD.fit?.fit(model, data, parsed);
  return { model, outcome: outcome as NonNullable<typeof outcome> };
}

function predict(model: ReturnType<typeof createPeftModel>): number[] {
  const images = tf.tensor4d(test.images, [test.count, 28, 28, 1]) as Tensor4D;
  const predicted = tf.tidy(() => tf.argMax(model.predict(images), 1));
  const out = Array.from(predicted.dataSync());
  tf.dispose([images, predicted]);
  return out;
}

describe('knn reference', () => {
  it('chooses k on validation and predicts what a brute-force pixel-space kNN predicts', async () => {
    const before = tf.memory().numTensors;
    const { model, outcome } = await fitted({ space: 'pixel', k: [1, 3, 5] });
    const memory = { rows: rowsOf(select.images, select.count), labels: select.labels };
    const valRows = rowsOf(val.images, val.count);
    const expected = [1, 3, 5].map((k) => accuracy(memory, valRows, val.labels, k));
    expect(outcome.candidates.map((c) => c.valTop1)).toEqual(expected.map((a) => expect.closeTo(a, 9)));
    const bestK = [1, 3, 5][expected.indexOf(Math.max(...expected))] as number;
    expect(outcome.chosen).toEqual({ k: bestK });
    expect(outcome.fittedOn).toBe(90);
    const full = { rows: rowsOf(trainval.images, trainval.count), labels: trainval.labels };
    const truth = rowsOf(test.images, test.count).map((q) => bruteForce(full, q, bestK));
    const got = predict(model);
    expect(got).toEqual(truth);
    expect(model.parameterReport().trainable).toBe(0);
    // Softmax of the logits is each class's share of the k votes.
    const images = tf.tensor4d(test.images.subarray(0, 784), [1, 28, 28, 1]) as Tensor4D;
    const probabilities = tf.tidy(() => tf.softmax(model.predict(images)));
    const shares = Array.from(probabilities.dataSync());
    tf.dispose([images, probabilities]);
    expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    const votes = Array.from(shares, (s) => Math.round(s * bestK));
    expect(votes.reduce((a, b) => a + b, 0)).toBe(bestK);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('in feature space, votes among the frozen CLS features and survives an adapter round trip', async () => {
    const { model, outcome } = await fitted({ space: 'features', k: [1, 3] });
    const probe = createPeftModel(vit, [linearProbe()], { seed: 1, numClasses: 10 });
    const features = (images: Float32Array, count: number) => {
      const t = tf.tensor4d(images, [count, 28, 28, 1]) as Tensor4D;
      const f = tf.tidy(() => probe.forwardIntermediates(t).features);
      const rows = rowsOf(f.dataSync() as Float32Array, count);
      tf.dispose([t, f]);
      return rows;
    };
    const k = outcome.chosen.k as number;
    const memory = { rows: features(trainval.images, trainval.count), labels: trainval.labels };
    const truth = features(test.images, test.count).map((q) => bruteForce(memory, q, k));
    const predicted = predict(model);
    expect(predicted).toEqual(truth);
    await saveAdapter(model, join(dir, 'features'));
    const loaded = await loadAdapter(vit, join(dir, 'features'), { factories: REFERENCE_PLUGIN_FACTORIES });
    expect(predict(loaded)).toEqual(predicted);
    for (const m of [loaded, model, probe]) m.dispose();
  });

  it('answers with the plain head before it is fitted, and refuses unlabelled data', async () => {
    const model = createPeftModel(vit, [knn()], { seed: 1, numClasses: 10 });
    const plain = createPeftModel(vit, [], { seed: 1, numClasses: 10 });
    expect(predict(model)).toEqual(predict(plain));
    const unlabelled: PrepareData = {
      size: 1,
      async *batches() {
        const images = tf.zeros([1, 28, 28, 1]) as Tensor4D;
        try {
          yield { images };
        } finally {
          images.dispose();
        }
      },
    };
    await expect(
      KNN_METHOD.fit?.fit(model, { ...data, select: unlabelled }, parseOptions(KNN_OPTIONS, {}, 'knn')),
    ).rejects.toThrow(/kNN needs labelled data/);
    expect(() => knn({ k: [3, 3] })).toThrow(/k candidates must be distinct/);
    model.dispose();
    plain.dispose();
  });
});
