/**
 * Test helpers (not exported from the index): MNIST digits as training data, the tiny test ViT with a head, a
 * prompt plugin written against the public plugin API, and a parameters-only backbone for optimizer arithmetic.
 */
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
import { type MnistSplit, mnistDigits, tinyMnistVit } from '@peftjs/test-fixtures';
import { arrayData, type TrainingData } from './data.js';

export function mnistData(split: MnistSplit, start: number, count: number): TrainingData {
  const { images, labels } = mnistDigits(split, start, count);
  return arrayData(images, labels, [28, 28, 1], 10);
}

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
  const vit = VisionTransformer.create(tinyMnistVit({ dropPathRate: options.dropPathRate ?? 0 }), {
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
