import { VisionTransformer } from '@peftjs/backbone';
import {
  HOOK_SPEC_VERSION,
  type PeftModel,
  type PeftPlugin,
  Rng,
  type Tensor,
  type Tensor4D,
  createPeftModel,
  tf,
} from '@peftjs/core';
import { describeBackends, expectNoLeakedTensors, expectTensorClose, maxAbsDiff } from '@peftjs/core/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { adapter } from './adapter.js';
import { bitfit } from './bitfit.js';
import { fullFineTuning } from './full-fine-tuning.js';
import { linearProbe } from './linear-probe.js';
import { lora, mergeLora, unmergeLora } from './lora.js';
import { ssf } from './ssf.js';
import { mnistDigitTensors, tinyMnistVit } from '@peftjs/test-fixtures';
import { vpt } from './vpt.js';

const config = tinyMnistVit();
const IMAGE_TOKENS = 17; // CLS + (28/7)² patches
const PROMPTS = 3;

/** Overwrites every tensor whose name starts with one of `prefixes` with values fixed by the tensor's name. */
function perturb(model: PeftModel, prefixes: string[]): void {
  const rng = new Rng('perturb');
  for (const e of model.registry.list((e) => prefixes.some((p) => e.name.startsWith(p)))) {
    const centre = e.name.endsWith('.scale') ? 1 : 0;
    const values = rng.split(e.name).fillNormal(new Float32Array(e.variable.size), centre, 0.3);
    const t = tf.tensor(values, e.variable.shape);
    e.variable.assign(t);
    t.dispose();
  }
}

interface QkvRecord {
  input?: Float32Array;
  output?: Float32Array;
  shape?: number[];
}

/** A test plugin that records block 0's qkv input and output (it is listed last, so it wraps everything). */
function qkvProbe(record: QkvRecord): PeftPlugin {
  return {
    name: 'probe',
    version: '0.0.0',
    specVersion: HOOK_SPEC_VERSION,
    prefix: 'probe',
    hooks: {
      qkv(_ctx, input, next, block) {
        const out = next(input);
        if (block === 0) {
          record.input = Float32Array.from(input.dataSync());
          record.output = Float32Array.from(out.dataSync());
          record.shape = input.shape;
        }
        return out;
      },
    },
  };
}

interface LayoutRecord {
  totals: number[];
  prompts: (Float32Array | null)[];
}

/** Records what each block sees: the sequence length and the VPT segment right after VPT's blockStart. */
function layoutObserver(record: LayoutRecord): PeftPlugin {
  return {
    name: 'observer',
    version: '0.0.0',
    specVersion: HOOK_SPEC_VERSION,
    prefix: 'observer',
    hooks: {
      blockStart(_ctx, stream, block) {
        const segment = stream.segment('vpt');
        record.prompts[block] = segment ? Float32Array.from(segment.tokens.dataSync()) : null;
        return undefined;
      },
      attnLogits(_ctx, _logits, info) {
        record.totals[info.block] = info.layout.total;
      },
    },
  };
}

