import { VisionTransformer, customVit, vitPreset } from '@peftjs/backbone';
import {
  HOOK_SPEC_VERSION,
  type PeftModel,
  type PeftPlugin,
  type Tensor,
  type Tensor4D,
  createPeftModel,
  tf,
} from '@peftjs/core';
import { describeBackends, expectNoLeakedTensors, expectTensorClose } from '@peftjs/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { SHIP_OPTIONS, type ShipOptions } from './options.js';
import { SHIP_METHOD, ship } from './ship.js';
import { GeometryOnlyBackbone, mnistDigits, tinyMnistVit, prepareDataOf } from '@peftjs/test-fixtures';

const CIFAR100_STARTS = [0, 2, 4, 6, 8, 11];

describe('SHIP options', () => {
  it('refuse typos at every level with a did-you-mean, instead of silently using the defaults', () => {
    expect(() => ship({ thresold: 0.5, promptLenght: 3 } as never)).toThrow(
      'unknown option "ship.thresold" (did you mean "ship.threshold"?); ' +
        'unknown option "ship.promptLenght" (did you mean "ship.promptLength"?)',
    );
    expect(() => ship({ prompts: { apLenght: 3 } } as never)).toThrow(
      'unknown option "ship.prompts.apLenght" (did you mean "ship.prompts.apLength"?)',
    );
    expect(() => ship({ pml: { wieght: 1 } } as never)).toThrow(
      'unknown option "ship.pml.wieght" (did you mean "ship.pml.weight"?)',
    );
    expect(() => ship({ decoupledAttention: { lamda: 0.2 } } as never)).toThrow(
      'unknown option "ship.decoupledAttention.lamda" (did you mean "ship.decoupledAttention.lambda"?)',
    );
    expect(() => ship({ hierarchy: { threshold: 0.9 } } as never)).toThrow(
      /unknown option "ship.hierarchy.threshold" \(did you mean "ship.threshold"\?\)|unknown option "ship.hierarchy.threshold"/,
    );
    expect(() => ship({ pml: true } as never)).toThrow(/option "ship.pml": .*expected false/);
  });

  it('take each default from the component that owns it (τ, K, prototypes, PML weight, λ)', () => {
    const [hierarchy, prompts, pml, attention] = ship();
    expect(hierarchy?.options).toMatchObject({ threshold: 0.93, prototypes: 200 });
    expect(prompts?.options).toMatchObject({ promptLength: 50, starts: null });
    expect(pml?.options).toMatchObject({ weight: 0.5 });
    expect(attention?.options).toMatchObject({ lambda: 0.1 });
    expect(ship({ decoupledAttention: false, pml: false }).map((p) => p.type)).toEqual([
      'ship-hierarchy',
      'ship-prompts',
    ]);
    expect(ship({ starts: [0, 2], prompts: { ap: false } }).map((p) => p.type)).not.toContain(
      'ship-hierarchy',
    );
  });
});

describe('SHIP data limits', () => {
  const limits = (options: ShipOptions, trainImages: number) =>
    SHIP_METHOD.dataLimits?.(SHIP_OPTIONS.parse(options), { trainImages, numClasses: 10 });

  it('bound the prototype bank by the images the hierarchy pass clusters', () => {
    expect(limits({}, 170)).toEqual([
      {
        path: 'hierarchy.prototypes',
        value: 200,
        max: 170,
        reason: 'k-means needs an image per prototype and the smallest training split has 170',
      },
    ]);
    expect(limits({ hierarchy: { maxImages: 100 } }, 800)?.[0]).toMatchObject({
      max: 100,
      reason: 'k-means clusters at most hierarchy.maxImages = 100 images',
    });
    // Fixed starts and no attribute prompts: no hierarchy pass, nothing to bound.
    expect(limits({ starts: [0, 6], prompts: { ap: false } }, 10)).toEqual([]);
  });
});

