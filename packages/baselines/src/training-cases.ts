import { VisionTransformer } from '@peftjs/backbone';
import { type PeftPlugin, type Tensor1D, type Tensor4D, createPeftModel, tf } from '@peftjs/core';
import { describeBackends, expectNoLeakedTensors } from '@peftjs/core/testing';
/**
 * The training check every baseline passes (shared by the `training-*.test.ts` files, which split the cases so the
 * two test workers share the work).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { adapter } from './adapter.js';
import { bitfit } from './bitfit.js';
import { fullFineTuning } from './full-fine-tuning.js';
import { linearProbe } from './linear-probe.js';
import { lora } from './lora.js';
import { ssf } from './ssf.js';
import { mnistDigitTensors, tinyMnistVit } from '@peftjs/test-fixtures';
import { mean, trainStep } from './test-support.js';
import { vpt } from './vpt.js';

const config = tinyMnistVit();
const BLOCKS = [0, 1, 2, 3];
const HEAD = ['head.bias', 'head.weight'];
const STEPS = 20;

const perBlock = (names: (block: number) => string[]) => BLOCKS.flatMap(names);
const adapterNames = (site: string) => (i: number) =>
  ['down.weight', 'down.bias', 'up.weight', 'up.bias'].map((n) => `adapter.blocks.${i}.${site}.${n}`);
const loraNames = (targets: string[]) => (i: number) =>
  targets.flatMap((t) => [`lora.blocks.${i}.${t}.lora_A`, `lora.blocks.${i}.${t}.lora_B`]);

export interface TrainingCase {
  readonly label: string;
  readonly plugins: () => PeftPlugin[];
  readonly learningRate: number;
  /** Names that must receive gradients (the head is added), from the backbone's own name list. */
  readonly expected: (backboneNames: string[]) => string[];
}

export const TRAINING_CASES: Record<string, TrainingCase> = Object.fromEntries(
  (
    [
      { label: 'linear probe', plugins: () => [linearProbe()], learningRate: 0.02, expected: () => [] },
      {
        label: 'full fine-tuning',
        plugins: () => [fullFineTuning()],
        learningRate: 0.003,
        expected: (names) => names,
      },
      {
        label: 'BitFit',
        plugins: () => [bitfit()],
        learningRate: 0.02,
        expected: (names) => names.filter((n) => n.endsWith('.bias')),
      },
      {
        label: 'VPT shallow',
        plugins: () => [vpt({ mode: 'shallow', tokens: 4 })],
        learningRate: 0.02,
        expected: () => ['vpt.prompt'],
      },
      {
        label: 'VPT deep with prompt dropout',
        plugins: () => [vpt({ mode: 'deep', tokens: 4, dropout: 0.1 })],
        learningRate: 0.02,
        expected: () => perBlock((i) => [`vpt.prompt.${i}`]),
      },
      {
        label: 'LoRA on q, v',
        plugins: () => [lora({ rank: 4, alpha: 8 })],
        learningRate: 0.02,
        expected: () => perBlock(loraNames(['q', 'v'])),
      },
      {
        label: 'LoRA on every target with dropout',
        plugins: () => [
          lora({ rank: 2, alpha: 4, dropout: 0.1, targets: ['q', 'k', 'v', 'proj', 'fc1', 'fc2'] }),
        ],
        learningRate: 0.02,
        expected: () => perBlock(loraNames(['q', 'k', 'v', 'proj', 'fc1', 'fc2'])),
      },
      {
        label: 'Houlsby adapter',
        plugins: () => [adapter({ kind: 'houlsby', bottleneck: 8 })],
        learningRate: 0.02,
        expected: () => perBlock((i) => [...adapterNames('attn')(i), ...adapterNames('mlp')(i)]),
      },
      {
        label: 'AdaptFormer',
        plugins: () => [adapter({ kind: 'adaptformer', bottleneck: 8, dropout: 0.1 })],
        learningRate: 0.02,
        expected: () => perBlock(adapterNames('mlp')),
      },
      {
        label: 'SSF',
        plugins: () => [ssf()],
        learningRate: 0.02,
        expected: () => [
          'ssf.patch_embed.scale',
          'ssf.patch_embed.shift',
          ...perBlock((i) =>
            ['norm1', 'qkv', 'proj', 'norm2', 'fc1', 'fc2'].flatMap((s) => [
              `ssf.blocks.${i}.${s}.scale`,
              `ssf.blocks.${i}.${s}.shift`,
            ]),
          ),
          'ssf.norm.scale',
          'ssf.norm.shift',
        ],
      },
      {
        label: 'VPT deep + Houlsby adapter together',
        plugins: () => [vpt({ mode: 'deep', tokens: 4 }), adapter({ kind: 'houlsby', bottleneck: 8 })],
        learningRate: 0.02,
        expected: () => [
          ...perBlock((i) => [`vpt.prompt.${i}`]),
          ...perBlock((i) => [...adapterNames('attn')(i), ...adapterNames('mlp')(i)]),
        ],
      },
      {
        label: 'LoRA + BitFit together',
        plugins: () => [lora({ rank: 4, alpha: 8 }), bitfit()],
        learningRate: 0.02,
        expected: (names) => [
          ...perBlock(loraNames(['q', 'v'])),
          ...names.filter((n) => n.endsWith('.bias')),
        ],
      },
    ] satisfies TrainingCase[]
  ).map((c) => [c.label, c]),
);

