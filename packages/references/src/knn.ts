import {
  HEAD_OWNER,
  type FitData,
  type FitOutcome,
  type HookContext,
  type JsonObject,
  PeftError,
  type PeftModel,
  type PeftPlugin,
  type PrepareData,
  type Tensor,
  type Tensor2D,
  type Tensor3D,
  definePluginMethod,
  pluginFunction,
  tf,
  z,
} from '@peftjs/core';
import { REFERENCES_VERSION, identityFields, pluginHeader } from './common.js';

/** Options of the kNN reference: the only place their defaults live. */
export const KNN_OPTIONS = z
  .strictObject({
    space: z
      .enum(['pixel', 'features'])
      .default('pixel')
      .describe(
        "pixel: distances between the normalised images; features: between the backbone's final-normed CLS " +
          'features (frozen: nothing trains)',
      ),
    k: z
      .array(z.int().positive())
      .min(1)
      .refine((ks) => new Set(ks).size === ks.length, 'k candidates must be distinct')
      .default([1, 3, 5, 9])
      .describe(
        'neighbour counts to choose from: each is scored on the validation split, the best (the first on ties) is kept',
      ),
    ...identityFields({ name: 'knn', prefix: 'knn' }),
  })
  .describe(
    'reference: k-nearest neighbours in pixel or frozen-feature space, k chosen on the validation split; no training',
  );

/** Parsed kNN options. */
export type KnnOptions = z.output<typeof KNN_OPTIONS>;

/** What a fitted kNN plugin records (its adapter artifacts): the chosen k and the memory's size. */
interface KnnState {
  readonly k: number;
  readonly count: number;
  readonly dim: number;
}

/** Smoothing of the vote shares, so that a class without votes keeps a finite log-probability. */
const VOTE_EPSILON = 1e-3;
/**
 * Ties between classes go to the class of the nearest neighbour among them: a class whose nearest neighbour has
 * rank r (0 = nearest) gets this · (k − r) / k more, and no two classes share a rank.
 */
const TIE_BREAK = 1e-3;

/**
 * Flattened patches `[B, P, p·p·C]` back to the images' NHWC order `[B, H·W·C]`, so that the pixel space of the
 * hook is exactly `reshape(images, [B, −1])`, the space the memory is built in.
 */
function pixelsFromPatches(ctx: HookContext, patches: Tensor3D): Tensor2D {
  const { patchSize: p, channels } = ctx.config;
  const { gridHeight, gridWidth } = ctx.geometry;
  const batch = patches.shape[0];
  const grid = tf.reshape(patches, [batch, gridHeight, gridWidth, p, p, channels]);
  return tf.reshape(tf.transpose(grid, [0, 1, 3, 2, 4, 5]), [batch, -1]);
}

/**
 * Log vote shares `[B, C]` of the `k` nearest rows of `memory` `[N, D]` (squared Euclidean distance) for each
 * query row `[B, D]`: softmax of the result gives each class's share of the k votes.
 */
export function knnLogits(
  query: Tensor2D,
  memory: Tensor2D,
  labels: Tensor,
  k: number,
  numClasses: number,
): Tensor2D {
  return tf.tidy(() => {
    const kk = Math.min(k, memory.shape[0]);
    const distances = tf.add(
      tf.sub(tf.sum(tf.square(query), 1, true), tf.mul(2, tf.matMul(query, memory, false, true))),
      tf.reshape(tf.sum(tf.square(memory), 1), [1, -1]),
    );
    const { indices } = tf.topk(tf.neg(distances), kk);
    const neighbours = tf.oneHot(
      tf.cast(tf.gather(tf.cast(labels, 'int32'), indices), 'int32') as Tensor2D,
      numClasses,
    );
    const rankBonus = tf.tensor(
      Array.from({ length: kk }, (_, r) => (TIE_BREAK * (kk - r)) / kk),
      [1, kk, 1],
    );
    const shares = tf.add(
      tf.add(tf.sum(neighbours, 1), tf.max(tf.mul(neighbours, rankBonus), 1)),
      VOTE_EPSILON,
    );
    return tf.sub(tf.log(shares), tf.log(tf.sum(shares, 1, true))) as Tensor2D;
  });
}

function createKnn(o: KnnOptions): PeftPlugin {
  let state: KnnState | null = null;
  return {
    ...pluginHeader('knn', o),
    setup(ctx) {
      // Nothing trains, not even the head: the memory answers for it.
      ctx.setTrainable((entry) => entry.owner === HEAD_OWNER, false);
    },
    restore(ctx, artifacts) {
      const { k, count, dim } = artifacts as unknown as KnnState;
      for (const [key, value] of Object.entries({ k, count, dim })) {
        if (!Number.isInteger(value) || value < 1)
          throw new PeftError(
            'PLUGIN_INVALID',
            `knn artifact "${key}" must be a positive integer; got ${value}`,
          );
      }
      ctx.addBuffer('memory', tf.zeros([count, dim]));
      ctx.addBuffer('labels', tf.zeros([count]));
      state = { k, count, dim };
    },
    hooks: {
      ...(o.space === 'pixel'
        ? {
            patchEmbed(ctx, input, next) {
              if (state) ctx.scratch.set('pixels', pixelsFromPatches(ctx, input));
              return next(input);
            },
          }
        : {}),
      head(ctx, features, next) {
        if (!state) return next(features);
        const query = o.space === 'pixel' ? (ctx.scratch.get('pixels') as Tensor2D) : features;
        return knnLogits(
          query,
          ctx.param('memory') as unknown as Tensor2D,
          ctx.param('labels'),
          state.k,
          ctx.config.numClasses,
        );
      },
    },
  };
}

