import { VisionTransformer, vitPreset } from '@peftjs/backbone';
import { type PeftPlugin, PeftError, createPeftModel } from '@peftjs/core';
import { describe, expect, it } from 'vitest';
import { type AdapterOptions, adapter } from './adapter.js';
import { bitfit } from './bitfit.js';
import { fullFineTuning } from './full-fine-tuning.js';
import { linearProbe } from './linear-probe.js';
import { type LoraOptions, lora, mergeLora } from './lora.js';
import { type SsfOptions, ssf } from './ssf.js';
import { GeometryOnlyBackbone, tinyMnistVit } from '@peftjs/test-fixtures';
import { type VptOptions, vpt, vptInitBound } from './vpt.js';

const VIT_B = vitPreset('vit_base_patch16_224', { numClasses: 100 });
const small = tinyMnistVit();

function reportOn(plugins: PeftPlugin[]) {
  const model = createPeftModel(new GeometryOnlyBackbone(VIT_B), plugins);
  const report = model.parameterReport();
  model.dispose();
  return report;
}

/** Runs `fn` and returns the PeftError it throws. */
function peftError(fn: () => unknown): PeftError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PeftError);
    return error as PeftError;
  }
  throw new Error('expected a PeftError');
}

describe('parameter counts on ViT-B/16 geometry (D = 768, 12 blocks, MLP 3072)', () => {
  const D = 768;
  const L = 12;
  const head = D * 100 + 100;

  it('VPT-deep, 50 tokens: one 50 × 768 prompt per block = 460,800', () => {
    const report = reportOn([vpt({ mode: 'deep', tokens: 50 })]);
    expect(report.trainableWithoutHead).toBe(L * 50 * D);
    expect(report.trainableWithoutHead).toBe(460_800);
    expect(report.trainable).toBe(460_800 + head);
    expect(report.byOwner.vpt).toEqual({ total: 460_800, trainable: 460_800 });
  });

  it('VPT-shallow, 50 tokens: a single 50 × 768 prompt = 38,400', () => {
    expect(reportOn([vpt({ mode: 'shallow', tokens: 50 })]).trainableWithoutHead).toBe(50 * D);
  });

  it('LoRA r = 8 on q and v: 12 blocks × 2 targets × (A 768×8 + B 8×768) = 294,912', () => {
    const report = reportOn([lora({ rank: 8, alpha: 16 })]);
    expect(report.trainableWithoutHead).toBe(L * 2 * (D * 8 + 8 * D));
    expect(report.trainableWithoutHead).toBe(294_912);
  });

  it('LoRA r = 4 on q, k, v and proj: four 768 → 768 pairs per block', () => {
    const report = reportOn([lora({ rank: 4, alpha: 4, targets: ['q', 'k', 'v', 'proj'] })]);
    expect(report.trainableWithoutHead).toBe(L * 4 * (D * 4 + 4 * D));
  });

  it('Houlsby m = 8: two adapters per block, each 768×8 + 8 + 8×768 + 768 = 313,536', () => {
    const perAdapter = D * 8 + 8 + 8 * D + D;
    const report = reportOn([adapter({ kind: 'houlsby', bottleneck: 8 })]);
    expect(report.trainableWithoutHead).toBe(L * 2 * perAdapter);
    expect(report.trainableWithoutHead).toBe(313_536);
  });

  it('AdaptFormer m = 64: one adapter per block = 1,189,632', () => {
    const report = reportOn([adapter({ kind: 'adaptformer', bottleneck: 64 })]);
    expect(report.trainableWithoutHead).toBe(L * (D * 64 + 64 + 64 * D + D));
    expect(report.trainableWithoutHead).toBe(1_189_632);
  });

  it('SSF on a subset of its sites: γ and β per channel of each', () => {
    const report = reportOn([ssf({ sites: ['norm1', 'qkv', 'proj', 'norm2', 'fc2', 'norm'] })]);
    // Per block: norm1 768 + qkv 2304 + proj 768 + norm2 768 + fc2 768 channels; plus the final norm.
    expect(report.trainableWithoutHead).toBe(2 * (L * (D + 3 * D + D + D + D) + D));
  });

  it('linear probe: the head only', () => {
    const report = reportOn([linearProbe()]);
    expect(report.trainableWithoutHead).toBe(0);
    expect(report.trainable).toBe(head);
  });
});

