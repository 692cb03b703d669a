import type { HostTensor } from '@peftjs/core/safetensors';
import { PeftError } from '@peftjs/core';
import { describe, expect, it } from 'vitest';
import { detectLayout, toTimmStateDict, transpose2d, transposeHost } from './name-maps.js';

// Tiny ViT: dim 8, 2 heads of 4, depth 2, 2×2 patches of a 3-channel 4×4 image (4 patches + CLS), 3 classes.
const DIM = 8;
const HEADS = 2;
const HEAD_DIM = DIM / HEADS;
const DEPTH = 2;
const PATCH = 2;
const CHANNELS = 3;
const TOKENS = (4 / PATCH) ** 2 + 1;
const HIDDEN = 4 * DIM;
const CLASSES = 3;

/** mulberry32: a deterministic stream so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
}

function timmStateDict(): Map<string, HostTensor> {
  const next = rng(42);
  const dict = new Map<string, HostTensor>();
  const add = (name: string, shape: number[]): void => {
    const size = shape.reduce((a, b) => a * b, 1);
    dict.set(name, { shape, data: Float32Array.from({ length: size }, next) });
  };
  add('cls_token', [1, 1, DIM]);
  add('pos_embed', [1, TOKENS, DIM]);
  add('patch_embed.proj.weight', [DIM, CHANNELS, PATCH, PATCH]);
  add('patch_embed.proj.bias', [DIM]);
  for (let i = 0; i < DEPTH; i++) {
    add(`blocks.${i}.norm1.weight`, [DIM]);
    add(`blocks.${i}.norm1.bias`, [DIM]);
    add(`blocks.${i}.attn.qkv.weight`, [3 * DIM, DIM]);
    add(`blocks.${i}.attn.qkv.bias`, [3 * DIM]);
    add(`blocks.${i}.attn.proj.weight`, [DIM, DIM]);
    add(`blocks.${i}.attn.proj.bias`, [DIM]);
    add(`blocks.${i}.norm2.weight`, [DIM]);
    add(`blocks.${i}.norm2.bias`, [DIM]);
    add(`blocks.${i}.mlp.fc1.weight`, [HIDDEN, DIM]);
    add(`blocks.${i}.mlp.fc1.bias`, [HIDDEN]);
    add(`blocks.${i}.mlp.fc2.weight`, [DIM, HIDDEN]);
    add(`blocks.${i}.mlp.fc2.bias`, [DIM]);
  }
  add('norm.weight', [DIM]);
  add('norm.bias', [DIM]);
  add('head.weight', [CLASSES, DIM]);
  add('head.bias', [CLASSES]);
  return dict;
}

function get(dict: Map<string, HostTensor>, name: string): HostTensor {
  const tensor = dict.get(name);
  if (tensor === undefined) throw new Error(`test fixture lacks ${name}`);
  return tensor;
}

/** Rows [start, start+count) of a row-major matrix with `cols` columns (or a slice of a vector when cols = 1). */
function rows(t: HostTensor, start: number, count: number, cols: number): HostTensor {
  const shape = t.shape.length === 1 ? [count] : [count, cols];
  return { shape, data: t.data.slice(start * cols, (start + count) * cols) };
}

/** HF transformers naming (formats.md §4.3): same layouts, q/k/v split out of the fused qkv rows. */
function toHf(timm: Map<string, HostTensor>, withPrefix: boolean): Map<string, HostTensor> {
  const p = withPrefix ? 'vit.' : '';
  const hf = new Map<string, HostTensor>();
  const copy = (from: string, to: string): void => {
    hf.set(to, get(timm, from));
  };
  copy('cls_token', `${p}embeddings.cls_token`);
  copy('pos_embed', `${p}embeddings.position_embeddings`);
  copy('patch_embed.proj.weight', `${p}embeddings.patch_embeddings.projection.weight`);
  copy('patch_embed.proj.bias', `${p}embeddings.patch_embeddings.projection.bias`);
  for (let i = 0; i < DEPTH; i++) {
    const b = `blocks.${i}.`;
    const l = `${p}encoder.layer.${i}.`;
    for (const w of ['weight', 'bias']) {
      copy(`${b}norm1.${w}`, `${l}layernorm_before.${w}`);
      copy(`${b}attn.proj.${w}`, `${l}attention.output.dense.${w}`);
      copy(`${b}norm2.${w}`, `${l}layernorm_after.${w}`);
      copy(`${b}mlp.fc1.${w}`, `${l}intermediate.dense.${w}`);
      copy(`${b}mlp.fc2.${w}`, `${l}output.dense.${w}`);
      const qkv = get(timm, `${b}attn.qkv.${w}`);
      const cols = w === 'weight' ? DIM : 1;
      ['query', 'key', 'value'].forEach((part, k) => {
        hf.set(`${l}attention.attention.${part}.${w}`, rows(qkv, k * DIM, DIM, cols));
      });
    }
  }
  copy('norm.weight', `${p}layernorm.weight`);
  copy('norm.bias', `${p}layernorm.bias`);
  copy('head.weight', 'classifier.weight');
  copy('head.bias', 'classifier.bias');
  return hf;
}