/** One split embedded as rows: `[N, D]` values and their labels. */
interface Embedded {
  readonly rows: Tensor2D;
  readonly labels: Tensor;
}

/** Every image of `split` in the kNN's space (the caller disposes the result). */
async function embed(model: PeftModel, split: PrepareData, space: KnnOptions['space']): Promise<Embedded> {
  const rows: Tensor2D[] = [];
  const labels: Tensor[] = [];
  try {
    for await (const batch of split.batches()) {
      if (!batch.labels) throw new PeftError('INVALID_OPTION', 'kNN needs labelled data to fit');
      rows.push(
        tf.tidy(() =>
          space === 'pixel'
            ? (tf.reshape(batch.images, [batch.images.shape[0], -1]) as Tensor2D)
            : model.forwardIntermediates(batch.images).features,
        ),
      );
      labels.push(tf.cast(batch.labels, 'float32'));
    }
    if (rows.length === 0) throw new PeftError('INVALID_OPTION', 'kNN cannot fit an empty split');
    return { rows: tf.concat(rows) as Tensor2D, labels: tf.concat(labels) };
  } finally {
    tf.dispose([...rows, ...labels]);
  }
}

/** Top-1 of the kNN over `memory` with `k` neighbours, on the embedded `queries`. */
async function scoreK(memory: Embedded, queries: Embedded, k: number, numClasses: number): Promise<number> {
  const hits = tf.tidy(() => {
    const logits = knnLogits(queries.rows, memory.rows, memory.labels, k, numClasses);
    return tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(queries.labels, 'int32')), 'float32'));
  });
  const count = (await hits.data())[0] as number;
  hits.dispose();
  return count / queries.rows.shape[0];
}

/**
 * Fits a kNN model: each candidate k scored on `val` with `select` as memory, then the chosen k with `trainval` as
 * memory, stored as the plugin's buffers (saved with the adapter like any plugin state).
 */
async function fitKnn(model: PeftModel, data: FitData, o: KnnOptions): Promise<FitOutcome> {
  if (!model.plugins.some((p) => p.name === o.name))
    throw new PeftError('PLUGIN_INVALID', `the model has no plugin "${o.name}" to fit`);
  const numClasses = model.config.numClasses;
  const select = await embed(model, data.select, o.space);
  const candidates: { setting: JsonObject; valTop1: number }[] = [];
  try {
    const val = await embed(model, data.val, o.space);
    try {
      for (const k of o.k)
        candidates.push({ setting: { k }, valTop1: await scoreK(select, val, k, numClasses) });
    } finally {
      tf.dispose([val.rows, val.labels]);
    }
  } finally {
    tf.dispose([select.rows, select.labels]);
  }
  const best = candidates.reduce((a, b) => (b.valTop1 > a.valTop1 ? b : a));
  const k = best.setting.k as number;
  const memory = await embed(model, data.trainval, o.space);
  try {
    const [count, dim] = memory.rows.shape;
    model.restoreArtifacts({ [o.name]: { k, count, dim } });
    model.registry.get(`${o.prefix}.memory`).assign(memory.rows);
    model.registry.get(`${o.prefix}.labels`).assign(memory.labels);
    return { chosen: { k }, candidates, fittedOn: count };
  } finally {
    tf.dispose([memory.rows, memory.labels]);
  }
}

/**
 * k-nearest neighbours as a method: the reference a fine-tune should beat. Nothing is trained — `fit` stores the
 * training images (pixel space) or their frozen CLS features (feature space) as plugin buffers, after choosing k
 * on the validation split; the `head` hook then votes among the k nearest. `peft train --method.name=knn` calls
 * `fit` instead of `train()`.
 */
export const KNN_METHOD = definePluginMethod({
  type: 'knn',
  name: 'knn',
  version: REFERENCES_VERSION,
  description: KNN_OPTIONS.description ?? '',
  options: KNN_OPTIONS,
  create: createKnn,
  fit: {
    summary: 'stores the training split (pixels or frozen features) after choosing k on the validation split',
    fit: fitKnn,
  },
});

/** A kNN plugin from options (parsed by `KNN_OPTIONS`); fit it with `KNN_METHOD.fit`. */
export const knn = pluginFunction(KNN_METHOD);
