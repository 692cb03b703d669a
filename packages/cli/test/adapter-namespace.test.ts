/**
 * What an adapter file may contain (its head and its plugins' namespaces, nothing else), checked before anything is
 * built; that loading, refused or accepted, never changes the shared base; and that nothing else can write to it.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bitfit, linearProbe, lora, mergeLora, unmergeLora } from '@peftjs/baselines';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  HOOK_SPEC_VERSION,
  type PeftModel,
  type PeftPlugin,
  type Tensor1D,
  type Tensor4D,
  backboneFingerprint,
  createPeftModel,
  initBackend,
  loadAdapter,
  saveAdapter,
} from '@peftjs/core';
import { nodeFileSetFs } from '@peftjs/core/internal';
import { parseSafetensors, serializeSafetensors } from '@peftjs/core/safetensors';
import type { VisionTransformer } from '@peftjs/backbone';
import { faultyFs } from '@peftjs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_PLUGIN_FACTORIES, bits, caseBackbone, caseData, tf } from './method-cases.js';

let backbone: VisionTransformer;
let images: Tensor4D;
let labels: Tensor1D;
let pristine: string;
let dir: string;

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', log: false });
  backbone = caseBackbone();
  ({ images, labels } = caseData());
  pristine = backboneFingerprint(backbone);
  dir = await mkdtemp(join(tmpdir(), 'peftjs-namespace-'));
});
afterAll(async () => {
  tf.dispose([images, labels]);
  backbone.dispose();
  await rm(dir, { recursive: true, force: true });
});

function step(model: PeftModel, lr = 0.05): void {
  const optimizer = tf.train.adam(lr);
  const { loss, grads } = model.lossAndGradients(images, labels);
  model.applyGradients(optimizer, grads);
  tf.dispose([loss, ...Object.values(grads)]);
  optimizer.dispose();
}

/** Trains one step and saves; returns the folder. */
async function savedAdapter(name: string, plugins: PeftPlugin[]): Promise<string> {
  const model = createPeftModel(backbone, plugins, { seed: 2, numClasses: 10 });
  step(model);
  const out = join(dir, name);
  await saveAdapter(model, out);
  model.dispose();
  return out;
}

/** Rewrites the adapter's weights file with `edit` applied to its tensor list. */
async function tamper(
  folder: string,
  edit: (tensors: { name: string; shape: number[]; data: Float32Array }[]) => void,
): Promise<void> {
  const path = join(folder, ADAPTER_WEIGHTS_FILE);
  const file = parseSafetensors(await readFile(path));
  const tensors = file.names().map((name) => {
    const host = file.getHost(name);
    return { name, shape: [...host.shape], data: Float32Array.from(host.data) };
  });
  edit(tensors);
  await writeFile(path, serializeSafetensors(tensors));
}

const load = (folder: string, verifyFingerprint = true) =>
  loadAdapter(backbone, folder, { factories: ALL_PLUGIN_FACTORIES, verifyFingerprint });

const baseTensor = (name: string) => {
  const entry = backbone.registry.entry(name);
  return {
    name,
    shape: [...entry.variable.shape],
    data: (entry.variable.dataSync() as Float32Array).map((v) => v + 1),
  };
};

describe('the adapter namespace', () => {
  it('refuses backbone tensor names and unknown names, all in one error, and the base stays as loaded', async () => {
    const folder = await savedAdapter('lora-tampered', [lora({ rank: 2, alpha: 4 })]);
    await tamper(folder, (tensors) => {
      tensors.push(baseTensor('pos_embed'), baseTensor('blocks.0.attn.qkv.weight'));
      tensors.push({ name: 'extra.thing', shape: [2], data: new Float32Array(2) });
    });
    await expect(load(folder)).rejects.toThrow(
      /backbone tensor name\(s\) blocks\.0\.attn\.qkv\.weight, pos_embed/,
    );
    await expect(load(folder)).rejects.toThrow(/unknown name\(s\) extra\.thing/);
    await expect(load(folder, false)).rejects.toThrow(/an adapter never changes the base/);
    expect(backboneFingerprint(backbone)).toBe(pristine);
  });

  it('refuses a tensor inside a plugin namespace that the rebuilt model does not have', async () => {
    const folder = await savedAdapter('lora-stray', [lora({ rank: 2, alpha: 4 })]);
    await tamper(folder, (tensors) =>
      tensors.push({ name: 'lora.blocks.9.q.lora_A', shape: [1], data: new Float32Array(1) }),
    );
    await expect(load(folder)).rejects.toThrow(
      /lora\.blocks\.9\.q\.lora_A: no such tensor in the rebuilt model/,
    );
    expect(backboneFingerprint(backbone)).toBe(pristine);
  });

  it('stores BitFit biases under its own namespace and loads them onto the pristine base, which never changes', async () => {
    const model = createPeftModel(backbone, [bitfit()], { seed: 2, numClasses: 10 });
    step(model);
    const trained = model.predict(images);
    const folder = join(dir, 'bitfit');
    await saveAdapter(model, folder);
    const names = parseSafetensors(await readFile(join(folder, ADAPTER_WEIGHTS_FILE))).names();
    expect(
      names.filter((n) => !n.startsWith('head.')).every((n) => /^bitfit\.base\.(.+\.)?bias$/.test(n)),
    ).toBe(true);
    expect(names).toContain('bitfit.base.blocks.0.attn.qkv.bias');
    expect(backboneFingerprint(backbone)).toBe(pristine);
    for (const verify of [true, false]) {
      const loaded = await load(folder, verify);
      const again = loaded.predict(images);
      expect(bits(again)).toBe(bits(trained));
      again.dispose();
      loaded.dispose();
      expect(backboneFingerprint(backbone)).toBe(pristine);
    }
    trained.dispose();
    model.dispose();
  });

  it('refuses NaN or infinite adapter values, naming the tensor', async () => {
    const folder = await savedAdapter('linear-nan', [linearProbe()]);
    await tamper(folder, (tensors) => {
      const bias = tensors.find((t) => t.name === 'head.bias');
      if (bias) bias.data[3] = Number.NaN;
    });
    await expect(load(folder)).rejects.toThrow(
      /non-finite values \(NaN or ±Inf\) in head\.bias \(1 of 10 values\)/,
    );
  });

  it('refuses a config whose class count disagrees with its head before allocating a head', async () => {
    const folder = await savedAdapter('linear-classes', [linearProbe()]);
    const path = join(folder, ADAPTER_CONFIG_FILE);
    const config = JSON.parse(await readFile(path, 'utf8')) as { numClasses: number };
    config.numClasses = 5e7;
    await writeFile(path, JSON.stringify(config));
    const before = tf.memory().numBytes;
    await expect(load(folder)).rejects.toThrow(
      /numClasses 50000000 needs head\.weight \[32,50000000\].*found \[32,10\]/,
    );
    expect(tf.memory().numBytes).toBe(before);
  });
});

