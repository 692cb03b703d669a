/**
 * Memory soak (a benchmark, not a test): full SHIP training steps (SIP/SSP/AP, decoupled attention, PML) on the
 * bundled tiny ViT, sampling the live tensor count, the process RSS and the wasm heap every `--every` steps. A leak
 * shows as a tensor count that grows or an RSS that keeps climbing after the first samples (allocators and kernel
 * caches settle in the first steps, so the verdict compares the second sample with the last).
 *
 *   pnpm bench:soak [--steps 1000] [--every 100] [--batch 16] [--backend auto]
 *
 * Prints one JSON line per sample and a final `soak: ...` verdict line; exits 1 when tensors grew.
 */
import { parseArgs } from 'node:util';
import { loadVit } from '@peftjs/backbone';
import {
  type BackendPreference,
  type Tensor1D,
  type Tensor4D,
  createPeftModel,
  initBackend,
  tf,
} from '@peftjs/core';
import { ship } from '@peftjs/ship';
import { AdamW, accumulateGradients } from '@peftjs/train';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '1000' },
    every: { type: 'string', default: '100' },
    batch: { type: 'string', default: '16' },
    backend: { type: 'string', default: 'auto' },
    weights: { type: 'string', default: 'models/peftjs-vit-tiny12-p8-32.safetensors' },
  },
});
const steps = Number(values.steps);
const every = Number(values.every);
const batch = Number(values.batch);
const choice = await initBackend({ prefer: values.backend as BackendPreference, log: false });
const { model: vit } = await loadVit(values.weights);
const [height, width] = vit.config.imageSize;

// Fixed random batches: the soak is about memory, not accuracy; eight distinct batches keep shapes and data moving.
const batches = Array.from({ length: 8 }, (_, i) => ({
  images: tf.randomUniform([batch, height, width, 3], -1, 1, 'float32', 100 + i) as Tensor4D,
  labels: tf.tensor1d(
    Array.from({ length: batch }, (_, j) => (i * batch + j) % 10),
    'int32',
  ) as Tensor1D,
}));
const model = createPeftModel(vit, ship({ promptLength: 10, hierarchy: { prototypes: 10 } }), {
  seed: 0,
  numClasses: 10,
});
await model.prepare({
  size: batch * batches.length,
  batches: async function* () {
    yield* batches;
  },
});
const optimizer = new AdamW({ lr: 1e-3, weightDecay: 1e-4 });

interface Sample {
  step: number;
  tensors: number;
  rssMiB: number;
  wasmHeapMiB: number | null;
  msPerStep: number;
}
const samples: Sample[] = [];
const wasmHeap = (): number | null => {
  const backend = tf.backend() as { wasm?: { HEAPU8?: { byteLength: number } } };
  return backend.wasm?.HEAPU8 ? backend.wasm.HEAPU8.byteLength / 2 ** 20 : null;
};
let t0 = performance.now();
for (let step = 1; step <= steps; step++) {
  const { images, labels } = batches[step % batches.length] as (typeof batches)[number];
  const { grads } = accumulateGradients(model, images, labels, { microBatch: batch });
  optimizer.step(model, grads);
  tf.dispose(Object.values(grads));
  if (step % every === 0 || step === 1) {
    const sample: Sample = {
      step,
      tensors: tf.memory().numTensors,
      rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
      wasmHeapMiB: wasmHeap(),
      msPerStep: Math.round((performance.now() - t0) / (step === 1 ? 1 : every)),
    };
    samples.push(sample);
    console.log(JSON.stringify(sample));
    t0 = performance.now();
  }
}
const settled = samples[1] ?? samples[0];
const last = samples.at(-1);
if (!settled || !last) throw new Error('--steps must be ≥ 1');
const grew = last.tensors > settled.tensors;
console.log(
  `soak: ${steps} SHIP steps, batch ${batch}, backend ${choice.backend}${choice.native.installed ? '+native' : ''}: ` +
    `tensors ${settled.tensors} → ${last.tensors}, RSS ${settled.rssMiB} → ${last.rssMiB} MiB ` +
    `(step ${settled.step} → ${last.step})${grew ? ' — TENSORS GREW' : ''}`,
);
process.exitCode = grew ? 1 : 0;