describe('SHIP parameter counts (docs/ship-method.md §8.4)', () => {
  it('match the cifar100 setting on ViT-B/16 geometry: 330,340 trainable with the head', () => {
    const backbone = new GeometryOnlyBackbone(vitPreset('vit_base_patch16_224', { numClasses: 100 }));
    const model = createPeftModel(backbone, ship({ starts: CIFAR100_STARTS, promptLength: 50 }));
    model.restoreArtifacts({ 'ship-prompts': { starts: CIFAR100_STARTS, prototypeCount: 200 } });
    const report = model.parameterReport();
    const sip = 6 * 50 * 768;
    const ssp = 10 * 768;
    const attributeBase = 2 * 10 * 768;
    const head = 768 * 100 + 100;
    expect(report.trainable).toBe(330_340);
    expect(report.trainable).toBe(sip + ssp + attributeBase + head);
    expect(report.trainableWithoutHead).toBe(253_440);
    expect(report.byOwner['ship-prompts']).toEqual({ total: sip + ssp + attributeBase, trainable: 253_440 });
    // The prototype bank is plugin state, not a parameter.
    expect(report.buffers).toBe(200 * 768);
  });

  it('follow M·K·D + 30·D for other hierarchies (caltech101: K = 200, M = 8)', () => {
    const starts = [0, 2, 3, 5, 7, 9, 10, 11];
    const backbone = new GeometryOnlyBackbone(vitPreset('vit_base_patch16_224', { numClasses: 102 }));
    const model = createPeftModel(backbone, ship({ starts, promptLength: 200 }));
    model.restoreArtifacts({ 'ship-prompts': { starts, prototypeCount: 200 } });
    expect(model.parameterReport().trainable).toBe(1_330_278);
  });
});

describe('SHIP token layout (docs/ship-method.md §6)', () => {
  it('gives 257 tokens in blocks 0–7 and 267 in blocks 8–11 in the cifar100 setting', () => {
    // 224² / patch 16 → 197 image tokens; width is irrelevant to sequence lengths, so keep it small.
    const vit = VisionTransformer.create(
      customVit({ imageSize: 224, patchSize: 16, dim: 32, depth: 12, heads: 2, numClasses: 100 }),
    );
    const model = createPeftModel(vit, ship({ starts: CIFAR100_STARTS, promptLength: 50 }));
    model.restoreArtifacts({ 'ship-prompts': { starts: CIFAR100_STARTS, prototypeCount: 8 } });
    const out = model.forwardIntermediates(tf.zeros([1, 224, 224, 3]) as Tensor4D);
    expect(out.blockOutputs.map((b) => b.shape[1])).toEqual([
      257, 257, 257, 257, 257, 257, 257, 257, 267, 267, 267, 267,
    ]);
    // Decoupled attention: image query rows only before the last block, all rows in the last.
    expect(out.attnLogits[0]?.shape).toEqual([1, 2, 197, 257]);
    expect(out.attnLogits[11]?.shape).toEqual([1, 2, 267, 267]);
    tf.dispose([out.logits, out.features, ...out.blockOutputs, ...out.attnLogits]);
    vit.dispose();
  });

  it('refuses attribute prompts longer than the image token count, naming the option', () => {
    // 32² / patch 16 → CLS + 4 patches: fewer than the 10 salient tokens the attribute prompts are built from.
    const vit = VisionTransformer.create(
      customVit({ imageSize: 32, patchSize: 16, dim: 32, depth: 12, heads: 2, numClasses: 10 }),
    );
    expect(() => createPeftModel(vit, ship({ starts: CIFAR100_STARTS, promptLength: 2 }))).toThrow(
      /option "apLength" is 10, but the backbone has only 5 image tokens.*apLength ≤ 5 or ap: false/,
    );
    const withoutAp = createPeftModel(
      vit,
      ship({ starts: CIFAR100_STARTS, promptLength: 2, prompts: { ap: false } }),
    );
    withoutAp.dispose();
    vit.dispose();
  });

  it('marks the semantic-shared prompt image-independent at every block, so it runs once at batch 1', () => {
    const vit = VisionTransformer.create(
      customVit({ imageSize: 64, patchSize: 16, dim: 32, depth: 12, heads: 2, numClasses: 10 }),
    );
    const seen: string[] = [];
    // Runs after SHIP's blockStart (tier 'post') and reads the stream the block will get.
    const recorder: PeftPlugin = {
      name: 'recorder',
      version: '0.0.0',
      specVersion: HOOK_SPEC_VERSION,
      prefix: 'recorder',
      tier: 'post',
      hooks: {
        blockStart(_ctx, stream, block) {
          const ssp = stream.segments.find((segment) => segment.key === 'ssp');
          seen.push(`${block}:${ssp?.independent}:${ssp?.tokens.shape[0]}`);
          return undefined;
        },
      },
    };
    const model = createPeftModel(vit, [...ship({ starts: CIFAR100_STARTS, promptLength: 2 }), recorder]);
    model.restoreArtifacts({ 'ship-prompts': { starts: CIFAR100_STARTS, prototypeCount: 8 } });
    tf.dispose(model.predict(tf.zeros([2, 64, 64, 3]) as Tensor4D));
    expect(seen).toEqual(Array.from({ length: 12 }, (_, block) => `${block}:true:1`));
    model.dispose();
    vit.dispose();
  });
});

const config = tinyMnistVit({ depth: 6 });
const STARTS = [0, 2, 4];
const NUM_IMAGE_TOKENS = 17;

