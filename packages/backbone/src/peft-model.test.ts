import { fileURLToPath } from 'node:url';
import {
  HOOK_SPEC_VERSION,
  type PeftPlugin,
  type PluginHooks,
  type Tensor3D,
  type Tensor4D,
  createPeftModel,
  tf,
} from '@peftjs/core';
import { readSafetensors } from '@peftjs/core/safetensors';
import { describeBackends, expectNoLeakedTensors, expectTensorClose } from '@peftjs/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadVit } from './load.js';
import type { VisionTransformer } from './vit.js';

const fixture = (file: string) =>
  fileURLToPath(new URL(`../test/fixtures/tiny-vit/${file}`, import.meta.url));

/**
 * A third-party-style plugin written only against the public API of @peftjs/core: it injects learned prompt
 * tokens after the embedding, observes every block's attention logits (CLS → prompt attention mass as a
 * saliency-like statistic) and adds an auxiliary loss.
 */
function promptProbe(options: { tokens: number; lossWeight: number }) {
  const observed: number[][] = [];
  const plugin: PeftPlugin = {
    name: 'prompt-probe',
    version: '0.0.1',
    specVersion: HOOK_SPEC_VERSION,
    prefix: 'probe',
    options: { tokens: options.tokens, lossWeight: options.lossWeight },
    setup(ctx) {
      const data = ctx.rng.fillUniform(new Float32Array(options.tokens * ctx.config.dim), -0.5, 0.5);
      ctx.addParameter('prompt', tf.tensor3d(data, [1, options.tokens, ctx.config.dim]));
    },
    hooks: {
      embed(ctx, stream) {
        return stream.withSegment('probe', ctx.plugin, ctx.param('prompt') as unknown as Tensor3D);
      },
      attnLogits(ctx, logits, info) {
        const seg = info.layout.segments.find((s) => s.key === 'probe');
        if (!seg) throw new Error('probe segment missing');
        // Head-averaged CLS-row logits on the prompt keys.
        const cls = tf.mean(tf.slice(logits, [0, 0, 0, seg.start], [-1, -1, 1, seg.length]));
        ctx.scratch.set(`cls-to-prompt-${info.block}`, cls);
        if (!ctx.training) observed.push([info.block, logits.shape[3]]);
      },
      auxLoss(ctx, { tokens }) {
        const prompt = tokens.segment('probe')?.tokens;
        if (!prompt) throw new Error('probe segment missing at the end');
        ctx.addLoss('probe_norm', tf.mean(tf.square(prompt)) as tf.Scalar, options.lossWeight);
      },
    },
  };
  return { plugin, observed };
}

