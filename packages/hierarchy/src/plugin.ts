import {
  PeftError,
  pluginFunction,
  pluginIdentity,
  definePlugin,
  invalidOption,
  parseOptions,
  requirePositiveInt,
  tf,
  z,
} from '@peftjs/core';
import type {
  FrozenFeatures,
  JsonObject,
  PeftModel,
  PeftPlugin,
  PrepareContext,
  PrepareData,
  SetupContext,
  Tensor4D,
} from '@peftjs/core';
import { AffinityAccumulator } from './affinity.js';
import { HIERARCHY_TOKENS, type HierarchyToken, layerFeatures } from './features.js';
import { groupLayers } from './grouping.js';
import { kmeans } from './kmeans.js';
import { requireStarts } from './validate.js';

/** Version of the hierarchy plugin (`PeftPlugin.version`). */
export const HIERARCHY_PLUGIN_VERSION = '0.1.0';

/** Keys under which `prepare` publishes its results to plugins that prepare later. */
export const HIERARCHY_SHARED_KEYS = {
  /** `number[]`: first block of every hierarchy, starting with 0. */
  starts: 'hierarchy.starts',
  /** `Tensor2D [k, D]`: attribute prototypes (means of last-block features per k-means cluster). */
  prototypes: 'hierarchy.prototypes',
  /** `number[][]`: the L×L layer affinity. */
  affinity: 'hierarchy.affinity',
} as const;

/**
 * Options of the hierarchy plugin: the only place their defaults live. τ and the grouping are described in
 * docs/ship-method.md §2, the prototype bank in §4.1.
 */
export const HIERARCHY_OPTIONS = z.strictObject({
  threshold: z
    .number()
    .finite()
    .default(0.93)
    .describe(
      "τ: a block opens a new hierarchy when its affinity with the current hierarchy's first block is below τ; " +
        '≥ 1 makes every block its own hierarchy',
    ),
  endLayer: z
    .int()
    .positive()
    .nullable()
    .default(null)
    .describe(
      'drop hierarchy starts at or after this block (the last hierarchy then runs to the end); null keeps all',
    ),
  token: z
    .enum(HIERARCHY_TOKENS)
    .default('cls')
    .describe('vector per image and block: the CLS token or the mean of the patch tokens'),
  prototypes: z.int().positive().default(200).describe('number of k-means attribute prototypes'),
  maxImages: z
    .int()
    .positive()
    .default(1000)
    .describe('at most this many training images (drawn without replacement) feed k-means'),
  kmeansInit: z.int().positive().default(1).describe('k-means seedings; the lowest inertia wins'),
  name: z.string().min(1).default('ship-hierarchy').describe('plugin name'),
  prefix: z
    .string()
    .min(1)
    .default('ship_hierarchy')
    .describe('tensor namespace (the plugin has no tensors)'),
});

/** Options of `hierarchyPlugin` as given: every key optional (see `HIERARCHY_OPTIONS` for defaults). */
export type HierarchyOptions = z.input<typeof HIERARCHY_OPTIONS>;
/** Options of the hierarchy plugin after parsing: every default filled in (what the plugin records). */
export type ResolvedHierarchyOptions = z.output<typeof HIERARCHY_OPTIONS>;

type LastLayerSink = (values: Float32Array, firstImage: number, batch: number, dim: number) => void;

/**
 * One pass of the frozen backbone over `data`: accumulates the layer affinity and hands each batch's last-layer
 * features (host copy) to `onLastLayer`. Every tensor it creates is disposed before the next batch.
 */
async function scanLayers(
  frozen: (images: Tensor4D) => FrozenFeatures,
  data: PrepareData,
  depth: number,
  token: HierarchyToken,
  onLastLayer?: LastLayerSink,
): Promise<{ affinity: number[][]; images: number }> {
  const accumulator = new AffinityAccumulator(depth);
  let seen = 0;
  for await (const { images } of data.batches()) {
    const features = frozen(images);
    try {
      if (features.blockOutputs.length !== depth) {
        throw new PeftError(
          'SHAPE_MISMATCH',
          `frozenFeatures returned ${features.blockOutputs.length} block outputs for a ${depth}-block model`,
        );
      }
      const last = tf.tidy(() => {
        const perLayer = layerFeatures(features.blockOutputs, token);
        accumulator.add(perLayer);
        return perLayer[depth - 1] as tf.Tensor2D;
      });
      try {
        const [batch, dim] = last.shape;
        if (onLastLayer) onLastLayer(last.dataSync() as Float32Array, seen, batch, dim);
        seen += batch;
      } finally {
        last.dispose();
      }
    } finally {
      tf.dispose(features.blockOutputs);
      tf.dispose(features.attnLogits);
    }
  }
  if (seen === 0) throw new PeftError('INVALID_CONFIG', 'the training data yielded no images');
  return { affinity: accumulator.result(), images: seen };
}

