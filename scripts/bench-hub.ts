/**
 * What `hf:`/`timm:` references cost on top of the transfer itself (a benchmark, not a test).
 *
 *   pnpm bench:hub [--runs 3] [--backend wasm]
 *   pnpm bench:hub --serve     # only serve, until stopped: time `HF_ENDPOINT=<printed> peft inspect timm:…` yourself
 *
 * Serves a ViT-B/16-sized `model.safetensors` (seeded random weights, the tensor names and shapes of timm's
 * `vit_base_patch16_224` with a 1000-class head: 346 MB) and timm's `config.json` from the loopback mock hub, as
 * `timm/vit_base_patch16_224.augreg2_in21k_ft_in1k`, then times per run, on a fresh cache: a plain `fetch` of the
 * same bytes into a file (the loopback transfer alone), `resolveWeights` downloading (lock, transfer, sha256
 * verification, atomic rename, snapshot link), `resolveWeights` answered from the cache, and `loadVit` from the
 * cache (read, parse, tensors). Loopback numbers measure PEFT.js's overhead, not the internet.
 */
import { execSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { loadVit, vitParameterSpecs, vitPreset } from '@peftjs/backbone';
import { type BackendPreference, Rng, initBackend, tf } from '@peftjs/core';
import { serializeSafetensors } from '@peftjs/core/safetensors';
import { resolveWeights } from '@peftjs/hub';
import { MockHub } from '@peftjs/hub/testing';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    backend: { type: 'string', default: 'wasm' },
    serve: { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const REPO = 'timm/vit_base_patch16_224.augreg2_in21k_ft_in1k';
const REFERENCE = 'timm:vit_base_patch16_224.augreg2_in21k_ft_in1k';

const choice = await initBackend({ prefer: values.backend as BackendPreference, log: false });
const rng = new Rng('bench-hub');
const tensors = vitParameterSpecs(vitPreset('vit_base_patch16_224')).map((spec) => {
  const count = spec.torchShape.reduce((a, b) => a * b, 1);
  return {
    name: spec.name,
    shape: spec.torchShape,
    data: rng.fillUniform(new Float32Array(count), -0.02, 0.02),
  };
});
const weights = serializeSafetensors(tensors, { format: 'pt' });
const config = {
  architecture: 'vit_base_patch16_224',
  num_classes: 1000,
  num_features: 768,
  global_pool: 'token',
  pretrained_cfg: {
    tag: 'augreg2_in21k_ft_in1k',
    input_size: [3, 224, 224],
    interpolation: 'bicubic',
    crop_pct: 0.9,
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.5, 0.5],
    num_classes: 1000,
  },
};
const hub = await MockHub.start({
  repos: {
    [REPO]: {
      files: {
        'model.safetensors': weights,
        'config.json': new TextEncoder().encode(JSON.stringify(config)),
      },
    },
  },
});

if (values.serve) {
  console.log(`serving ${REPO} (${(weights.length / 1e6).toFixed(1)} MB) at HF_ENDPOINT=${hub.endpoint}`);
  await new Promise(() => {}); // until the process is stopped
}

const machine = `${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`;
console.log(`# hub benchmark — ${new Date().toISOString()}`);
console.log(
  `machine: ${machine}; node ${process.version}; backend ${choice.backend}; load: ${execSync('uptime').toString().trim()}`,
);
console.log(
  `file: ${(weights.length / 1e6).toFixed(1)} MB from the loopback mock hub (${hub.endpoint}); ${runs} runs\n`,
);

const seconds = async (task: () => Promise<unknown>) => {
  const start = performance.now();
  await task();
  return (performance.now() - start) / 1000;
};
const times: Record<string, number[]> = { plain: [], download: [], cacheHit: [], loadVit: [] };
for (let run = 0; run < runs; run++) {
  const cacheDir = await mkdtemp(join(tmpdir(), 'peftjs-bench-hub-'));
  times.plain?.push(
    await seconds(async () => {
      const url = `${hub.endpoint}/${REPO}/resolve/main/model.safetensors`;
      const response = await fetch(url);
      await response.body?.pipeTo(Writable.toWeb(createWriteStream(join(cacheDir, 'plain.bin'))));
    }),
  );
  const options = { endpoint: hub.endpoint, cacheDir, progress: false };
  times.download?.push(await seconds(() => resolveWeights(REFERENCE, options)));
  hub.requests.length = 0;
  times.cacheHit?.push(await seconds(() => resolveWeights(REFERENCE, options)));
  if (hub.requests.length > 0) throw new Error('a cache hit made requests');
  times.loadVit?.push(
    await seconds(async () => {
      const { model } = await loadVit(REFERENCE, { hub: options });
      model.dispose();
    }),
  );
  await rm(cacheDir, { recursive: true, force: true });
}
await hub.close();

const row = (label: string, key: string) => {
  const sample = times[key] ?? [];
  const [low, high] = [Math.min(...sample), Math.max(...sample)];
  console.log(
    `${label.padEnd(52)} median ${median(sample).toFixed(3)} s  (min ${low.toFixed(3)}, max ${high.toFixed(3)})`,
  );
};
row('plain fetch → file (the loopback transfer alone)', 'plain');
row('resolveWeights, first download (lock, sha256, link)', 'download');
row('resolveWeights, cache hit (no request)', 'cacheHit');
row('loadVit from the cache (read, parse, tensors)', 'loadVit');
console.log(`tensors left: ${tf.memory().numTensors}`);
