import { VisionTransformer, customVit } from '@peftjs/backbone';
import {
  BACKBONE_OWNER,
  HOOK_SPEC_VERSION,
  ParameterRegistry,
  type PeftBackbone,
  type PeftModel,
  type PeftPlugin,
  type Rng,
  type Tensor3D,
  type VitConfig,
  createPeftModel,
  tf,
  vitGeometry,
} from '@peftjs/core';
import { writeSafetensors } from '@peftjs/core/safetensors';
import { tinyMnistVit } from './tiny-vit.js';

/** Learned prompt tokens appended after the image tokens (VPT-shallow style), written against the public API. */
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

/** A model and the way to free it with its backbone. */
export interface TinyModel {
  /** The model. */
  readonly model: PeftModel;
  /** Disposes the model and its backbone. */
  dispose(): void;
}

/** A fresh tiny MNIST ViT (always the same initial weights) with `promptPlugin` attached when asked. */
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

/** Makes every tensor of the model trainable (full fine-tuning for optimizer tests). */
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
  /** The parameters, registered as backbone weights. */
  readonly registry = new ParameterRegistry();
  /** A nominal config (the backbone has no forward pass). */
  readonly config: VitConfig = customVit({ imageSize: 8, patchSize: 4, dim: 4, depth: 1, heads: 1 });
  /** Geometry of `config`. */
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

/**
 * Writes a seeded tiny MNIST ViT (see `tinyMnistVit`) as timm-layout safetensors with its head count in the
 * metadata, as a user's weights file would be: what the `peft` command line tests load.
 */
export async function writeTinyVitWeights(path: string, seed = 7): Promise<VitConfig> {
  const config = tinyMnistVit();
  const vit = VisionTransformer.create(config, { seed });
  await writeSafetensors(
    path,
    [...vit.toTorchTensors()].map(([name, t]) => ({ name, shape: t.shape, data: t.data })),
    { config: JSON.stringify({ num_heads: config.heads }) },
  );
  vit.dispose();
  return config;
}