describe('parameter counts on a real small ViT (D = 32, 4 blocks, MLP 128)', () => {
  const D = 32;
  const H = 128;

  it('BitFit trains the *.bias tensors (linear biases and LayerNorm β) but no LayerNorm γ', () => {
    const vit = VisionTransformer.create(small);
    const model = createPeftModel(vit, [bitfit()]);
    // patch bias + per block (norm1 β, qkv 3D, proj, norm2 β, fc1 H, fc2) + final norm β
    const expected = D + 4 * (D + 3 * D + D + D + H + D) + D;
    expect(model.parameterReport().trainableWithoutHead).toBe(expected);
    expect(model.registry.entry('blocks.0.norm1.weight').trainable).toBe(false);
    expect(model.registry.entry('blocks.0.norm1.bias').trainable).toBe(true);
    model.dispose();
    vit.dispose();
  });

  it('SSF on every site', () => {
    const vit = VisionTransformer.create(small);
    const model = createPeftModel(vit, [ssf()]);
    // Per block: norm1, qkv, proj, norm2, fc1, fc2; once: patch_embed and the final norm.
    expect(model.parameterReport().trainableWithoutHead).toBe(2 * (4 * (D + 3 * D + D + D + H + D) + D + D));
    model.dispose();
    vit.dispose();
  });

  it('full fine-tuning trains every backbone tensor and keeps their decay flags', () => {
    const vit = VisionTransformer.create(small);
    const model = createPeftModel(vit, [fullFineTuning()]);
    const report = model.parameterReport();
    expect(report.trainable).toBe(report.total);
    expect(report.trainableWithoutHead).toBe(vit.backboneParameterCount());
    expect(model.registry.entry('blocks.0.attn.qkv.weight').decay).toBe(true);
    expect(model.registry.entry('blocks.0.attn.qkv.bias').decay).toBe(false);
    expect(model.registry.entry('blocks.0.norm1.weight').decay).toBe(false);
    expect(model.registry.entry('pos_embed').decay).toBe(false);
    model.dispose();
    vit.dispose();
  });

  it('VPT prompts start inside VPT’s Xavier bound √(6/(3·p² + D))', () => {
    const vit = VisionTransformer.create(small);
    const model = createPeftModel(vit, [vpt({ mode: 'shallow', tokens: 20 })]);
    const bound = vptInitBound(7, D);
    expect(bound).toBeCloseTo(Math.sqrt(6 / (3 * 49 + 32)), 12);
    const values = model.registry.get('vpt.prompt').dataSync();
    expect(Math.max(...values.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...values.map(Math.abs))).toBeGreaterThan(bound * 0.8);
    model.dispose();
    vit.dispose();
  });
});

