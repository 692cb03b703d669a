import { VisionTransformer, customVit } from '@peftjs/backbone';
import {
  HOOK_SPEC_VERSION,
  type PeftPlugin,
  type PrepareData,
  Rng,
  type Tensor,
  createPeftModel,
  tf,
} from '@peftjs/core';
import { describeBackends, expectNoLeakedTensors, testBackends } from '@peftjs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HIERARCHY_SHARED_KEYS, analyseLayers, hierarchyPlugin } from './plugin.js';

const SIZE = 16;
const DEPTH = 6;

/** `count` seeded random NHWC images in batches of `batchSize`; each batch tensor is disposed after use. */
function randomData(count: number, batchSize: number, seed: string): PrepareData {
  const pixels = new Rng(seed).fillUniform(new Float32Array(count * SIZE * SIZE * 3), -1, 1);
  const per = SIZE * SIZE * 3;
  return {
    size: count,
    async *batches() {
      for (let start = 0; start < count; start += batchSize) {
        const b = Math.min(batchSize, count - start);
        const images = tf.tensor4d(pixels.slice(start * per, (start + b) * per), [b, SIZE, SIZE, 3]);
        try {
          yield { images };
        } finally {
          images.dispose();
        }
      }
    },
  };
}

/** A later plugin that reads what the hierarchy shared (as SHIP's prompt plugin would). */
function consumer() {
  const seen: { starts?: unknown; affinity?: unknown; prototypes?: { shape: number[]; values: number[] } } =
    {};
  const plugin: PeftPlugin = {
    name: 'consumer',
    version: '0.0.1',
    specVersion: HOOK_SPEC_VERSION,
    prefix: 'consumer',
    async prepare(ctx) {
      seen.starts = ctx.shared(HIERARCHY_SHARED_KEYS.starts);
      seen.affinity = ctx.shared(HIERARCHY_SHARED_KEYS.affinity);
      const protos = ctx.shared(HIERARCHY_SHARED_KEYS.prototypes) as Tensor | undefined;
      if (protos) seen.prototypes = { shape: protos.shape, values: Array.from(protos.dataSync()) };
    },
    hooks: {},
  };
  return { plugin, seen };
}

function createVit(): VisionTransformer {
  return VisionTransformer.create(
    customVit({ dim: 32, depth: DEPTH, heads: 2, patchSize: 4, imageSize: SIZE, numClasses: 3 }),
    { seed: 0 },
  );
}

describe('hierarchyPlugin options', () => {
  it('resolves defaults into JSON options and validates eagerly', () => {
    const plugin = hierarchyPlugin({ threshold: 0.95 });
    expect(plugin).toMatchObject({
      name: 'ship-hierarchy',
      prefix: 'ship_hierarchy',
      version: '0.1.0',
      specVersion: HOOK_SPEC_VERSION,
      tier: 'pre',
      hooks: {},
    });
    expect(plugin.options).toEqual({
      threshold: 0.95,
      endLayer: null,
      token: 'cls',
      prototypes: 200,
      maxImages: 1000,
      kmeansInit: 1,
      name: 'ship-hierarchy',
      prefix: 'ship_hierarchy',
    });
    expect(JSON.parse(JSON.stringify(plugin.options))).toEqual(plugin.options);
    const label = 'option "ship-hierarchy.';
    expect(() => hierarchyPlugin({ threshold: Number.NaN })).toThrow(`${label}threshold"`);
    expect(() => hierarchyPlugin({ threshold: 0.9, prototypes: 0 })).toThrow(`${label}prototypes"`);
    expect(() => hierarchyPlugin({ threshold: 0.9, endLayer: -1 })).toThrow(`${label}endLayer"`);
    expect(() => hierarchyPlugin({ threshold: 0.9, token: 'patch' as 'cls' })).toThrow(`${label}token"`);
    expect(() => hierarchyPlugin({ threshold: 0.9, prefix: '' })).toThrow(`${label}prefix"`);
    expect(() => hierarchyPlugin({ threshold: 0.9, treshold: 1 } as never)).toThrow(
      'unknown option "ship-hierarchy.treshold" (did you mean "ship-hierarchy.threshold"?)',
    );
    // The default lives in the schema only: τ = 0.93 without a threshold.
    expect(hierarchyPlugin().options?.threshold).toBe(0.93);
  });
});

const affinityByBackend = new Map<string, number[][]>();

