/**
 * Inference throughput: SHIP with the prompt cache vs SHIP without it vs the frozen ViT vs VPT-deep with the same
 * number of prompt tokens (a benchmark, not a test).
 *
 *   pnpm bench:inference [--backend wasm] [--batch 16] [--iters 5] [--image 224] [--patch 16] [--dim 192]
 *                        [--json out.jsonl]
 *
 * `--iters` is the number of interleaved rounds (every model once per round); the report gives medians and the
 * spread (min–max). The header and every `--json` record name the CPU model and the native kernels' instruction
 * set (`PEFTJS_NATIVE_ISA=avx2` forces the AVX2 kernels on an AVX-512 machine).
 *
 * Geometry defaults to ViT-Tiny/16 at 224² (197 image tokens) with SHIP's cifar100 setting (K = 50, starts
 * 0,2,4,6,8,11 → 60–70 prompt tokens per block); VPT-deep gets 60 tokens per block. Weights are random: speed
 * does not depend on them.
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { VisionTransformer, customVit } from '@peftjs/backbone';
import { vpt } from '@peftjs/baselines';
import {
  type BackendPreference,
  type PeftModel,
  type Tensor4D,
  createPeftModel,
  initBackend,
  tf,
} from '@peftjs/core';
import { ship } from '@peftjs/ship';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    batch: { type: 'string', default: '16' },
    iters: { type: 'string', default: '5' },
    image: { type: 'string', default: '224' },
    patch: { type: 'string', default: '16' },
    dim: { type: 'string', default: '192' },
    json: { type: 'string' },
  },
});
const choice = await initBackend({ prefer: values.backend as BackendPreference, log: false });
const batch = Number(values.batch);
const iterations = Number(values.iters);
const config = customVit({
  imageSize: Number(values.image),
  patchSize: Number(values.patch),
  dim: Number(values.dim),
  depth: 12,
  heads: Number(values.dim) / 64,
  numClasses: 100,
});
const starts = [0, 2, 4, 6, 8, 11];
const vit = VisionTransformer.create(config, { seed: 0 });
const images = tf.randomNormal(
  [batch, config.imageSize[0], config.imageSize[1], 3],
  0,
  1,
  'float32',
  1,
) as Tensor4D;

/** One timed prediction, waiting for the values (what a caller of `predict` pays). */
async function timeOnce(predict: () => tf.Tensor): Promise<number> {
  const start = performance.now();
  const logits = predict();
  await logits.data();
  const ms = performance.now() - start;
  logits.dispose();
  return ms;
}

async function shipModel(): Promise<PeftModel> {
  const model = createPeftModel(vit, ship({ starts, promptLength: 50, hierarchy: { prototypes: 16 } }));
  // Prototypes would come from `prepare`; random ones have the same cost.
  model.restoreArtifacts({ 'ship-prompts': { starts, prototypeCount: 200 } });
  return model;
}

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const isa = choice.native.installed ? choice.native.isa : `off (${choice.native.reason})`;
const loadBefore = loadavg();
console.log(`# inference benchmark — ${new Date().toISOString()}`);
console.log(
  `machine: ${cpu} × ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; ` +
    `node ${process.version}; tfjs ${tf.version.tfjs}; backend ${choice.backend}, native ${isa}; batch ${batch}; ` +
    `${iterations} interleaved rounds; load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`,
);
console.log(
  `geometry: ${config.imageSize.join('×')} px, patch ${config.patchSize}, dim ${config.dim}, depth 12; ` +
    'SHIP K=50, starts 0,2,4,6,8,11 (+10 SSP, +10 AP in the last two hierarchies); VPT-deep 60 tokens',
);
const shipUncached = await shipModel();
const shipCached = await shipModel();
shipCached.enablePromptCache();
const vptDeep = createPeftModel(vit, [vpt({ mode: 'deep', tokens: 60 })]);
const models: [string, () => tf.Tensor][] = [
  ['frozen ViT', () => vit.predict(images)],
  ['SHIP (no cache)', () => shipUncached.predict(images)],
  ['SHIP (prompt cache)', () => shipCached.predict(images)],
  ['VPT-deep (60 tokens)', () => vptDeep.predict(images)],
];
// Interleaved rounds (each model once per round, after one warm-up round) and medians: the machine's drift and
// garbage collection then hit every model alike instead of whichever happened to run at the time.
for (const [, predict] of models) await timeOnce(predict);
const samples = models.map(() => [] as number[]);
for (let round = 0; round < iterations; round++) {
  for (const [i, [, predict]] of models.entries()) samples[i]?.push(await timeOnce(predict));
}
const medians = samples.map(median);
const [frozen, noCache, cached, vptTime] = medians as [number, number, number, number];
const records: object[] = [];
for (const [i, [label]] of models.entries()) {
  const ms = medians[i] as number;
  const sample = samples[i] as number[];
  const spread = `${Math.min(...sample).toFixed(0)}–${Math.max(...sample).toFixed(0)}`;
  console.log(
    `${label.padEnd(34)} ${((batch * 1000) / ms).toFixed(1).padStart(8)} images/s  ${ms.toFixed(0).padStart(6)} ms/batch (median; ${spread})`,
  );
  records.push({
    model: label,
    medianMs: ms,
    samplesMs: sample,
    ratioVsFrozen: ms / frozen,
    batch,
    cpu,
    isa,
  });
}
shipUncached.dispose();
shipCached.dispose();
vptDeep.dispose();
console.log(
  `ratios vs frozen ViT (medians): SHIP cached ${(cached / frozen).toFixed(3)}×, SHIP uncached ${(noCache / frozen).toFixed(3)}×, ` +
    `VPT-deep ${(vptTime / frozen).toFixed(3)}×`,
);
console.log(
  `load average after ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
console.log(`ship_cached_over_frozen=${(cached / frozen).toFixed(3)}`);
if (values.json) writeFileSync(values.json, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