describe('the shared base is read-only', () => {
  it('refuses a plugin that writes a backbone weight it reached through parameters()', () => {
    const vandal: PeftPlugin = {
      name: 'vandal',
      version: '0.0.0',
      specVersion: HOOK_SPEC_VERSION,
      prefix: 'vandal',
      setup(ctx) {
        const pos = ctx.parameters().find((e) => e.name === 'pos_embed');
        pos?.variable.assign(tf.zerosLike(pos.variable));
      },
      hooks: {},
    };
    expect(() => createPeftModel(backbone, [vandal], { numClasses: 10 })).toThrow(
      /backbone tensor "pos_embed" is shared by every model built on the backbone and is read-only/,
    );
    expect(backboneFingerprint(backbone)).toBe(pristine);
  });

  it('BitFit copies only the biases it trains; the rest stays shared', () => {
    const model = createPeftModel(backbone, [bitfit()], { numClasses: 10 });
    const owned = model.registry.list((e) => e.owner === 'backbone' && !e.shared).map((e) => e.name);
    expect(owned.length).toBeGreaterThan(0);
    expect(owned.every((n) => n.endsWith('.bias'))).toBe(true);
    expect(model.registry.list((e) => e.shared).some((e) => e.name.endsWith('.weight'))).toBe(true);
    model.dispose();
  });

  it("merging one model's LoRA never changes another model on the same base", () => {
    const a = createPeftModel(backbone, [lora({ rank: 2, alpha: 4 })], { seed: 1, numClasses: 10 });
    const b = createPeftModel(backbone, [linearProbe()], { seed: 1, numClasses: 10 });
    step(a, 0.2);
    const beforeA = a.predict(images);
    const beforeB = b.predict(images);
    expect(mergeLora(a)).toBeGreaterThan(0);
    const mergedA = a.predict(images);
    const duringB = b.predict(images);
    expect(bits(duringB)).toBe(bits(beforeB));
    expect(backboneFingerprint(backbone)).toBe(pristine);
    const diff = tf.max(tf.abs(tf.sub(mergedA, beforeA))).dataSync()[0] as number;
    expect(diff).toBeLessThan(1e-4);
    unmergeLora(a);
    expect(a.registry.list((e) => e.owner === 'backbone' && !e.shared)).toHaveLength(0);
    const afterA = a.predict(images);
    expect(bits(afterA)).toBe(bits(beforeA));
    tf.dispose([beforeA, beforeB, mergedA, duringB, afterA]);
    a.dispose();
    b.dispose();
  });
});

describe('adapter saves under faults', () => {
  it('a kill or a full disk at any step of a save leaves the old adapter or the new one, never a mix', async () => {
    const model = createPeftModel(backbone, [lora({ rank: 2, alpha: 4 })], { seed: 2, numClasses: 10 });
    const folder = join(dir, 'faults');
    const oldDir = join(dir, 'faults-old');
    const predictionsOf = async (path: string) => {
      const loaded = await load(path);
      const logits = loaded.predict(images);
      const out = bits(logits);
      logits.dispose();
      loaded.dispose();
      return out;
    };
    step(model);
    await saveAdapter(model, oldDir);
    const oldBits = await predictionsOf(oldDir);
    step(model);
    const newBits = bits(model.predict(images));
    expect(newBits).not.toBe(oldBits);
    const real = await nodeFileSetFs();
    const probe = faultyFs(real, Number.POSITIVE_INFINITY, 'kill');
    await saveAdapter(model, join(dir, 'faults-probe'), { fs: probe });
    const seen = new Set<string>();
    for (const mode of ['kill', 'fail'] as const) {
      for (let at = 0; at < probe.calls; at++) {
        await rm(folder, { recursive: true, force: true });
        await cp(oldDir, folder, { recursive: true });
        const failed = await saveAdapter(model, folder, { fs: faultyFs(real, at, mode) }).then(
          () => false,
          () => true,
        );
        expect(failed, `${mode} at ${at}`).toBe(true);
        const now = await predictionsOf(folder);
        expect([oldBits, newBits], `${mode} at ${at}`).toContain(now);
        seen.add(`${mode}:${now === oldBits ? 'old' : 'new'}`);
      }
    }
    expect([...seen].sort()).toEqual(['fail:new', 'fail:old', 'kill:new', 'kill:old']);
    model.dispose();
  });
});