await describeBackends('SHIP on a small real task (MNIST)', () => {
  let vit: VisionTransformer;
  let images: Tensor4D;
  let labels: tf.Tensor1D;

  async function shipModel(options: ShipOptions = {}): Promise<PeftModel> {
    const model = createPeftModel(
      vit,
      ship({ threshold: 0.9, promptLength: 4, hierarchy: { prototypes: 8 }, ...options }),
      { seed: 11 },
    );
    await model.prepare(prepareDataOf(images, 16));
    return model;
  }

  beforeAll(() => {
    vit = VisionTransformer.create(config, { seed: 3 });
    const sample = mnistDigits('t10k', 0, 48);
    images = tf.tensor4d(sample.images, [48, 28, 28, 1]);
    labels = tf.tensor1d(sample.labels, 'int32');
  });

  it('prepares a hierarchy and prototypes from the data and records them as artifacts', async () => {
    const model = await shipModel();
    const artifacts = model.artifacts();
    const hierarchy = artifacts['ship-hierarchy'];
    expect(hierarchy?.starts).toEqual(artifacts['ship-prompts']?.starts);
    expect((hierarchy?.starts as number[] | undefined)?.[0]).toBe(0);
    expect(hierarchy?.affinity).toHaveLength(6);
    expect(model.registry.get('ship.prototypes').shape).toEqual([8, 32]);
    model.dispose();
  });

  it('with λ = 0 in eval mode keeps every block’s image tokens equal to the frozen prompt-free ViT', async () => {
    const model = await shipModel({ starts: STARTS, decoupledAttention: { lambda: 0 } });
    const x = tf.slice(images, [0, 0, 0, 0], [4, -1, -1, -1]) as Tensor4D;
    const ours = model.forwardIntermediates(x);
    const frozen = vit.forwardIntermediates(x);
    ours.blockOutputs.forEach((block, l) => {
      const imageTokens = tf.slice(block, [0, 0, 0], [-1, NUM_IMAGE_TOKENS, -1]);
      expectTensorClose(imageTokens, frozen.blockOutputs[l] as Tensor, {
        atol: 1e-5,
        label: `block ${l} image tokens`,
      });
    });
    expectTensorClose(ours.logits, frozen.logits, { atol: 1e-5, label: 'logits = zero-shot ViT + head' });
    model.dispose();
  });

  it('changes the output with each switch: SIP re-insert, no SSP, no AP, no DA (joint softmax), no PML', async () => {
    const x = tf.slice(images, [0, 0, 0, 0], [8, -1, -1, -1]) as Tensor4D;
    const y = tf.slice(labels, [0], [8]);
    const reference = await shipModel({ starts: STARTS });
    const refLogits = reference.predict(x);
    const refLoss = reference.loss(x, y, { training: false }).total;
    const variants: [string, ShipOptions][] = [
      ['sip reinsert', { prompts: { sip: 'reinsert' } }],
      ['no ssp', { prompts: { ssp: false } }],
      ['no ap', { prompts: { ap: false } }],
      ['no decoupled attention', { decoupledAttention: false }],
    ];
    for (const [label, options] of variants) {
      const model = await shipModel({ starts: STARTS, ...options });
      const diff = tf.max(tf.abs(tf.sub(model.predict(x), refLogits))).dataSync()[0]!;
      expect(diff, label).toBeGreaterThan(1e-5);
      model.dispose();
    }
    // PML changes the training loss, not the logits.
    const withPml = reference.loss(x, y, { training: true });
    expect(Object.keys(withPml.parts)).toEqual(['ce', 'pml']);
    const noPml = await shipModel({ starts: STARTS, pml: false });
    const noPmlLoss = noPml.loss(x, y, { training: true });
    expect(Object.keys(noPmlLoss.parts)).toEqual(['ce']);
    expect(refLoss.dataSync()[0]).toBeGreaterThan(0);
    reference.dispose();
    noPml.dispose();
  });

  it('sends gradients to every trainable tensor (SIP of the first hierarchy included) and none to frozen ones', async () => {
    const model = await shipModel({ starts: STARTS });
    const x = tf.slice(images, [0, 0, 0, 0], [8, -1, -1, -1]) as Tensor4D;
    const y = tf.slice(labels, [0], [8]);
    const { loss, grads, parts } = model.lossAndGradients(x, y);
    const trainable = model.registry
      .trainableEntries()
      .map((e) => e.name)
      .sort();
    expect(trainable).toEqual([
      'head.bias',
      'head.weight',
      'ship.ap_base',
      'ship.sip.0',
      'ship.sip.1',
      'ship.sip.2',
      'ship.ssp',
    ]);
    expect(Object.keys(grads).sort()).toEqual(trainable);
    for (const [name, g] of Object.entries(grads)) {
      expect(tf.max(tf.abs(g)).dataSync()[0], `${name} gradient`).toBeGreaterThan(0);
    }
    expect(parts.pml).toBeGreaterThan(0);
    tf.dispose([loss, ...Object.values(grads)]);
    model.dispose();
  });

  it('computes image-independent prompts once per forward with the same gradients as per-image computation', async () => {
    const x = tf.slice(images, [0, 0, 0, 0], [8, -1, -1, -1]) as Tensor4D;
    const y = tf.slice(labels, [0], [8]);
    const isolated = await shipModel({ starts: STARTS });
    const perImage = await shipModel({ starts: STARTS, decoupledAttention: { isolate: false } });
    const a = isolated.lossAndGradients(x, y);
    const b = perImage.lossAndGradients(x, y);
    expect(a.loss.dataSync()[0]).toBeCloseTo(b.loss.dataSync()[0]!, 5);
    for (const name of Object.keys(b.grads)) {
      expectTensorClose(a.grads[name] as Tensor, b.grads[name] as Tensor, {
        atol: 1e-5,
        label: `grad ${name}`,
      });
    }
    tf.dispose([a.loss, b.loss, ...Object.values(a.grads), ...Object.values(b.grads)]);
    isolated.dispose();
    perImage.dispose();
  });

  it('inference prompt cache: cached and uncached logits agree; training clears it; no leaks', async () => {
    const x = tf.slice(images, [0, 0, 0, 0], [8, -1, -1, -1]) as Tensor4D;
    const model = await shipModel({ starts: STARTS });
    const uncached = model.predict(x);
    model.enablePromptCache();
    const first = model.predict(x);
    expect(model.promptCacheSize).toBe(config.depth - 1);
    const second = model.predict(tf.reverse(x, 0) as Tensor4D);
    expectTensorClose(first, uncached, { atol: 1e-5, label: 'cache fill' });
    expectTensorClose(second, tf.reverse(uncached, 0), { atol: 1e-5, label: 'cache hit, other images' });
    await expectNoLeakedTensors(() => model.predict(x).dispose());
    const { loss, grads } = model.lossAndGradients(x, tf.slice(labels, [0], [8]));
    expect(model.promptCacheSize).toBe(0);
    tf.dispose([loss, ...Object.values(grads), uncached, first, second]);
    model.dispose();
  });

  it('trains: the loss falls over 30 steps, without leaking tensors', async () => {
    const model = await shipModel();
    const optimizer = tf.train.adam(0.05);
    const losses: number[] = [];
    // Three fixed batches of 8, cycled: the cpu backend is slow, and the same batches make losses comparable.
    const step = (i: number) => {
      const start = (i % 3) * 8;
      const x = tf.slice(images, [start, 0, 0, 0], [8, -1, -1, -1]) as Tensor4D;
      const y = tf.slice(labels, [start], [8]);
      const { loss, grads } = model.lossAndGradients(x, y);
      losses.push(loss.dataSync()[0]!);
      model.applyGradients(optimizer, grads);
      tf.dispose([x, y, loss, ...Object.values(grads)]);
    };
    for (let i = 0; i < 27; i++) step(i);
    let i = 27;
    await expectNoLeakedTensors(() => step(i++), { warmup: 0, repeats: 3 });
    const first = losses.slice(0, 3).reduce((a, b) => a + b, 0) / 3;
    const last = losses.slice(-3).reduce((a, b) => a + b, 0) / 3;
    expect(last).toBeLessThan(first * 0.8);
    optimizer.dispose();
    model.dispose();
  }, 300_000);
});

describe('degenerate hierarchies', () => {
  it('skip attribute prompts at block 0 instead of crashing (M = 1 and M = 2)', async () => {
    const vit = VisionTransformer.create(config, { seed: 1 });
    const sample = mnistDigits('t10k', 0, 16);
    const images = tf.tensor4d(sample.images, [16, 28, 28, 1]);
    for (const starts of [[0], [0, 3]]) {
      const model = createPeftModel(vit, ship({ starts, promptLength: 2, hierarchy: { prototypes: 4 } }));
      await model.prepare(prepareDataOf(images, 8));
      const names = model.registry.list((e) => e.name === 'ship.ap_base').map((e) => e.variable.shape);
      expect(names, `starts ${starts}`).toEqual(starts.length === 1 ? [] : [[1, 10, 32]]);
      const logits = model.predict(tf.slice(images, [0, 0, 0, 0], [2, -1, -1, -1]) as Tensor4D);
      expect(logits.shape).toEqual([2, 10]);
      model.dispose();
    }
  });
});
