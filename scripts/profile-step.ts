/**
 * Where one training step's kernel time goes (a diagnostic, not a test): `tf.profile` over one VPT-shallow or SHIP
 * step of the bench:speed geometry, grouped by kernel name and input shapes, largest first.
 *
 *   pnpm profile:step [--method vpt|ship] [--batch 16] [--top 30]
 *
 * Kernel times are wall-clock per kernel as tfjs measures them; run it on an otherwise idle machine.
 */
import { parseArgs } from 'node:util';
import { VisionTransformer, customVit } from '@peftjs/backbone';
import { vpt } from '@peftjs/baselines';
import { type Tensor1D, type Tensor4D, createPeftModel, describeChoice, initBackend, tf } from '@peftjs/core';
import { ship } from '@peftjs/ship';

const { values } = parseArgs({
  options: {
    method: { type: 'string', default: 'vpt' },
    batch: { type: 'string', default: '16' },
    top: { type: 'string', default: '30' },
  },
});
if (values.method !== 'vpt' && values.method !== 'ship')
  throw new Error(`--method must be vpt or ship, got "${values.method}"`);
const batch = Number(values.batch);
if (!(Number.isInteger(batch) && batch >= 1))
  throw new Error(`--batch must be a positive integer, got "${values.batch}"`);

const choice = await initBackend({ log: false });
const vit = VisionTransformer.create(
  customVit({ imageSize: 32, patchSize: 4, dim: 192, depth: 12, heads: 3, numClasses: 10 }),
  { seed: 0 },
);
const images = tf.randomNormal([batch, 32, 32, 3], 0, 1, 'float32', 1) as Tensor4D;
const labels = tf.tensor1d(
  Array.from({ length: batch }, (_, i) => i % 10),
  'int32',
) as Tensor1D;
const model = createPeftModel(
  vit,
  values.method === 'vpt'
    ? [vpt({ mode: 'shallow', tokens: 10 })]
    : ship({ starts: [0], promptLength: 10, prompts: { ap: false } }),
);
const step = () => {
  const out = model.lossAndGradients(images, labels, { training: true });
  out.loss.dataSync();
  tf.dispose([out.loss, ...Object.values(out.grads)]);
};
step(); // kernel set-up and first-use allocations
const info = await tf.profile(step);
const groups = new Map<string, { calls: number; ms: number }>();
for (const k of info.kernels) {
  const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
  const g = groups.get(key) ?? { calls: 0, ms: 0 };
  g.calls++;
  g.ms += Number(k.kernelTimeMs) || 0;
  groups.set(key, g);
}
const total = [...groups.values()].reduce((a, g) => a + g.ms, 0);
console.log(describeChoice(choice));
console.log(
  `${values.method} step, batch ${batch}: ${info.kernels.length} kernel calls, ${total.toFixed(0)} ms kernel time`,
);
console.log('share %  calls  kernel [input shapes]');
for (const [key, g] of [...groups].sort((a, b) => b[1].ms - a[1].ms).slice(0, Number(values.top)))
  console.log(`${((100 * g.ms) / total).toFixed(1).padStart(7)}  ${String(g.calls).padStart(5)}  ${key}`);
model.dispose();
tf.dispose([images, labels]);
