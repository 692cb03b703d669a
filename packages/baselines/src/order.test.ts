import { VisionTransformer } from '@peftjs/backbone';
import { type PeftModel, type PeftPlugin, Rng, type Tensor4D, createPeftModel, tf } from '@peftjs/core';
import { describeBackends, maxAbsDiff } from '@peftjs/core/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { adapter } from './adapter.js';
import { lora } from './lora.js';
import { ssf } from './ssf.js';
import { mnistDigitTensors, tinyMnistVit } from '@peftjs/test-fixtures';
import { vpt } from './vpt.js';

/**
 * For every pair of plugins that share a hook site, the documented rule decides the result: list order within a
 * tier (the first wraps or transforms first), and tiers override list order. Each case builds the pair in both
 * orders, checks the orders differ (so the site really interacts), and that moving the second plugin to tier
 * "pre" reproduces the swapped order exactly.
 */
const config = tinyMnistVit({ depth: 2 });

/** Non-trivial values for every plugin tensor (zero/identity inits would hide the order). */
function perturb(model: PeftModel): void {
  const rng = new Rng('order');
  for (const e of model.registry.list((e) => e.owner !== 'backbone' && e.owner !== 'head')) {
    const centre = e.name.endsWith('.scale') ? 1 : 0;
    const t = tf.tensor(
      rng.split(e.name).fillNormal(new Float32Array(e.variable.size), centre, 0.3),
      e.variable.shape,
    );
    e.variable.assign(t);
    t.dispose();
  }
}

type Pair = [string, (tier?: 'pre') => PeftPlugin, (tier?: 'pre') => PeftPlugin];

const withTier = (tier?: 'pre') => (tier ? { tier } : {});
const pairs: Pair[] = [
  [
    'qkv: LoRA (q, v) and SSF',
    (t) => lora({ rank: 2, alpha: 2, targets: ['q', 'v'], ...withTier(t) }),
    (t) => ssf({ sites: ['qkv'], ...withTier(t) }),
  ],
  [
    'proj: LoRA and SSF on the output projection',
    (t) => lora({ rank: 2, alpha: 2, targets: ['proj'], ...withTier(t) }),
    (t) => ssf({ sites: ['proj'], ...withTier(t) }),
  ],
  [
    'attnOut: two Houlsby adapters',
    (t) => adapter({ kind: 'houlsby', bottleneck: 4, zeroInit: false, ...withTier(t) }),
    (t) =>
      adapter({
        kind: 'houlsby',
        bottleneck: 3,
        zeroInit: false,
        name: 'adapter-2',
        prefix: 'adapter_2',
        ...withTier(t),
      }),
  ],
  [
    'mlp: AdaptFormer and SSF on norm2',
    (t) => adapter({ kind: 'adaptformer', bottleneck: 4, zeroInit: false, ...withTier(t) }),
    (t) => ssf({ sites: ['norm2'], ...withTier(t) }),
  ],
  [
    'fc1: LoRA and SSF on the first MLP layer',
    (t) => lora({ rank: 2, alpha: 2, targets: ['fc1'], ...withTier(t) }),
    (t) => ssf({ sites: ['fc1'], ...withTier(t) }),
  ],
  [
    'fc2: LoRA and SSF on the second MLP layer',
    (t) => lora({ rank: 2, alpha: 2, targets: ['fc2'], ...withTier(t) }),
    (t) => ssf({ sites: ['fc2'], ...withTier(t) }),
  ],
  [
    'blockStart: VPT deep and VPT shallow segments',
    (t) => vpt({ mode: 'deep', tokens: 2, name: 'vpt-deep', prefix: 'vpt_deep', ...withTier(t) }),
    (t) => vpt({ mode: 'shallow', tokens: 3, name: 'vpt-shallow', prefix: 'vpt_shallow', ...withTier(t) }),
  ],
];

await describeBackends('plugin order on shared sites', () => {
  let vit: VisionTransformer;
  let images: Tensor4D;

  beforeAll(() => {
    vit = VisionTransformer.create(config, { seed: 2 });
    const data = mnistDigitTensors('t10k', 0, 4);
    images = data.images;
    data.labels.dispose();
  });
  afterAll(() => {
    images.dispose();
    vit.dispose();
  });

  const logits = (plugins: PeftPlugin[]) => {
    const model = createPeftModel(vit, plugins, { seed: 1 });
    perturb(model);
    const out = model.predict(images);
    model.dispose();
    return out;
  };

  for (const [site, first, second] of pairs) {
    it(site, () => {
      const ab = logits([first(), second()]);
      const ba = logits([second(), first()]);
      const tiered = logits([first(), second('pre')]);
      if (site.startsWith('blockStart')) {
        // Prompt segments from two plugins coexist; order only permutes rows, which attention cannot see.
        expect(maxAbsDiff(ab, ba)).toBeLessThan(1e-5);
      } else {
        expect(maxAbsDiff(ab, ba), 'the two orders differ').toBeGreaterThan(1e-4);
      }
      expect(maxAbsDiff(tiered, ba), 'tier "pre" runs the second plugin first').toBeLessThan(1e-5);
      tf.dispose([ab, ba, tiered]);
    });
  }
});