/** Google npz naming and Flax layouts (formats.md §4.3), written element by element. */
function toNpz(timm: Map<string, HostTensor>, prefix: string): Map<string, HostTensor> {
  const npz = new Map<string, HostTensor>();
  const set = (name: string, shape: number[], data: Float32Array): void => {
    npz.set(`${prefix}${name}`, { shape, data });
  };
  const same = (from: string, to: string): void => {
    const t = get(timm, from);
    set(to, [...t.shape], t.data);
  };
  /** PyTorch [out, in] → Flax [in, out]. */
  const dense = (from: string, to: string): void => {
    const t = get(timm, from);
    const [out, inp] = t.shape as [number, number];
    const k = new Float32Array(out * inp);
    for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) k[i * out + o] = t.data[o * inp + i]!;
    set(to, [inp, out], k);
  };

  // OIHW → HWIO: kernel[h][w][c][o] = weight[o][c][h][w].
  const conv = get(timm, 'patch_embed.proj.weight');
  const hwio = new Float32Array(conv.data.length);
  for (let o = 0; o < DIM; o++)
    for (let c = 0; c < CHANNELS; c++)
      for (let h = 0; h < PATCH; h++)
        for (let w = 0; w < PATCH; w++) {
          hwio[((h * PATCH + w) * CHANNELS + c) * DIM + o] =
            conv.data[((o * CHANNELS + c) * PATCH + h) * PATCH + w]!;
        }
  set('embedding/kernel', [PATCH, PATCH, CHANNELS, DIM], hwio);
  same('patch_embed.proj.bias', 'embedding/bias');
  same('cls_token', 'cls');
  same('pos_embed', 'Transformer/posembed_input/pos_embedding');
  for (let i = 0; i < DEPTH; i++) {
    const b = `blocks.${i}.`;
    const e = `Transformer/encoderblock_${i}/`;
    const mha = `${e}MultiHeadDotProductAttention_1/`;
    same(`${b}norm1.weight`, `${e}LayerNorm_0/scale`);
    same(`${b}norm1.bias`, `${e}LayerNorm_0/bias`);
    same(`${b}norm2.weight`, `${e}LayerNorm_2/scale`);
    same(`${b}norm2.bias`, `${e}LayerNorm_2/bias`);
    dense(`${b}mlp.fc1.weight`, `${e}MlpBlock_3/Dense_0/kernel`);
    same(`${b}mlp.fc1.bias`, `${e}MlpBlock_3/Dense_0/bias`);
    dense(`${b}mlp.fc2.weight`, `${e}MlpBlock_3/Dense_1/kernel`);
    same(`${b}mlp.fc2.bias`, `${e}MlpBlock_3/Dense_1/bias`);
    const qkvW = get(timm, `${b}attn.qkv.weight`);
    const qkvB = get(timm, `${b}attn.qkv.bias`);
    ['query', 'key', 'value'].forEach((part, k) => {
      // kernel[d][h][j] = W_part[h*dh + j][d]; bias[h][j] = b_part[h*dh + j].
      const kernel = new Float32Array(DIM * DIM);
      const bias = new Float32Array(DIM);
      for (let h = 0; h < HEADS; h++)
        for (let j = 0; j < HEAD_DIM; j++) {
          const row = k * DIM + h * HEAD_DIM + j;
          bias[h * HEAD_DIM + j] = qkvB.data[row]!;
          for (let d = 0; d < DIM; d++) kernel[(d * HEADS + h) * HEAD_DIM + j] = qkvW.data[row * DIM + d]!;
        }
      set(`${mha}${part}/kernel`, [DIM, HEADS, HEAD_DIM], kernel);
      set(`${mha}${part}/bias`, [HEADS, HEAD_DIM], bias);
    });
    // out kernel[h][j][d] = proj.weight[d][h*dh + j].
    const proj = get(timm, `${b}attn.proj.weight`);
    const out = new Float32Array(DIM * DIM);
    for (let h = 0; h < HEADS; h++)
      for (let j = 0; j < HEAD_DIM; j++)
        for (let d = 0; d < DIM; d++)
          out[(h * HEAD_DIM + j) * DIM + d] = proj.data[d * DIM + h * HEAD_DIM + j]!;
    set(`${mha}out/kernel`, [HEADS, HEAD_DIM, DIM], out);
    same(`${b}attn.proj.bias`, `${mha}out/bias`);
  }
  same('norm.weight', 'Transformer/encoder_norm/scale');
  same('norm.bias', 'Transformer/encoder_norm/bias');
  dense('head.weight', 'head/kernel');
  same('head.bias', 'head/bias');
  return npz;
}

