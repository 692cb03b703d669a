import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng, initBackend, tf } from '@peftjs/core';
import {
  type HostTensor,
  type TensorToWrite,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
} from '@peftjs/core/safetensors';
import { expectTensorClose } from '@peftjs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadVit, loadVitFromBytes } from './load.js';
import { vitParameterSpecs } from './parameters.js';
import { customVit, vitPreset } from './presets.js';
import { VisionTransformer } from './vit.js';

const fixture = (file: string) =>
  fileURLToPath(new URL(`../test/fixtures/tiny-vit/${file}`, import.meta.url));

let dir: string;
beforeAll(async () => {
  await initBackend({ prefer: 'cpu', log: false });
  dir = await mkdtemp(join(tmpdir(), 'peftjs-load-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function countOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

describe('presets', () => {
  it('give timm geometry and parameter counts (ViT-B/16: 85,798,656 without head)', () => {
    const base = vitPreset('vit_base_patch16_224', { numClasses: 21843 });
    const specs = vitParameterSpecs(base);
    const backbone = specs.filter((s) => s.group !== 'head').reduce((n, s) => n + countOf(s.torchShape), 0);
    expect(specs).toHaveLength(152);
    expect(backbone).toBe(85_798_656);
    expect(vitPreset('vit_tiny_patch16_224')).toMatchObject({ dim: 192, heads: 3, depth: 12 });
    expect(vitPreset('vit_large_patch32_384')).toMatchObject({
      dim: 1024,
      heads: 16,
      depth: 24,
      patchSize: 32,
    });
    expect(() => vitPreset('vit_huge_patch14_224')).toThrow(/unknown ViT preset "vit_huge_patch14_224"/);
    expect(() => customVit({ dim: 30, depth: 2, heads: 4, patchSize: 4, imageSize: 16 })).toThrow(
      /"heads" must be a divisor of dim 30/,
    );
    expect(() => customVit({ dim: 32, depth: 2, heads: 4, patchSize: 5, imageSize: 16 })).toThrow(
      /"imageSize" must be divisible by patchSize 5/,
    );
  });
});

describe('loading weights', () => {
  it('loads the exact 152-tensor layout of vit_base_patch16_224.augreg_in21k', async () => {
    // Random values in the published names and shapes (the real 410 MB file cannot be fetched here).
    const config = vitPreset('vit_base_patch16_224', { numClasses: 21843 });
    const rng = new Rng('vit-b-layout');
    let state = rng.nextUint32();
    const tensors: TensorToWrite[] = vitParameterSpecs(config).map((spec) => {
      const data = new Float32Array(countOf(spec.torchShape));
      // A cheap xorshift fill: 102 M values through Box–Muller would dominate the test's time.
      for (let i = 0; i < data.length; i++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        data[i] = ((state >>> 0) / 4294967296 - 0.5) * 0.04;
      }
      return { name: spec.name, shape: spec.torchShape, data };
    });
    const path = join(dir, 'vit_base_patch16_224.augreg_in21k.safetensors');
    await writeSafetensors(path, tensors);
    const file = await readSafetensors(path);
    expect(file.names()).toHaveLength(152);
    const { model, layout, dropped } = await loadVit(path);
    expect(layout).toBe('timm');
    expect(dropped).toEqual([]);
    expect(model.config).toMatchObject({
      dim: 768,
      depth: 12,
      heads: 12,
      patchSize: 16,
      imageSize: [224, 224],
    });
    expect(model.backboneParameterCount()).toBe(85_798_656);
    expect(model.numClasses).toBe(21843);
    // Round trip back to PyTorch layout for two tensors with non-trivial layouts.
    const back = model.toTorchTensors();
    const qkv = tensors.find((t) => t.name === 'blocks.5.attn.qkv.weight')!;
    const patch = tensors.find((t) => t.name === 'patch_embed.proj.weight')!;
    expect(back.get(qkv.name)?.data.subarray(0, 1000)).toEqual((qkv.data as Float32Array).subarray(0, 1000));
    expect(back.get(patch.name)?.data).toEqual(patch.data);
    model.dispose();
  }, 300_000);

  it('lists every missing, unexpected and mis-shaped tensor in one error', async () => {
    const file = await readSafetensors(fixture('model.safetensors'));
    const entries: TensorToWrite[] = [];
    for (const name of file.names()) {
      if (name === 'blocks.1.norm2.bias' || name === 'norm.weight') continue;
      const t = file.getHost(name);
      if (name === 'blocks.0.mlp.fc2.bias') entries.push({ name, shape: [31], data: t.data.subarray(0, 31) });
      else entries.push({ name, shape: t.shape, data: t.data });
    }
    entries.push({ name: 'blocks.0.attn.extra', shape: [2], data: new Float32Array(2) });
    const bytes = serializeSafetensors(entries, file.metadata);
    expect(() => loadVitFromBytes(bytes, { source: 'broken.safetensors' })).toThrow(
      /broken\.safetensors does not match the ViT config .*missing 2: blocks\.1\.norm2\.bias, norm\.weight \| unexpected 1: blocks\.0\.attn\.extra \| wrong shape 1: blocks\.0\.mlp\.fc2\.bias has shape \[31\], expected \[32\]/,
    );
  });

  it('loads HF transformers naming (split q/k/v, vit. prefix) to the same model', async () => {
    const file = await readSafetensors(fixture('model.safetensors'));
    const timm = new Map<string, HostTensor>(file.names().map((n) => [n, file.getHost(n)]));
    const dim = 32;
    const hf: TensorToWrite[] = [];
    const put = (name: string, t: HostTensor) =>
      hf.push({ name: `vit.${name}`, shape: t.shape, data: t.data });
    put('embeddings.cls_token', timm.get('cls_token')!);
    put('embeddings.position_embeddings', timm.get('pos_embed')!);
    put('embeddings.patch_embeddings.projection.weight', timm.get('patch_embed.proj.weight')!);
    put('embeddings.patch_embeddings.projection.bias', timm.get('patch_embed.proj.bias')!);
    for (let i = 0; i < 3; i++) {
      const b = (n: string) => timm.get(`blocks.${i}.${n}`)!;
      const l = `encoder.layer.${i}`;
      put(`${l}.layernorm_before.weight`, b('norm1.weight'));
      put(`${l}.layernorm_before.bias`, b('norm1.bias'));
      ['query', 'key', 'value'].forEach((part, j) => {
        put(`${l}.attention.attention.${part}.weight`, {
          shape: [dim, dim],
          data: b('attn.qkv.weight').data.slice(j * dim * dim, (j + 1) * dim * dim),
        });
        put(`${l}.attention.attention.${part}.bias`, {
          shape: [dim],
          data: b('attn.qkv.bias').data.slice(j * dim, (j + 1) * dim),
        });
      });
      put(`${l}.attention.output.dense.weight`, b('attn.proj.weight'));
      put(`${l}.attention.output.dense.bias`, b('attn.proj.bias'));
      put(`${l}.layernorm_after.weight`, b('norm2.weight'));
      put(`${l}.layernorm_after.bias`, b('norm2.bias'));
      put(`${l}.intermediate.dense.weight`, b('mlp.fc1.weight'));
      put(`${l}.intermediate.dense.bias`, b('mlp.fc1.bias'));
      put(`${l}.output.dense.weight`, b('mlp.fc2.weight'));
      put(`${l}.output.dense.bias`, b('mlp.fc2.bias'));
    }
    put('layernorm.weight', timm.get('norm.weight')!);
    put('layernorm.bias', timm.get('norm.bias')!);
    hf.push({ name: 'classifier.weight', shape: [5, dim], data: timm.get('head.weight')!.data });
    hf.push({ name: 'classifier.bias', shape: [5], data: timm.get('head.bias')!.data });
    const fromHf = loadVitFromBytes(serializeSafetensors(hf), {
      source: 'hf.safetensors',
      heads: 2,
      layerNormEps: 1e-6,
    });
    const fromTimm = await loadVit(fixture('model.safetensors'));
    expect(fromHf.layout).toBe('hf');
    const inputs = await readSafetensors(fixture('inputs.safetensors'));
    const img = inputs.getHost('images');
    const images = tf.tensor4d(img.data, img.shape as [number, number, number, number]);
    expectTensorClose(fromHf.model.predict(images), fromTimm.model.predict(images), {
      atol: 0,
      label: 'HF vs timm',
    });
    expect(fromHf.model.config.layerNormEps).toBe(1e-6);
    // HF's own default eps when nothing says otherwise.
    expect(loadVitFromBytes(serializeSafetensors(hf), { heads: 2 }).model.config.layerNormEps).toBe(1e-12);
  });

  it('replaces the head for a new class count with timm init and reports a missing head count clearly', async () => {
    const { model } = await loadVit(fixture('model.safetensors'), { numClasses: 9, seed: 4 });
    expect(model.numClasses).toBe(9);
    const w = model.registry.get('head.weight');
    expect(w.shape).toEqual([32, 9]);
    const values = Array.from(w.dataSync());
    const std = Math.sqrt(values.reduce((a, v) => a + v * v, 0) / values.length);
    expect(std).toBeGreaterThan(0.01);
    expect(std).toBeLessThan(0.03);
    expect(Array.from(model.registry.get('head.bias').dataSync()).every((v) => v === 0)).toBe(true);
    const file = await readSafetensors(fixture('model.safetensors'));
    const plain: TensorToWrite[] = file.names().map((n) => ({ name: n, ...file.getHost(n) }));
    expect(() => loadVitFromBytes(serializeSafetensors(plain), { source: 'no-meta.safetensors' })).toThrow(
      /no-meta\.safetensors: width 32 is not a multiple of 64, so the head count cannot be inferred; pass options.heads/,
    );
  });

  it('writes timm safetensors that load back identically', async () => {
    const vit = VisionTransformer.create(
      customVit({ dim: 64, depth: 2, heads: 1, patchSize: 4, imageSize: 8, numClasses: 3 }),
      {
        seed: 5,
      },
    );
    const path = join(dir, 'roundtrip.safetensors');
    await writeSafetensors(
      path,
      [...vit.toTorchTensors()].map(([name, t]) => ({ name, shape: t.shape, data: t.data })),
    );
    const { model } = await loadVit(path, { heads: 1 });
    const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    expectTensorClose(model.predict(x), vit.predict(x), { atol: 0, label: 'round trip' });
  });
});