function requireDataSize(data: PrepareData): number {
  if (typeof data?.batches !== 'function') invalidOption('data', data, 'a PrepareData with batches()');
  return requirePositiveInt('data.size', data.size);
}

const round6 = (v: number) => Math.round(v * 1e6) / 1e6;

/** Mean feature of every cluster; an empty cluster (rare after the final assignment) keeps its centroid. */
function clusterMeans(
  rows: Float32Array,
  count: number,
  dim: number,
  labels: Int32Array,
  centroids: Float32Array,
  k: number,
): Float32Array {
  const sums = new Float64Array(k * dim);
  const sizes = new Int32Array(k);
  for (let i = 0; i < count; i++) {
    const c = labels[i] as number;
    sizes[c] = (sizes[c] as number) + 1;
    for (let j = 0; j < dim; j++)
      sums[c * dim + j] = (sums[c * dim + j] as number) + (rows[i * dim + j] as number);
  }
  const out = new Float32Array(k * dim);
  for (let c = 0; c < k; c++) {
    const size = sizes[c] as number;
    for (let j = 0; j < dim; j++) {
      out[c * dim + j] = size > 0 ? (sums[c * dim + j] as number) / size : (centroids[c * dim + j] as number);
    }
  }
  return out;
}

async function prepareHierarchy(
  resolved: ResolvedHierarchyOptions,
  ctx: PrepareContext,
  data: PrepareData,
): Promise<void> {
  const depth = ctx.config.depth;
  const size = requireDataSize(data);
  if (resolved.endLayer !== null && resolved.endLayer > depth) {
    invalidOption(
      'endLayer',
      resolved.endLayer,
      `an integer in [1, ${depth}] (the model has ${depth} blocks)`,
    );
  }
  // docs/ship-method.md §4.1: more than maxImages images → a random subset (without replacement) feeds k-means.
  const keep = new Uint8Array(size);
  const keepCount = Math.min(size, resolved.maxImages);
  if (size > resolved.maxImages) {
    for (const i of ctx.rng.split('subsample').permutation(size).slice(0, keepCount)) keep[i] = 1;
  } else {
    keep.fill(1);
  }
  // Host copy of the kept images' last-layer features, allocated once the feature width is known.
  const kept = { rows: new Float32Array(0), count: 0, dim: 0 };
  const { affinity, images } = await scanLayers(
    (x) => ctx.frozenFeatures(x),
    data,
    depth,
    resolved.token,
    (values, first, batch, d) => {
      if (first + batch > size) {
        throw new PeftError('SHAPE_MISMATCH', `data.batches() yielded more images than data.size (${size})`);
      }
      if (kept.dim === 0) {
        kept.dim = d;
        kept.rows = new Float32Array(keepCount * d);
      }
      for (let b = 0; b < batch; b++) {
        if (keep[first + b] !== 1) continue;
        kept.rows.set(values.subarray(b * d, (b + 1) * d), kept.count * d);
        kept.count++;
      }
    },
  );
  if (images !== size) {
    throw new PeftError('SHAPE_MISMATCH', `data.batches() yielded ${images} images but data.size is ${size}`);
  }
  const starts = groupLayers(affinity, {
    threshold: resolved.threshold,
    ...(resolved.endLayer !== null ? { endLayer: resolved.endLayer } : {}),
  });
  const k = resolved.prototypes;
  if (kept.count < k) {
    throw new PeftError(
      'INVALID_OPTION',
      `option "prototypes" (${k}) needs at least ${k} images for k-means; it gets ${kept.count} ` +
        `(the training split has ${size}, option "maxImages" is ${resolved.maxImages})`,
    );
  }
  const clusters = kmeans(kept.rows, kept.count, kept.dim, {
    k,
    rng: ctx.rng.split('kmeans'),
    nInit: resolved.kmeansInit,
  });
  const prototypes = clusterMeans(kept.rows, kept.count, kept.dim, clusters.labels, clusters.centroids, k);

  ctx.setArtifact(
    'affinity',
    affinity.map((row) => row.map(round6)),
  );
  ctx.setArtifact('starts', starts);
  ctx.setArtifact('threshold', resolved.threshold);
  ctx.setArtifact('endLayer', resolved.endLayer);
  ctx.setArtifact('token', resolved.token);
  ctx.setArtifact('numImages', images);
  ctx.setArtifact('prototypeImages', kept.count);
  ctx.setArtifact('prototypes', k);
  ctx.share(HIERARCHY_SHARED_KEYS.starts, starts);
  ctx.share(HIERARCHY_SHARED_KEYS.affinity, affinity);
  ctx.share(HIERARCHY_SHARED_KEYS.prototypes, tf.tensor2d(prototypes, [k, kept.dim]));
}