function expectSameDict(actual: Map<string, HostTensor>, expected: Map<string, HostTensor>): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [name, tensor] of expected) {
    const got = get(actual, name);
    expect(got.shape, name).toEqual(tensor.shape);
    expect(Array.from(got.data), name).toEqual(Array.from(tensor.data));
  }
}

function mismatchMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PeftError);
    expect((error as PeftError).code).toBe('WEIGHTS_MISMATCH');
    return (error as PeftError).message;
  }
  throw new Error('expected a WEIGHTS_MISMATCH error');
}

describe('transpose helpers', () => {
  it('transposes 2-D and N-D row-major data', () => {
    expect(Array.from(transpose2d(Float32Array.from([1, 2, 3, 4, 5, 6]), 2, 3))).toEqual([1, 4, 2, 5, 3, 6]);
    const t = { shape: [2, 3, 4], data: Float32Array.from({ length: 24 }, (_, i) => i) };
    const p = transposeHost(t, [2, 0, 1]);
    expect(p.shape).toEqual([4, 2, 3]);
    // p[k][i][j] = t[i][j][k]
    for (let k = 0; k < 4; k++)
      for (let i = 0; i < 2; i++)
        for (let j = 0; j < 3; j++) expect(p.data[(k * 2 + i) * 3 + j]).toBe(t.data[(i * 3 + j) * 4 + k]);
    expect(transposeHost({ shape: [], data: Float32Array.from([7]) }, []).data[0]).toBe(7);
    expect(transposeHost({ shape: [0, 2], data: new Float32Array(0) }, [1, 0]).shape).toEqual([2, 0]);
    expect(() => transposeHost(t, [0, 0, 1])).toThrow(PeftError);
    expect(() => transposeHost({ shape: [2, 2], data: new Float32Array(3) }, [1, 0])).toThrow(PeftError);
  });
});

describe('detectLayout', () => {
  const timm = timmStateDict();
  it('recognises the three naming schemes', () => {
    expect(detectLayout(timm.keys())).toBe('timm');
    expect(detectLayout(toHf(timm, true).keys())).toBe('hf');
    expect(detectLayout(toHf(timm, false).keys())).toBe('hf');
    expect(detectLayout(toNpz(timm, '').keys())).toBe('npz');
    expect(detectLayout(toNpz(timm, 'opt/target/').keys())).toBe('npz');
    expect(detectLayout(toNpz(timm, 'params/').keys())).toBe('npz');
  });

  it('lists some names when it recognises none', () => {
    const error = mismatchMessage(() => detectLayout(['model.conv1.weight', 'model.fc.bias']));
    expect(error).toContain('"model.conv1.weight"');
    expect(error).toContain('"model.fc.bias"');
    expect(mismatchMessage(() => toTimmStateDict(new Map(), { source: 'empty.safetensors' }))).toMatch(
      /^empty\.safetensors: .*no tensors/,
    );
  });
});

