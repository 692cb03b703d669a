/**
 * Every built-in method (and a SHIP + LoRA composition) on the tiny MNIST ViT, shared by the ownership test and
 * the fresh-process script it compares against: same plugins, same seeds, same data in both processes.
 */
import { VisionTransformer } from '@peftjs/backbone';
import { adapter, bitfit, fullFineTuning, linearProbe, lora, ssf, vpt } from '@peftjs/baselines';
import {
  type PeftModel,
  type PeftPlugin,
  type PrepareData,
  type Tensor,
  type Tensor1D,
  type Tensor4D,
  createPeftModel,
  tf,
} from '@peftjs/core';
import { scratch } from '@peftjs/references';
import { ship } from '@peftjs/ship';
import { BUILTIN_METHODS, adapterFactories } from '../src/methods.js';
import { mnistDigitTensors, tinyMnistVit } from '@peftjs/test-fixtures/plain';

const shipOptions = { threshold: 0.97, promptLength: 2, hierarchy: { prototypes: 6 } } as const;

/** The methods under test, by the name the CLI gives them. */
export const METHOD_CASES: Readonly<Record<string, () => PeftPlugin[]>> = {
  full: () => [fullFineTuning()],
  bitfit: () => [bitfit()],
  linear: () => [linearProbe()],
  'vpt-shallow': () => [vpt({ mode: 'shallow', tokens: 3 })],
  'vpt-deep': () => [vpt({ mode: 'deep', tokens: 3 })],
  lora: () => [lora({ rank: 2, alpha: 4 })],
  adapter: () => [adapter({ kind: 'houlsby', bottleneck: 4 })],
  ssf: () => [ssf()],
  ship: () => ship(shipOptions),
  'ship+lora': () => [...ship(shipOptions), lora({ rank: 2, alpha: 4 })],
  // The from-scratch reference re-initialises every backbone tensor: on model-owned copies only.
  scratch: () => [scratch()],
};

/** The seeded random tiny ViT every case is built on. */
export function caseBackbone(): VisionTransformer {
  return VisionTransformer.create(tinyMnistVit(), { seed: 3 });
}

/** 16 MNIST test digits (the caller disposes). */
export function caseData(): { images: Tensor4D; labels: Tensor1D } {
  return mnistDigitTensors('t10k', 0, 16);
}

function prepareData(images: Tensor4D): PrepareData {
  return {
    size: images.shape[0],
    async *batches() {
      yield { images };
    },
  };
}

/** Builds case `name` on `backbone` with seed 7 and runs its data pass (SHIP's hierarchy and prototypes). */
export async function buildCase(
  name: string,
  backbone: VisionTransformer,
  images: Tensor4D,
): Promise<PeftModel> {
  const make = METHOD_CASES[name];
  if (!make) throw new Error(`no method case "${name}"`);
  const model = createPeftModel(backbone, make(), { seed: 7, numClasses: 10 });
  await model.prepare(prepareData(images));
  return model;
}

/** The float32 bit patterns of a tensor, as hex: equal strings mean bit-for-bit equal values. */
export function bits(tensor: Tensor): string {
  const data = tensor.dataSync() as Float32Array;
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex');
}

/** Evaluation logits of a freshly built case, as bits. */
export async function freshLogitBits(
  name: string,
  backbone: VisionTransformer,
  images: Tensor4D,
): Promise<string> {
  const model = await buildCase(name, backbone, images);
  try {
    const logits = model.predict(images);
    const out = bits(logits);
    logits.dispose();
    return out;
  } finally {
    model.dispose();
  }
}

export { tf };

/** Factories for every plugin PEFT.js ships (what `loadAdapter` needs to rebuild any of the cases). */
export const ALL_PLUGIN_FACTORIES = adapterFactories(BUILTIN_METHODS[0] as (typeof BUILTIN_METHODS)[number]);