describe('options', () => {
  it('are JSON and rebuild the same plugin', () => {
    const plugins: [PeftPlugin, (o: never) => PeftPlugin][] = [
      [vpt({ mode: 'deep', tokens: 10, dropout: 0.1 }), vpt],
      [lora({ rank: 4, alpha: 8, targets: ['q', 'fc1'], blocks: [2, 0] }), lora],
      [lora({ rank: 4, alpha: 8, tier: 'pre' }), lora],
      [adapter({ kind: 'adaptformer', bottleneck: 8 }), adapter],
      [adapter({ kind: 'houlsby', bottleneck: 8, zeroInit: false }), adapter],
      [ssf({ sites: ['qkv'], init: 'normal' }), ssf],
      [bitfit(), bitfit],
      [linearProbe(), linearProbe],
      [fullFineTuning({ name: 'ft' }), fullFineTuning],
    ];
    for (const [plugin, factory] of plugins) {
      const json = JSON.parse(JSON.stringify(plugin.options));
      expect(json).toEqual(plugin.options);
      const rebuilt = factory(json as never);
      expect(rebuilt.options).toEqual(plugin.options);
      expect([rebuilt.name, rebuilt.prefix, rebuilt.tier]).toEqual([plugin.name, plugin.prefix, plugin.tier]);
    }
    expect(lora({ rank: 4, alpha: 8, blocks: [2, 0] }).options?.blocks).toEqual([0, 2]);
  });

  it('are validated eagerly, naming the option', () => {
    const bad: [() => unknown, RegExp][] = [
      [() => vpt({ mode: 'medium' } as unknown as VptOptions), /"vpt.mode"/],
      [() => vpt({ mode: 'deep', tokens: 0 }), /"vpt.tokens"/],
      [() => vpt({ mode: 'deep', tokens: 5, dropout: 1 }), /"vpt.dropout"/],
      [() => lora({ rank: 0, alpha: 1 }), /"lora.rank"/],
      [() => lora({ rank: 2, alpha: -1 }), /"lora.alpha"/],
      [() => lora({ rank: 2, alpha: 1, targets: [] }), /"lora.targets".*>=1 items/],
      [() => lora({ rank: 2, alpha: 1, targets: ['q', 'x'] } as unknown as LoraOptions), /"lora.targets.1"/],
      [() => lora({ rank: 2, alpha: 1, targets: ['q', 'q'] }), /"lora.targets".*twice/],
      [() => lora({ rank: 2, alpha: 1, blocks: [] }), /"lora.blocks".*>=1 items/],
      [() => lora({ rank: 2, alpha: 1, blocks: [1.5] }), /"lora.blocks.0"/],
      [() => adapter({ kind: 'pfeiffer' } as unknown as AdapterOptions), /"adapter.kind"/],
      [() => adapter({ kind: 'houlsby', bottleneck: 0 }), /"adapter.bottleneck"/],
      [() => adapter({ kind: 'houlsby', bottleneck: 8, scale: 0.5 }), /"adapter.scale".*AdaptFormer/],
      [
        () => adapter({ kind: 'adaptformer', bottleneck: 8, zeroInit: 1 } as unknown as AdapterOptions),
        /"adapter.zeroInit"/,
      ],
      [() => ssf({ sites: ['qkv', 'pos_embed'] } as unknown as SsfOptions), /"ssf.sites.1"/],
      [() => ssf({ init: 'zeros' } as unknown as SsfOptions), /"ssf.init"/],
      [() => bitfit({ tier: 'late' } as never), /"bitfit.tier"/],
      [() => linearProbe({ name: '' }), /"linear-probe.name"/],
      [() => fullFineTuning({ prefix: '' }), /"full-fine-tuning.prefix"/],
    ];
    for (const [fn, message] of bad) {
      const error = peftError(fn);
      expect(error.code).toBe('INVALID_OPTION');
      expect(error.message).toMatch(message);
    }
  });

  it('fail at setup when the model cannot satisfy them, naming the option or plugin', () => {
    const blocks = peftError(() => reportOn([lora({ rank: 2, alpha: 2, blocks: [3, 12, 14] })]));
    expect(blocks.code).toBe('INVALID_OPTION');
    expect(blocks.message).toMatch(/"lora.blocks" selects blocks 12, 14, but the model has 12 blocks/);
    // BitFit trains the backbone's own biases, so it needs them.
    expect(peftError(() => reportOn([bitfit()])).message).toMatch(/plugin "bitfit" found no backbone bias/);
  });

  it('LoRA on the MLP and every SSF site need no backbone weights at setup (they wrap the layers)', () => {
    // 12 blocks × (fc1: A 768×2 + B 2×3072, fc2: A 3072×2 + B 2×768).
    expect(reportOn([lora({ rank: 2, alpha: 2, targets: ['fc1', 'fc2'] })]).trainableWithoutHead).toBe(
      12 * (768 * 2 + 2 * 3072 + 3072 * 2 + 2 * 768),
    );
    // γ and β: 12 blocks × (norm1 768, qkv 2304, proj 768, norm2 768, fc1 3072, fc2 768); patch_embed and norm 768.
    expect(reportOn([ssf()]).trainableWithoutHead).toBe(2 * (12 * (768 * 4 + 2304 + 3072) + 2 * 768));
  });

  it('one plugin object serves one model; two instances need distinct names and prefixes', () => {
    const plugin = lora({ rank: 2, alpha: 2 });
    reportOn([plugin]);
    expect(peftError(() => reportOn([plugin])).code).toBe('PLUGIN_INVALID');
    const conflict = peftError(() => reportOn([lora({ rank: 2, alpha: 2 }), lora({ rank: 4, alpha: 4 })]));
    expect(conflict.code).toBe('PLUGIN_CONFLICT');
    const report = reportOn([
      lora({ rank: 2, alpha: 2, targets: ['q'] }),
      lora({ rank: 2, alpha: 2, targets: ['v'], name: 'lora-v', prefix: 'lora_v' }),
    ]);
    expect(report.trainableWithoutHead).toBe(2 * 12 * (768 * 2 + 2 * 768));
  });

  it('mergeLora names the problem when the model has no LoRA plugin', () => {
    const model = createPeftModel(new GeometryOnlyBackbone(VIT_B), [linearProbe()]);
    expect(peftError(() => mergeLora(model)).message).toMatch(/mergeLora: the model has no LoRA plugin/);
    model.dispose();
  });
});