await describeBackends('PEFT model over the ViT', () => {
  let vit: VisionTransformer;
  let images: Tensor4D;
  let labels: tf.Tensor1D;

  beforeAll(async () => {
    vit = (await loadVit(fixture('model.safetensors'))).model;
    const inputs = await readSafetensors(fixture('inputs.safetensors'));
    const img = inputs.getHost('images');
    images = tf.tensor4d(img.data, img.shape as [number, number, number, number]);
    labels = tf.tensor1d(Array.from(inputs.getFloat32('labels')), 'int32');
  });

  it('with no plugins computes exactly the bare backbone', () => {
    const model = createPeftModel(vit, []);
    const a = model.predict(images);
    const b = vit.predict(images);
    expectTensorClose(a, b, { atol: 0, label: 'logits' });
    tf.dispose([a, b]);
  });

  it('runs the patchEmbed, proj, fc1 and fc2 hooks on their layers: identity wrappers change nothing, a scale does', () => {
    const seen: string[] = [];
    /** Records the site, block and input width, then scales the layer's output by `scale`. */
    const recording =
      (site: string, scale: number): NonNullable<PluginHooks['proj']> =>
      (_c, x, next, block) => {
        seen.push(`${site}${block}:${x.shape[2]}`);
        return scale === 1 ? next(x) : (tf.mul(next(x), scale) as Tensor3D);
      };
    const probe = (scale: number): PeftPlugin => ({
      name: 'linear-sites',
      version: '0.0.1',
      specVersion: HOOK_SPEC_VERSION,
      prefix: 'sites',
      hooks: {
        patchEmbed: (_c, x, next) => {
          seen.push(`patchEmbed:${x.shape.slice(1)}`);
          return next(x);
        },
        proj: recording('proj', 1),
        fc1: recording('fc1', 1),
        fc2: recording('fc2', scale),
      },
    });
    const base = vit.predict(images);
    const identity = createPeftModel(vit, [probe(1)]);
    const same = identity.predict(images);
    expectTensorClose(same, base, { atol: 0, label: 'identity wrappers' });
    const { dim, mlpHidden, patchSize, channels } = vit.config;
    expect(seen).toEqual([
      `patchEmbed:${vit.geometry.numPatches},${patchSize * patchSize * channels}`,
      ...[0, 1, 2].flatMap((b) => [`proj${b}:${dim}`, `fc1${b}:${dim}`, `fc2${b}:${mlpHidden}`]),
    ]);
    const scaled = createPeftModel(vit, [probe(0.5)]);
    const changed = scaled.predict(images);
    expect(Math.max(...Array.from(tf.abs(tf.sub(changed, base)).dataSync()))).toBeGreaterThan(1e-4);
    tf.dispose([base, same, changed]);
    identity.dispose();
    scaled.dispose();
  });

  it('runs a public-API plugin that injects tokens, observes attention logits and adds an aux loss', () => {
    const { plugin, observed } = promptProbe({ tokens: 3, lossWeight: 0.25 });
    const model = createPeftModel(vit, [plugin], { seed: 7 });
    const base = vit.predict(images);
    const logits = model.predict(images);
    expect(Math.max(...Array.from(tf.abs(tf.sub(logits, base)).dataSync()))).toBeGreaterThan(1e-4);
    // 17 image tokens + 3 prompt tokens reach every block's attention.
    expect(observed).toEqual([
      [0, 20],
      [1, 20],
      [2, 20],
    ]);
    const { total, parts } = model.loss(images, labels);
    expect(Object.keys(parts)).toEqual(['ce', 'probe_norm']);
    const expectedTotal =
      (parts.ce as tf.Scalar).dataSync()[0]! + 0.25 * (parts.probe_norm as tf.Scalar).dataSync()[0]!;
    expect(total.dataSync()[0]).toBeCloseTo(expectedTotal, 5);
    tf.dispose([base, logits, total, ...Object.values(parts)]);
    model.dispose();
  });

  it('sends gradients to exactly the trainable tensors: plugin prompt and head, never the backbone', () => {
    const { plugin } = promptProbe({ tokens: 2, lossWeight: 1 });
    const model = createPeftModel(vit, [plugin], { seed: 1 });
    const { loss, grads, parts } = model.lossAndGradients(images, labels);
    expect(Object.keys(grads).sort()).toEqual(['head.bias', 'head.weight', 'probe.prompt']);
    for (const [name, g] of Object.entries(grads)) {
      expect(Math.max(...Array.from(tf.abs(g).dataSync())), `${name} gradient`).toBeGreaterThan(0);
    }
    expect(parts.ce).toBeGreaterThan(0);
    tf.dispose([loss, ...Object.values(grads)]);
    model.dispose();
  });

  it('reports parameters with the stated convention', () => {
    const { plugin } = promptProbe({ tokens: 4, lossWeight: 1 });
    const model = createPeftModel(vit, [plugin]);
    const report = model.parameterReport();
    const head = 5 * 32 + 5;
    expect(report.trainable).toBe(4 * 32 + head);
    expect(report.trainableWithoutHead).toBe(4 * 32);
    expect(report.head).toBe(head);
    expect(report.byOwner['prompt-probe']).toEqual({ total: 128, trainable: 128 });
    expect(report.total).toBe(vit.backboneParameterCount() + head + 128);
    expect(report.convention).toMatch(/trainableWithoutHead is the figure PEFT papers quote/);
    model.dispose();
  });

  it('gives every model its own head, so models sharing one backbone train independently', () => {
    const a = createPeftModel(vit, [], { numClasses: 3, seed: 1 });
    const b = createPeftModel(vit, [], { numClasses: 3, seed: 2 });
    expect(a.config.numClasses).toBe(3);
    expect(vit.config.numClasses).toBe(5);
    const before = Array.from(b.registry.get('head.weight').dataSync());
    a.registry.get('head.weight').assign(tf.zerosLike(a.registry.get('head.weight')));
    expect(Array.from(b.registry.get('head.weight').dataSync())).toEqual(before);
    expect(Array.from(vit.registry.get('head.bias').dataSync())).toHaveLength(5);
    a.dispose();
    b.dispose();
  });

  it('is frozen after build: adding a plugin is an error', () => {
    const model = createPeftModel(vit, []);
    expect(() => model.addPlugin(promptProbe({ tokens: 1, lossWeight: 1 }).plugin)).toThrow(
      /cannot add plugin "prompt-probe" after the model was built/,
    );
  });

  it('does not leak tensors across training steps', async () => {
    const { plugin } = promptProbe({ tokens: 2, lossWeight: 0.5 });
    const model = createPeftModel(vit, [plugin]);
    const optimizer = tf.train.sgd(0.01);
    await expectNoLeakedTensors(() => {
      const { loss, grads } = model.lossAndGradients(images, labels);
      model.applyGradients(optimizer, grads);
      tf.dispose([loss, ...Object.values(grads)]);
    });
    optimizer.dispose();
    model.dispose();
  });

  it('names the plugin and hook when a hook fails during forward', () => {
    const broken: PeftPlugin = {
      name: 'broken-adapter',
      version: '1.0.0',
      specVersion: HOOK_SPEC_VERSION,
      prefix: 'broken',
      hooks: { mlp: (_ctx, input) => tf.reshape(input, [-1]) as unknown as Tensor3D },
    };
    const model = createPeftModel(vit, [broken]);
    expect(() => model.predict(images)).toThrow(
      'plugin "broken-adapter" failed in hook mlp(0): the MLP output must be [4,17,32]; the hook returned [2176]',
    );
  });
});

describe('stochastic depth', () => {
  it('is seeded: same model seed and step give the same training logits, eval mode ignores it', async () => {
    const { model: vit } = await loadVit(fixture('model.safetensors'), { dropPathRate: 0.5 });
    const inputs = await readSafetensors(fixture('inputs.safetensors'));
    const img = inputs.getHost('images');
    const images = tf.tensor4d(img.data, img.shape as [number, number, number, number]);
    const a = createPeftModel(vit, [], { seed: 3 });
    const b = createPeftModel(vit, [], { seed: 3 });
    const la = a.forward(images, { training: true }).logits;
    const lb = b.forward(images, { training: true }).logits;
    expectTensorClose(la, lb, { atol: 0 });
    const lc = a.forward(images, { training: true }).logits;
    expect(Math.max(...Array.from(tf.abs(tf.sub(la, lc)).dataSync()))).toBeGreaterThan(0);
    expectTensorClose(a.predict(images), vit.predict(images), { atol: 0 });
  });
});