await describeBackends('hierarchyPlugin end to end', (backend) => {
  let vit: VisionTransformer;
  const data = randomData(12, 4, 'images');

  beforeAll(() => {
    vit = createVit();
  });
  afterAll(() => vit.dispose());

  it('records artifacts and shares starts, affinity and prototypes with later plugins', async () => {
    const probe = consumer();
    const model = createPeftModel(vit, [probe.plugin, hierarchyPlugin({ threshold: 0.9, prototypes: 4 })]);
    expect(model.plugins.map((p) => p.name)).toEqual(['ship-hierarchy', 'consumer']);
    await model.prepare(data);
    const saved = model.artifacts()['ship-hierarchy'];
    if (!saved) throw new Error('no artifacts');
    const affinity = saved.affinity as number[][];
    const starts = saved.starts as number[];
    expect(affinity).toHaveLength(DEPTH);
    for (const row of affinity) expect(row).toHaveLength(DEPTH);
    expect(affinity.map((row, i) => row[i])).toEqual(new Array(DEPTH).fill(1));
    expect(starts[0]).toBe(0);
    expect(starts.every((s, i) => i === 0 || s > (starts[i - 1] as number))).toBe(true);
    expect(saved).toMatchObject({
      threshold: 0.9,
      endLayer: null,
      token: 'cls',
      numImages: 12,
      prototypeImages: 12,
      prototypes: 4,
    });
    expect(probe.seen.starts).toEqual(starts);
    expect((probe.seen.affinity as number[][]).flat().map((v) => Math.round(v * 1e6) / 1e6)).toEqual(
      affinity.flat(),
    );
    expect(probe.seen.prototypes?.shape).toEqual([4, 32]);
    expect(probe.seen.prototypes?.values.every(Number.isFinite)).toBe(true);
    affinityByBackend.set(backend, affinity);
    model.dispose();
  });

  it('prototypes are the means of last-block CLS features per cluster', async () => {
    // With as many prototypes as images every cluster holds one image: the prototypes are exactly the features.
    const probe = consumer();
    const model = createPeftModel(vit, [hierarchyPlugin({ threshold: 0.9, prototypes: 12 }), probe.plugin]);
    await model.prepare(data);
    const features: number[][] = [];
    for await (const { images } of data.batches()) {
      const { blockOutputs, attnLogits } = model.frozenFeatures(images);
      const cls = tf.tidy(() =>
        tf.reshape(tf.slice(blockOutputs[DEPTH - 1] as Tensor, [0, 0, 0], [-1, 1, -1]), [-1, 32]),
      );
      features.push(...((await cls.array()) as number[][]));
      tf.dispose([...blockOutputs, ...attnLogits, cls]);
    }
    const protos = probe.seen.prototypes?.values ?? [];
    const rows = Array.from({ length: 12 }, (_, i) => protos.slice(i * 32, (i + 1) * 32).join(','));
    expect(new Set(rows)).toEqual(new Set(features.map((f) => Float32Array.from(f).join(','))));
    model.dispose();
  });

  it('leaks no tensors while preparing', async () => {
    const model = createPeftModel(vit, [
      hierarchyPlugin({ threshold: 0.9, prototypes: 4 }),
      consumer().plugin,
    ]);
    await expectNoLeakedTensors(() => model.prepare(data), { repeats: 2 });
    model.dispose();
  });

  it('gives a different affinity for mean-patch features, matching analyseLayers', async () => {
    const model = createPeftModel(vit, [
      hierarchyPlugin({ threshold: 0.9, prototypes: 4, token: 'mean-patch', maxImages: 8, endLayer: 3 }),
    ]);
    await model.prepare(data);
    const saved = model.artifacts()['ship-hierarchy'];
    if (!saved) throw new Error('no artifacts');
    const patch = saved.affinity as number[][];
    expect(saved).toMatchObject({ token: 'mean-patch', numImages: 12, prototypeImages: 8, endLayer: 3 });
    expect((saved.starts as number[]).every((s) => s < 3)).toBe(true);
    const cls = await analyseLayers(model, data, { threshold: 0.9 });
    const diff = Math.max(...cls.affinity.flat().map((v, i) => Math.abs(v - (patch.flat()[i] as number))));
    expect(diff).toBeGreaterThan(1e-3);
    const again = await analyseLayers(model, data, { threshold: 0.9, token: 'mean-patch', endLayer: 3 });
    expect(again.affinity.flat().map((v) => Math.round(v * 1e6) / 1e6)).toEqual(patch.flat());
    expect(again.starts).toEqual(saved.starts);
    await expect(analyseLayers(model, data, { threshold: 0.9, endLayer: 7 })).rejects.toThrow(
      /option "endLayer"/,
    );
    model.dispose();
  });

  it('names the prototypes option when the split is too small', async () => {
    const model = createPeftModel(vit, [hierarchyPlugin({ threshold: 0.9, prototypes: 20 })]);
    await expect(model.prepare(data)).rejects.toThrow(/option "prototypes" \(20\).*has 12/);
    const tooDeep = createPeftModel(vit, [hierarchyPlugin({ threshold: 0.9, prototypes: 2, endLayer: 7 })]);
    await expect(tooDeep.prepare(data)).rejects.toThrow(/option "endLayer"/);
    // More prototypes than maxImages lets through: named with both options.
    const capped = createPeftModel(vit, [hierarchyPlugin({ threshold: 0.9, prototypes: 6, maxImages: 5 })]);
    await expect(capped.prepare(data)).rejects.toThrow(/"prototypes" \(6\).*it gets 5.*"maxImages" is 5/);
    const lying: PrepareData = { size: 10, batches: data.batches };
    await expect(model.prepare(lying)).rejects.toThrow(/more images than data.size \(10\)/);
  });

  it('restores saved starts after validating them', () => {
    const model = createPeftModel(vit, [hierarchyPlugin({ threshold: 0.9 })]);
    model.restoreArtifacts({ 'ship-hierarchy': { starts: [0, 2, 5], threshold: 0.9 } });
    expect(model.artifacts()['ship-hierarchy']?.starts).toEqual([0, 2, 5]);
    const bad = (starts: unknown) => () =>
      model.restoreArtifacts({ 'ship-hierarchy': { starts: starts as number[] } });
    expect(bad([1, 2])).toThrow(/starts\[0\] must be 0/);
    expect(bad([0, 3, 3])).toThrow(/strictly increasing/);
    expect(bad([0, 6])).toThrow(/6-block model/);
    expect(bad('0,1')).toThrow(/non-empty array/);
  });
});

describe('hierarchyPlugin across backends', () => {
  it('computes the same affinity on every backend (1e-4)', async () => {
    const results = [...affinityByBackend.values()];
    expect(results.length).toBe((await testBackends()).length);
    const reference = (results[0] as number[][]).flat();
    for (const other of results.slice(1)) {
      const diff = Math.max(...other.flat().map((v, i) => Math.abs(v - (reference[i] as number))));
      expect(diff).toBeLessThan(1e-4);
    }
  });
});