/** Picks cases by label, failing loudly on a typo. */
export function trainingCases(labels: string[]): TrainingCase[] {
  return labels.map((label) => {
    const c = TRAINING_CASES[label];
    if (!c) throw new Error(`no training case "${label}"`);
    return c;
  });
}

/** Trains each case for 20 Adam steps on every backend of the test matrix. */
export async function trainingSuite(title: string, cases: TrainingCase[]): Promise<void> {
  await describeBackends(title, () => {
    let images: Tensor4D;
    let labels: Tensor1D;

    beforeAll(() => {
      ({ images, labels } = mnistDigitTensors('t10k', 0, 12));
    });
    afterAll(() => {
      tf.dispose([images, labels]);
    });

    it.each(cases)('$label: loss falls, gradients reach exactly its tensors + head, no leaks', async (c) => {
      // A fresh backbone per case: full fine-tuning and BitFit update the shared backbone variables.
      const vit = VisionTransformer.create(config, { seed: 3 });
      const backboneNames = vit.registry.list((e) => e.owner === 'backbone').map((e) => e.name);
      const model = createPeftModel(vit, c.plugins(), { seed: 5 });
      const optimizer = tf.train.adam(c.learningRate);

      const losses = Array.from({ length: STEPS }, (_, i) => trainStep(model, optimizer, images, labels, i));
      // Steps 0–2 and 17–19 see the same three batches (batch = step mod 3), so the means are comparable.
      const first = mean(losses.slice(0, 3));
      const last = mean(losses.slice(STEPS - 3));
      expect(last, `losses ${losses.map((l) => l.toFixed(3)).join(' ')}`).toBeLessThan(first * 0.9);

      // All images at once: with four, every ReLU of a small bottleneck can be inactive and a gradient exactly 0.
      const { loss, grads } = model.lossAndGradients(images, labels);
      const expected = [...c.expected(backboneNames), ...HEAD].sort();
      expect(Object.keys(grads).sort()).toEqual(expected);
      for (const [name, g] of Object.entries(grads)) {
        const largest = Array.from(g.dataSync() as Float32Array).reduce(
          (m, v) => Math.max(m, Math.abs(v)),
          0,
        );
        expect(largest, `gradient of ${name}`).toBeGreaterThan(0);
      }
      tf.dispose([loss, ...Object.values(grads)]);

      let step = STEPS;
      await expectNoLeakedTensors(() => trainStep(model, optimizer, images, labels, step++), {
        warmup: 0,
        repeats: 2,
      });

      optimizer.dispose();
      model.dispose();
      vit.dispose();
    });
  });
}
