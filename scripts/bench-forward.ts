/**
 * Forward-pass throughput of the ViT backbone on the active backend (a benchmark, not a test).
 *
 *   pnpm bench:forward [--backend auto|wasm|cpu|tensorflow|tensorflow-gpu] [--models tiny,base] [--iters 5]
 *
 * Prints images/s for ViT-Tiny/16 and ViT-B/16 geometry at 224² (random weights: speed does not depend on them),
 * plus the machine, backend and batch size, so numbers can be quoted with their context.
 */
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { type BackendPreference, initBackend, tf } from '@peftjs/core';
import { VisionTransformer, vitPreset } from '@peftjs/backbone';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'auto' },
    models: { type: 'string', default: 'tiny,base' },
    iters: { type: 'string', default: '5' },
  },
});

const choice = await initBackend({ prefer: values.backend as BackendPreference });
const iterations = Number(values.iters);
const machine = `${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`;
console.log(`# forward benchmark — ${new Date().toISOString()}`);
console.log(
  `machine: ${machine}; node ${process.version}; tfjs ${tf.version.tfjs}; backend ${choice.backend}`,
);

const setups = {
  tiny: { preset: 'vit_tiny_patch16_224', batch: 8 },
  base: { preset: 'vit_base_patch16_224', batch: 4 },
} as const;

for (const key of values.models.split(',')) {
  const setup = setups[key as keyof typeof setups];
  if (!setup) throw new Error(`unknown model "${key}" (known: ${Object.keys(setups).join(', ')})`);
  const vit = VisionTransformer.create(vitPreset(setup.preset, { numClasses: 100 }), { seed: 0 });
  const images = tf.randomNormal([setup.batch, 224, 224, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const run = async () => {
    const logits = vit.predict(images);
    await logits.data();
    logits.dispose();
  };
  await run(); // warm-up: kernel setup and first-use allocations
  const start = performance.now();
  for (let i = 0; i < iterations; i++) await run();
  const seconds = (performance.now() - start) / 1000;
  const perSecond = (setup.batch * iterations) / seconds;
  console.log(
    `${setup.preset}: ${perSecond.toFixed(2)} images/s (batch ${setup.batch}, ${iterations} iterations, ` +
      `${((seconds / iterations) * 1000).toFixed(0)} ms/batch)`,
  );
  images.dispose();
  vit.dispose();
}