await describeBackends('baseline behaviour', () => {
  let vit: VisionTransformer;
  let images: Tensor4D;
  let x: Tensor4D;
  let frozenLogits: Tensor;

  beforeAll(() => {
    vit = VisionTransformer.create(config, { seed: 3 });
    const data = mnistDigitTensors('t10k', 0, 4);
    images = data.images;
    data.labels.dispose();
    x = images;
    frozenLogits = vit.predict(x);
  });
  afterAll(() => {
    tf.dispose([images, frozenLogits]);
    vit.dispose();
  });

  const identityCases: [string, () => PeftPlugin[]][] = [
    ['zero-init Houlsby adapter', () => [adapter({ kind: 'houlsby', bottleneck: 4 })]],
    ['zero-init AdaptFormer', () => [adapter({ kind: 'adaptformer', bottleneck: 4 })]],
    ['identity-init SSF (every site)', () => [ssf()]],
    [
      'LoRA (B = 0) on every target',
      () => [lora({ rank: 2, alpha: 2, targets: ['q', 'k', 'v', 'proj', 'fc1', 'fc2'] })],
    ],
    ['linear probe, full fine-tuning, BitFit', () => [linearProbe(), fullFineTuning(), bitfit()]],
  ];

  it.each(identityCases)('%s leaves the logits of the frozen model at step 0', (_label, plugins) => {
    const model = createPeftModel(vit, plugins(), { seed: 1 });
    const logits = model.predict(x);
    expectTensorClose(logits, frozenLogits, { atol: 1e-6, label: 'logits' });
    logits.dispose();
    model.dispose();
  });

  it('non-identity inits do change the logits (the identity check has teeth)', () => {
    for (const plugin of [
      ssf({ init: 'normal' }),
      adapter({ kind: 'houlsby', bottleneck: 4, zeroInit: false }),
    ]) {
      const model = createPeftModel(vit, [plugin], { seed: 1 });
      const logits = model.predict(x);
      expect(maxAbsDiff(logits, frozenLogits), plugin.name).toBeGreaterThan(1e-5);
      logits.dispose();
      model.dispose();
    }
  });

  it('LoRA on proj, fc1 and fc2 composes with both adapters in either list order (it wraps the layers only)', () => {
    const logitsOf = (loraFirst: boolean) => {
      const plugins = [
        lora({ rank: 2, alpha: 2, targets: ['proj', 'fc1', 'fc2'] }),
        adapter({ kind: 'houlsby', bottleneck: 4, zeroInit: false }),
        adapter({ kind: 'adaptformer', bottleneck: 4, zeroInit: false, name: 'af', prefix: 'af' }),
      ];
      const model = createPeftModel(vit, loraFirst ? plugins : plugins.reverse(), { seed: 1 });
      perturb(model, ['lora.']);
      const logits = model.predict(x);
      model.dispose();
      return logits;
    };
    const adaptersOnly = (() => {
      const model = createPeftModel(
        vit,
        [
          adapter({ kind: 'houlsby', bottleneck: 4, zeroInit: false }),
          adapter({ kind: 'adaptformer', bottleneck: 4, zeroInit: false, name: 'af', prefix: 'af' }),
        ],
        { seed: 1 },
      );
      const logits = model.predict(x);
      model.dispose();
      return logits;
    })();
    const first = logitsOf(true);
    const last = logitsOf(false);
    // The adapters wrap whole branches; LoRA's updates sit inside the layers whatever the list order.
    expectTensorClose(last, first, { atol: 1e-5, label: 'LoRA listed last vs first' });
    // Both the updates and the adapters are live: the result is neither the adapters alone nor the frozen model.
    expect(maxAbsDiff(first, adaptersOnly)).toBeGreaterThan(1e-4);
    expect(maxAbsDiff(adaptersOnly, frozenLogits)).toBeGreaterThan(1e-4);
    tf.dispose([first, last, adaptersOnly]);
  });

  it('model.dispose() frees every plugin tensor and forwards leak nothing', async () => {
    const before = tf.memory().numTensors;
    const model = createPeftModel(vit, [
      vpt({ mode: 'deep', tokens: PROMPTS, dropout: 0.2 }),
      lora({ rank: 2, alpha: 2, dropout: 0.1, targets: ['q', 'v', 'proj', 'fc2'] }),
      adapter({ kind: 'adaptformer', bottleneck: 4, dropout: 0.1 }),
      ssf({ sites: ['qkv', 'proj', 'fc1', 'norm'] }),
    ]);
    await expectNoLeakedTensors(() => {
      tf.dispose(model.predict(x));
      const out = model.forward(x, { training: true });
      tf.dispose([out.logits, ...out.losses.map((l) => l.value)]);
    });
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('VPT deep replaces the prompts at every block: the sequence stays N_img + n', () => {
    const record: LayoutRecord = { totals: [], prompts: [] };
    const model = createPeftModel(vit, [vpt({ mode: 'deep', tokens: PROMPTS }), layoutObserver(record)]);
    const out = model.forwardIntermediates(x);
    expect(record.totals).toEqual([0, 1, 2, 3].map(() => IMAGE_TOKENS + PROMPTS));
    expect(out.blockOutputs.map((b) => b.shape)).toEqual(
      [0, 1, 2, 3].map(() => [4, IMAGE_TOKENS + PROMPTS, config.dim]),
    );
    // What block i reads is exactly its own parameter, not block i−1's prompt outputs.
    record.prompts.forEach((seen, i) => {
      expect(seen, `block ${i}`).toEqual(model.registry.get(`vpt.prompt.${i}`).dataSync());
    });
    tf.dispose([out.logits, out.features, ...out.blockOutputs, ...out.attnLogits]);
    model.dispose();
  });

  it('VPT shallow inserts once and carries the prompt outputs', () => {
    const record: LayoutRecord = { totals: [], prompts: [] };
    const model = createPeftModel(vit, [vpt({ mode: 'shallow', tokens: PROMPTS }), layoutObserver(record)]);
    tf.dispose(model.predict(x));
    expect(record.totals).toEqual([0, 1, 2, 3].map(() => IMAGE_TOKENS + PROMPTS));
    const prompt = model.registry.get('vpt.prompt');
    expect(record.prompts[0]).toEqual(prompt.dataSync());
    // Later blocks read block outputs (one per image), not the parameter.
    expect(record.prompts[1]?.length).toBe(4 * PROMPTS * config.dim);
    model.dispose();
  });

  it('VPT prompt dropout acts in training only and is seeded', () => {
    const model = createPeftModel(vit, [vpt({ mode: 'deep', tokens: PROMPTS, dropout: 0.5 })], { seed: 2 });
    const evalA = model.predict(x);
    const evalB = model.predict(x);
    expectTensorClose(evalA, evalB, { atol: 0, label: 'eval is deterministic' });
    const trainA = model.forward(x, { training: true }).logits;
    expect(maxAbsDiff(trainA, evalA)).toBeGreaterThan(1e-5);
    model.forwardCounter = 0;
    const trainB = model.forward(x, { training: true }).logits;
    expectTensorClose(trainB, trainA, { atol: 0, label: 'same forward counter, same masks' });
    tf.dispose([evalA, evalB, trainA, trainB]);
    model.dispose();
  });

  it('LoRA + SSF on the qkv site: list order decides who wraps whom, and tiers override list order', () => {
    const build = (order: 'lora-first' | 'ssf-first' | 'ssf-pre-tier') => {
      const record: QkvRecord = {};
      const l = lora({ rank: 2, alpha: 4 });
      const s = order === 'ssf-pre-tier' ? ssf({ sites: ['qkv'], tier: 'pre' }) : ssf({ sites: ['qkv'] });
      const plugins = order === 'ssf-first' ? [s, l] : [l, s];
      const model = createPeftModel(vit, [...plugins, qkvProbe(record)], { seed: 4 });
      perturb(model, ['lora.', 'ssf.']);
      const logits = model.predict(x);
      return { model, record, logits };
    };
    const loraFirst = build('lora-first');
    const ssfFirst = build('ssf-first');
    const ssfPre = build('ssf-pre-tier');

    // Hand computation at block 0 from the tensors themselves.
    const reg = loraFirst.model.registry;
    const shape = loraFirst.record.shape as [number, number, number];
    const expected = tf.tidy(() => {
      const input = tf.tensor(loraFirst.record.input as Float32Array, shape).reshape([-1, config.dim]);
      const base = tf.add(
        tf.matMul(input, reg.get('blocks.0.attn.qkv.weight')),
        reg.get('blocks.0.attn.qkv.bias'),
      );
      const scale = 4 / 2; // alpha / rank
      const update = (t: string) =>
        tf.mul(
          tf.matMul(
            tf.matMul(input, reg.get(`lora.blocks.0.${t}.lora_A`)),
            reg.get(`lora.blocks.0.${t}.lora_B`),
          ),
          scale,
        );
      const delta = tf.concat([update('q'), tf.zerosLike(update('q')), update('v')], 1);
      const gamma = reg.get('ssf.blocks.0.qkv.scale');
      const beta = reg.get('ssf.blocks.0.qkv.shift');
      // LoRA listed first wraps the base, SSF wraps LoRA: γ ⊙ (xW + b + ΔW x) + β.
      const ssfOutside = tf.add(tf.mul(tf.add(base, delta), gamma), beta);
      // SSF listed first: (γ ⊙ (xW + b) + β) + ΔW x.
      const loraOutside = tf.add(tf.add(tf.mul(base, gamma), beta), delta);
      return { ssfOutside, loraOutside };
    });
    expectTensorClose(loraFirst.record.output as Float32Array, expected.ssfOutside.dataSync(), {
      atol: 1e-4,
      label: '[lora, ssf]',
    });
    expectTensorClose(ssfFirst.record.output as Float32Array, expected.loraOutside.dataSync(), {
      atol: 1e-4,
      label: '[ssf, lora]',
    });
    expectTensorClose(ssfPre.record.output as Float32Array, expected.loraOutside.dataSync(), {
      atol: 1e-4,
      label: "[lora, ssf with tier 'pre']",
    });
    expect(maxAbsDiff(expected.ssfOutside, expected.loraOutside)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(loraFirst.logits, ssfFirst.logits)).toBeGreaterThan(1e-4);

    // With LoRA innermost its update is a weight update, so merging it cannot change the logits …
    // (the models share one backbone: unmerge before merging the next).
    mergeLora(loraFirst.model);
    const merged = loraFirst.model.predict(x);
    unmergeLora(loraFirst.model);
    expectTensorClose(merged, loraFirst.logits, { atol: 1e-5, label: 'merge under SSF' });
    // … while outside SSF it is not, and merging changes them.
    mergeLora(ssfFirst.model);
    const mergedOutside = ssfFirst.model.predict(x);
    unmergeLora(ssfFirst.model);
    expect(maxAbsDiff(mergedOutside, ssfFirst.logits)).toBeGreaterThan(1e-4);

    tf.dispose([merged, mergedOutside, expected.ssfOutside, expected.loraOutside]);
    for (const m of [loraFirst, ssfFirst, ssfPre]) {
      m.logits.dispose();
      m.model.dispose();
    }
  });
});