/**
 * SHIP's semantic hierarchy as a `prepare`-only plugin (tier 'pre', no hooks): it runs the frozen backbone once
 * over the training split, computes the layer affinity, groups layers (docs/ship-method.md §2) and clusters
 * last-block features into attribute prototypes (§4.1). Results are saved as artifacts and shared with later
 * plugins under `HIERARCHY_SHARED_KEYS`; the prototype tensor itself is saved by the plugin that buffers it.
 */
export const HIERARCHY_PLUGIN = definePlugin({
  type: 'ship-hierarchy',
  version: HIERARCHY_PLUGIN_VERSION,
  description:
    "SHIP's semantic hierarchy: layer affinity of the frozen backbone, greedy grouping into hierarchies and " +
    'k-means attribute prototypes, computed once before training',
  options: HIERARCHY_OPTIONS,
  create(resolved): PeftPlugin {
    return {
      ...pluginIdentity(
        { type: 'ship-hierarchy', version: HIERARCHY_PLUGIN_VERSION, ...resolved, tier: 'pre' },
        resolved,
      ),
      prepare: (ctx, data) => prepareHierarchy(resolved, ctx, data),
      restore(ctx: SetupContext, artifacts: JsonObject) {
        requireStarts('artifacts.starts', artifacts.starts, ctx.config.depth);
      },
      hooks: {},
    };
  },
});

/** The hierarchy plugin from options (parsed by `HIERARCHY_OPTIONS`: unknown keys and bad values are refused). */
export const hierarchyPlugin = pluginFunction(HIERARCHY_PLUGIN);

const ANALYSE_OPTIONS = HIERARCHY_OPTIONS.pick({ threshold: true, endLayer: true, token: true });

/** Options of `analyseLayers`: `threshold`, `endLayer` and `token` of the hierarchy plugin, same defaults. */
export type AnalyseLayersOptions = z.input<typeof ANALYSE_OPTIONS>;

/**
 * Layer affinity and hierarchy starts of a model's frozen backbone over `data`, without preparing or training
 * (for inspection and command-line tools).
 */
export async function analyseLayers(
  model: PeftModel,
  data: PrepareData,
  options: AnalyseLayersOptions = {},
): Promise<{
  /** The L×L layer affinity: cosine similarity of per-block features, averaged over images. */
  affinity: number[][];
  /** First block of every hierarchy, starting with 0. */
  starts: number[];
}> {
  const { threshold, endLayer, token } = parseOptions(ANALYSE_OPTIONS, options, 'analyseLayers');
  requireDataSize(data);
  const depth = model.config.depth;
  if (endLayer !== null && endLayer > depth) {
    invalidOption('endLayer', endLayer, `an integer in [1, ${depth}] (the model has ${depth} blocks)`);
  }
  const { affinity } = await scanLayers((x) => model.frozenFeatures(x), data, depth, token);
  return {
    affinity,
    starts: groupLayers(affinity, { threshold, ...(endLayer !== null ? { endLayer } : {}) }),
  };
}
