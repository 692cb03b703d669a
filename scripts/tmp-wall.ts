import { VisionTransformer, customVit } from '@peftjs/backbone';
import { vpt } from '@peftjs/baselines';
import { type Tensor1D, type Tensor4D, createPeftModel, initBackend, tf } from '@peftjs/core';
import { ship } from '@peftjs/ship';
await initBackend({ log: false });
const vit = VisionTransformer.create(customVit({ imageSize: 32, patchSize: 4, dim: 192, depth: 12, heads: 3, numClasses: 10 }), { seed: 0 });
const images = tf.randomNormal([16, 32, 32, 3], 0, 1, 'float32', 1) as Tensor4D;
const labels = tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 10), 'int32') as Tensor1D;
for (const method of ['vpt', 'ship']) {
  const model = createPeftModel(vit, method === 'vpt' ? [vpt({ mode: 'shallow', tokens: 10 })] : ship({ starts: [0], promptLength: 10, prompts: { ap: false } }));
  const step = () => { const out = model.lossAndGradients(images, labels, { training: true }); out.loss.dataSync(); tf.dispose([out.loss, ...Object.values(out.grads)]); };
  step(); step();
  const walls: number[] = [];
  for (let i = 0; i < 7; i++) { const t = performance.now(); step(); walls.push(performance.now() - t); }
  walls.sort((a, b) => a - b);
  const info = await tf.profile(step);
  const kernel = info.kernels.reduce((s, k) => s + (Number(k.kernelTimeMs) || 0), 0);
  console.log(method, 'wall min/median', walls[0]!.toFixed(0), walls[3]!.toFixed(0), 'ms; kernel time (profiled step)', kernel.toFixed(0), 'ms;', info.kernels.length, 'kernels');
}
