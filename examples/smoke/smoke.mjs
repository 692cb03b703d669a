// The README's first command ends here: pick a backend, build a tiny ViT, attach a prompt plugin, run it.
import { customVit, VisionTransformer } from '@peftjs/backbone';
import { HOOK_SPEC_VERSION, createPeftModel, initBackend, tf } from '@peftjs/core';

const choice = await initBackend();
const config = customVit({ imageSize: 32, patchSize: 8, dim: 64, depth: 12, heads: 4, numClasses: 10 });
const vit = VisionTransformer.create(config, { seed: 0 });

// Ten learned prompt tokens inserted after the embedding (VPT-shallow style), written against the public hook API.
const prompts = {
  name: 'smoke-prompts',
  version: '0.0.0',
  specVersion: HOOK_SPEC_VERSION,
  prefix: 'smoke',
  setup(ctx) {
    const values = ctx.rng.fillUniform(new Float32Array(10 * config.dim), -0.1, 0.1);
    ctx.addParameter('prompt', tf.tensor3d(values, [1, 10, config.dim]));
  },
  hooks: {
    embed: (ctx, stream) => stream.withSegment('prompt', ctx.plugin, ctx.param('prompt')),
  },
};

const model = createPeftModel(vit, [prompts], { seed: 0 });
const images = tf.randomUniform([8, 32, 32, 3], -1, 1, 'float32', 1);
const start = performance.now();
const logits = model.predict(images);
const values = await logits.data();
const ms = performance.now() - start;
const report = model.parameterReport();
console.log(`backend: ${choice.backend}`);
console.log(`logits: [${logits.shape}] finite=${values.every(Number.isFinite)}`);
console.log(
  `parameters: total ${report.total}, trainable ${report.trainable}, trainable without head ${report.trainableWithoutHead}`,
);
console.log(`forward of 8 images: ${ms.toFixed(0)} ms`);
if (!values.every(Number.isFinite)) process.exit(1);
