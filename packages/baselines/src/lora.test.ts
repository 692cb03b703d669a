import { VisionTransformer } from '@peftjs/backbone';
import { BACKBONE_OWNER, type PeftModel, Rng, type Tensor4D, createPeftModel, tf } from '@peftjs/core';
import { describeBackends, expectNoLeakedTensors, expectTensorClose, maxAbsDiff } from '@peftjs/core/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isLoraMerged, lora, mergeLora, unmergeLora } from './lora.js';
import { mnistDigitTensors, tinyMnistVit } from '@peftjs/test-fixtures';

const config = tinyMnistVit();

/** Gives every LoRA B a non-zero value (B starts at zero, which would make merging trivial). */
function randomiseB(model: PeftModel): void {
  const rng = new Rng('lora-b');
  for (const e of model.registry.list((e) => e.name.endsWith('.lora_B'))) {
    const t = tf.tensor(
      rng.split(e.name).fillNormal(new Float32Array(e.variable.size), 0, 0.2),
      e.variable.shape,
    );
    e.variable.assign(t);
    t.dispose();
  }
}

function snapshotBackbone(model: PeftModel): Map<string, Float32Array> {
  return new Map(
    model.registry
      .list((e) => e.owner === BACKBONE_OWNER)
      .map((e) => [e.name, Float32Array.from(e.variable.dataSync() as Float32Array)]),
  );
}

await describeBackends('LoRA merge and unmerge', () => {
  let vit: VisionTransformer;
  let x: Tensor4D;

  beforeAll(() => {
    vit = VisionTransformer.create(config, { seed: 3 });
    const data = mnistDigitTensors('t10k', 0, 4);
    x = data.images;
    data.labels.dispose();
  });
  afterAll(() => {
    x.dispose();
    vit.dispose();
  });

  it('merged logits equal unmerged ones, and unmerge restores the weights bit-exactly (every target)', async () => {
    const model = createPeftModel(
      vit,
      [lora({ rank: 4, alpha: 8, targets: ['q', 'k', 'v', 'proj', 'fc1', 'fc2'] })],
      { seed: 7 },
    );
    randomiseB(model);
    const original = snapshotBackbone(model);
    const unmerged = model.predict(x);
    expect(maxAbsDiff(unmerged, vit.predict(x)), 'the update is not a no-op').toBeGreaterThan(1e-3);

    // 4 blocks × {qkv, proj, fc1, fc2}.
    expect(mergeLora(model)).toBe(16);
    expect(isLoraMerged(model)).toBe(true);
    const merged = model.predict(x);
    expectTensorClose(merged, unmerged, { atol: 1e-5, label: 'merged vs unmerged logits' });
    const qkv = model.registry.get('blocks.0.attn.qkv.weight').dataSync();
    expect(maxAbsDiff(qkv, original.get('blocks.0.attn.qkv.weight') as Float32Array)).toBeGreaterThan(1e-4);
    // Training while merged would leave the LoRA tensors without gradients: refused.
    const labels = tf.zeros([4], 'int32') as tf.Tensor1D;
    expect(() => model.lossAndGradients(x, labels)).toThrow(/unmergeLora/);
    labels.dispose();
    expect(() => mergeLora(model)).toThrow(/already merged/);

    expect(unmergeLora(model)).toBe(16);
    expect(isLoraMerged(model)).toBe(false);
    for (const [name, values] of snapshotBackbone(model)) {
      expect(values, name).toEqual(original.get(name));
    }
    const restored = model.predict(x);
    expectTensorClose(restored, unmerged, { atol: 0, label: 'logits after unmerge' });
    tf.dispose([merged, restored]);
    expect(() => unmergeLora(model)).toThrow(/not merged/);

    // Merge copies are released by unmerge. (Not measured across the refused training call above: tfjs keeps the
    // tensors its gradient tape saved when a forward throws inside variableGrads.)
    await expectNoLeakedTensors(() => {
      mergeLora(model);
      unmergeLora(model);
    });
    unmerged.dispose();
    model.dispose();
  });

  it('the default (q, v) on selected blocks touches only those qkv weights', () => {
    const model = createPeftModel(vit, [lora({ rank: 2, alpha: 2, blocks: [1, 3] })], { seed: 7 });
    expect(model.registry.names().filter((n) => n.startsWith('lora.'))).toEqual([
      'lora.blocks.1.q.lora_A',
      'lora.blocks.1.q.lora_B',
      'lora.blocks.1.v.lora_A',
      'lora.blocks.1.v.lora_B',
      'lora.blocks.3.q.lora_A',
      'lora.blocks.3.q.lora_B',
      'lora.blocks.3.v.lora_A',
      'lora.blocks.3.v.lora_B',
    ]);
    randomiseB(model);
    const original = snapshotBackbone(model);
    const unmerged = model.predict(x);
    expect(mergeLora(model)).toBe(2);
    const changed = [...snapshotBackbone(model)]
      .filter(([name, values]) => maxAbsDiff(values, original.get(name) as Float32Array) > 0)
      .map(([name]) => name);
    expect(changed).toEqual(['blocks.1.attn.qkv.weight', 'blocks.3.attn.qkv.weight']);
    // The k columns (D..2D) of a merged qkv weight are untouched.
    const dim = config.dim;
    const merged = model.registry.get('blocks.1.attn.qkv.weight');
    const k = tf.slice(merged, [0, dim], [dim, dim]);
    const kBefore = tf.slice(
      tf.tensor(original.get('blocks.1.attn.qkv.weight') as Float32Array, [dim, 3 * dim]),
      [0, dim],
      [dim, dim],
    );
    expect(maxAbsDiff(k, kBefore)).toBe(0);
    const mergedLogits = model.predict(x);
    expectTensorClose(mergedLogits, unmerged, { atol: 1e-5 });
    unmergeLora(model);
    tf.dispose([k, kBefore, unmerged, mergedLogits]);
    model.dispose();
  });

  it('gradients reach only the selected blocks', () => {
    const model = createPeftModel(vit, [lora({ rank: 2, alpha: 2, targets: ['fc1'], blocks: [2] })], {
      seed: 7,
    });
    randomiseB(model);
    const { loss, grads } = model.lossAndGradients(x, tf.tensor1d([0, 1, 2, 3], 'int32'));
    expect(Object.keys(grads).sort()).toEqual([
      'head.bias',
      'head.weight',
      'lora.blocks.2.fc1.lora_A',
      'lora.blocks.2.fc1.lora_B',
    ]);
    tf.dispose([loss, ...Object.values(grads)]);
    model.dispose();
  });
});