describe('toTimmStateDict', () => {
  const timm = timmStateDict();

  it('passes timm through, dropping pre_logits', () => {
    const withPreLogits = new Map(timm);
    withPreLogits.set('pre_logits.fc.weight', { shape: [DIM, DIM], data: new Float32Array(DIM * DIM) });
    const result = toTimmStateDict(withPreLogits, { source: 'timm.safetensors' });
    expect(result.layout).toBe('timm');
    expect(result.dropped).toEqual(['pre_logits.fc.weight']);
    expectSameDict(result.tensors, timm);
  });

  it('recovers the timm dict from HF naming, with and without the vit. prefix', () => {
    const prefixed = toTimmStateDict(toHf(timm, true), { source: 'hf.safetensors' });
    expect(prefixed.layout).toBe('hf');
    expect(prefixed.dropped).toEqual([]);
    expectSameDict(prefixed.tensors, timm);

    // A bare ViTModel checkpoint: no prefix, no classifier, a pooler to drop.
    const bare = toHf(timm, false);
    bare.delete('classifier.weight');
    bare.delete('classifier.bias');
    bare.set('pooler.dense.weight', { shape: [DIM, DIM], data: new Float32Array(DIM * DIM) });
    bare.set('pooler.dense.bias', { shape: [DIM], data: new Float32Array(DIM) });
    const result = toTimmStateDict(bare, { source: 'in21k.safetensors' });
    expect(result.dropped).toEqual(['pooler.dense.bias', 'pooler.dense.weight']);
    const headless = new Map(timm);
    headless.delete('head.weight');
    headless.delete('head.bias');
    expectSameDict(result.tensors, headless);
  });

  it('recovers the timm dict from Google npz naming and Flax layouts', () => {
    for (const prefix of ['', 'opt/target/', 'params/']) {
      const npz = toNpz(timm, prefix);
      npz.set(`${prefix}pre_logits/kernel`, { shape: [DIM, DIM], data: new Float32Array(DIM * DIM) });
      npz.set(`${prefix}pre_logits/bias`, { shape: [DIM], data: new Float32Array(DIM) });
      if (prefix === 'opt/target/') npz.set('opt/state/step', { shape: [], data: Float32Array.from([3]) });
      const result = toTimmStateDict(npz, { source: 'ViT-Ti.npz' });
      expect(result.layout).toBe('npz');
      const expectedDropped = [`${prefix}pre_logits/bias`, `${prefix}pre_logits/kernel`];
      if (prefix === 'opt/target/') expectedDropped.push('opt/state/step');
      expect(result.dropped).toEqual(expectedDropped.sort());
      expectSameDict(result.tensors, timm);
    }
  });

  it('honours an explicit layout', () => {
    expectSameDict(toTimmStateDict(toNpz(timm, ''), { source: 'x.npz', layout: 'npz' }).tensors, timm);
    const message = mismatchMessage(() => toTimmStateDict(timm, { source: 'x', layout: 'hf' }));
    expect(message).toMatch(/^x: \d+ tensor name\(s\) not recognised as hf/);
  });

  it('lists every unrecognised name in one error', () => {
    const hf = toHf(timm, true);
    hf.set('vit.encoder.layer.0.attention.attention.rotary.weight', {
      shape: [1],
      data: new Float32Array(1),
    });
    hf.set('vit.extra_tokens', { shape: [1], data: new Float32Array(1) });
    hf.set('vit.encoder.layer.01.layernorm_before.weight', { shape: [1], data: new Float32Array(1) });
    const message = mismatchMessage(() => toTimmStateDict(hf, { source: 'odd.safetensors' }));
    expect(message).toMatch(/^odd\.safetensors: 3 tensor name\(s\) not recognised as hf ViT weights/);
    expect(message).toContain('"vit.encoder.layer.0.attention.attention.rotary.weight"');
    expect(message).toContain('"vit.extra_tokens"');
    expect(message).toContain('"vit.encoder.layer.01.layernorm_before.weight"');

    const npz = toNpz(timm, '');
    npz.set('Transformer/encoderblock_1/MlpBlock_3/Dense_2/kernel', {
      shape: [1, 1],
      data: new Float32Array(1),
    });
    npz.set('Transformer/posembed_input/other', { shape: [1], data: new Float32Array(1) });
    const npzMessage = mismatchMessage(() => toTimmStateDict(npz, { source: 'odd.npz' }));
    expect(npzMessage).toContain('2 tensor name(s)');
    expect(npzMessage).toContain('"Transformer/encoderblock_1/MlpBlock_3/Dense_2/kernel"');
    expect(npzMessage).toContain('"Transformer/posembed_input/other"');
  });

  it('reports missing q/k/v pieces, wrong ranks and name clashes', () => {
    const hf = toHf(timm, true);
    hf.delete('vit.encoder.layer.1.attention.attention.key.bias');
    hf.set('encoder.layer.0.layernorm_after.bias', get(timm, 'blocks.0.norm2.bias'));
    const message = mismatchMessage(() => toTimmStateDict(hf, { source: 'hf' }));
    expect(message).toContain('block 1 lacks the attention key bias');
    expect(message).toContain(
      '"vit.encoder.layer.0.layernorm_after.bias" and "encoder.layer.0.layernorm_after.bias"',
    );

    const npz = toNpz(timm, '');
    npz.set('embedding/kernel', { shape: [DIM, DIM], data: new Float32Array(DIM * DIM) });
    npz.delete('Transformer/encoderblock_0/MultiHeadDotProductAttention_1/value/kernel');
    const npzMessage = mismatchMessage(() => toTimmStateDict(npz, { source: 'bad.npz' }));
    expect(npzMessage).toContain('"embedding/kernel" has shape [8, 8], expected rank 4');
    expect(npzMessage).toContain('block 0 lacks the attention value weight');
  });
});
