/**
 * The mini-VTAB accuracy benchmark (a benchmark, not a test): every method on every task, several seeds, the
 * VTAB-1k protocol (train on train800, choose the epoch count on val200, refit on train800val200, test ONCE), plus
 * the reference rows every reader needs: pixel-space kNN (k chosen on val200), training from scratch, and a linear
 * probe on a randomly initialised backbone. Writes docs/results.md and docs/results.png.
 *
 *   pnpm bench:accuracy [--tasks count,position,orientation,size,texture,optdigits,fashion] [--seeds 1,2,3]
 *                       [--methods linear,full,vpt-shallow,vpt-deep,lora,adapter,ship,ship-no-ap,ship-no-pml,ship-no-da,ship-tau1]
 *                       [--epochs 20] [--counts 800,200,1000] [--out docs/results.md]
 *
 * The backbone is the bundled self-pretrained tiny ViT (models/), not an ImageNet-21k ViT-B/16.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { VisionTransformer, loadVit } from '@peftjs/backbone';
import { adapter, fullFineTuning, linearProbe, lora, vpt } from '@peftjs/baselines';
import { type PeftPlugin, createPeftModel, initBackend, tf } from '@peftjs/core';
import { ImageDataset, asPrepareData, readVtabTask } from '@peftjs/data';
import { MINI_VTAB_TASKS, generateTask } from '@peftjs/mini-vtab';
import { ship } from '@peftjs/ship';
import { vtabProtocol } from '@peftjs/train';

const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: 'count,position,orientation,size,texture,optdigits,fashion' },
    seeds: { type: 'string', default: '1,2,3' },
    methods: {
      type: 'string',
      default:
        'linear,full,vpt-shallow,vpt-deep,lora,adapter,ship,ship-no-ap,ship-no-pml,ship-no-da,ship-tau1',
    },
    references: { type: 'string', default: 'knn,scratch,random-linear' },
    epochs: { type: 'string', default: '20' },
    counts: { type: 'string', default: '800,200,1000' },
    weights: { type: 'string', default: 'models/peftjs-vit-tiny12-p8-32.safetensors' },
    data: { type: 'string', default: '.cache/mini-vtab' },
    out: { type: 'string', default: 'docs/results.md' },
  },
});

const backend = await initBackend({ log: false });
const [train800, val200, test] = values.counts.split(',').map(Number) as [number, number, number];
const epochs = Number(values.epochs);
const seeds = values.seeds.split(',').map(Number);
const dataRoot = join(values.data, `${train800}-${val200}-${test}`);

/** Method name → plugins and learning rate (prompt methods need ≥ 5e-3 here; full fine-tuning 1e-4). */
const METHODS: Record<string, { lr: number; plugins: () => PeftPlugin[] }> = {
  linear: { lr: 5e-3, plugins: () => [linearProbe()] },
  full: { lr: 1e-4, plugins: () => [fullFineTuning()] },
  'vpt-shallow': { lr: 5e-3, plugins: () => [vpt({ mode: 'shallow', tokens: 10 })] },
  'vpt-deep': { lr: 5e-3, plugins: () => [vpt({ mode: 'deep', tokens: 10 })] },
  lora: { lr: 5e-3, plugins: () => [lora({ rank: 8, alpha: 8 })] },
  adapter: { lr: 5e-3, plugins: () => [adapter({ kind: 'houlsby', bottleneck: 8 })] },
  ship: {
    lr: 5e-3,
    plugins: () => ship({ threshold: 0.97, promptLength: 10, hierarchy: { prototypes: 50 } }),
  },
  'ship-no-ap': {
    lr: 5e-3,
    plugins: () =>
      ship({ threshold: 0.97, promptLength: 10, hierarchy: { prototypes: 50 }, prompts: { ap: false } }),
  },
  'ship-no-pml': {
    lr: 5e-3,
    plugins: () => ship({ threshold: 0.97, promptLength: 10, hierarchy: { prototypes: 50 }, pml: false }),
  },
  'ship-no-da': {
    lr: 5e-3,
    plugins: () =>
      ship({ threshold: 0.97, promptLength: 10, hierarchy: { prototypes: 50 }, decoupledAttention: false }),
  },
  'ship-tau1': {
    lr: 5e-3,
    plugins: () => ship({ threshold: 1, promptLength: 10, hierarchy: { prototypes: 50 } }),
  },
};

interface Cell {
  top1: number[];
  params: number;
  seconds: number;
}
const results = new Map<string, Map<string, Cell>>();
const record = (method: string, task: string, top1: number, params: number, seconds: number) => {
  const row = results.get(method) ?? new Map<string, Cell>();
  const cell = row.get(task) ?? { top1: [], params, seconds: 0 };
  cell.top1.push(top1);
  cell.seconds += seconds;
  row.set(task, cell);
  results.set(method, row);
};

/** Pixel-space kNN on the normalised images, k ∈ {1, 3, 5, 9} chosen on val200, then test once. */
async function pixelKnn(
  task: string,
  data: Record<'select' | 'val' | 'trainval' | 'test', ImageDataset>,
): Promise<number> {
  const load = async (d: ImageDataset) => {
    const rows: Float32Array[] = [];
    const labels: number[] = [];
    for await (const batch of d.batches({ batchSize: 100 })) {
      rows.push(
        ...tf
          .unstack(tf.reshape(batch.images, [batch.images.shape[0], -1]))
          .map((t) => t.dataSync() as Float32Array),
      );
      labels.push(...Array.from(batch.labels.dataSync()));
    }
    return { rows, labels };
  };
  const predict = (train: Awaited<ReturnType<typeof load>>, query: Float32Array, k: number) => {
    const dist = train.rows.map((r, i) => {
      let s = 0;
      for (let j = 0; j < r.length; j++) s += ((r[j] as number) - (query[j] as number)) ** 2;
      return [s, train.labels[i] as number] as const;
    });
    dist.sort((a, b) => a[0] - b[0]);
    const votes = new Map<number, number>();
    for (const [, l] of dist.slice(0, k)) votes.set(l, (votes.get(l) ?? 0) + 1);
    return [...votes.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0] ?? 0;
  };
  const accuracy = (
    train: Awaited<ReturnType<typeof load>>,
    q: Awaited<ReturnType<typeof load>>,
    k: number,
  ) => q.rows.filter((r, i) => predict(train, r, k) === q.labels[i]).length / q.rows.length;
  const [sel, val, trainval, tst] = await Promise.all([
    load(data.select),
    load(data.val),
    load(data.trainval),
    load(data.test),
  ]);
  const k =
    [1, 3, 5, 9].map((k) => [k, accuracy(sel, val, k)] as const).sort((a, b) => b[1] - a[1])[0]?.[0] ?? 1;
  void task;
  return accuracy(trainval, tst, k);
}

const { model: pretrained } = await loadVit(values.weights);
const random = VisionTransformer.create(pretrained.config, { seed: 12345 });
const started = Date.now();
for (const task of values.tasks.split(',')) {
  if (!existsSync(join(dataRoot, task, 'test.txt'))) {
    try {
      await generateTask(task, { root: dataRoot, seed: 0, counts: { train800, val200, test } });
    } catch (error) {
      console.error(`${task}: skipped — ${(error as Error).message}`);
      continue;
    }
  }
  const info = await readVtabTask(dataRoot, task);
  const options = {
    imageSize: pretrained.config.imageSize,
    channels: 3 as const,
    normalization: 'inception' as const,
    numClasses: info.numClasses,
  };
  const data = {
    select: new ImageDataset(info.splits.train800, options),
    val: new ImageDataset(info.splits.val200, options),
    trainval: new ImageDataset(info.splits.train800val200, options),
    test: new ImageDataset(info.splits.test, options),
  };
  const runs: [string, VisionTransformer, () => PeftPlugin[], number][] = [];
  for (const method of values.methods.split(',')) {
    const spec = METHODS[method];
    if (!spec) throw new Error(`unknown method "${method}"; known: ${Object.keys(METHODS).join(', ')}`);
    runs.push([method, pretrained, spec.plugins, spec.lr]);
  }
  const refs = values.references.split(',').filter(Boolean);
  if (refs.includes('scratch'))
    runs.push(['ref: from scratch (full FT, random init)', random, () => [fullFineTuning()], 1e-3]);
  if (refs.includes('random-linear'))
    runs.push(['ref: linear probe, random backbone', random, () => [linearProbe()], 5e-3]);
  for (const [method, vit, plugins, lr] of runs) {
    for (const seed of seeds) {
      const t0 = performance.now();
      let prepareOn = data.select;
      let params = 0;
      const outcome = await vtabProtocol(
        async () => {
          const model = createPeftModel(vit, plugins(), { seed, numClasses: info.numClasses });
          if (model.plugins.some((p) => p.prepare)) await model.prepare(asPrepareData(prepareOn, 64));
          params = model.parameterReport().trainableWithoutHead;
          return model;
        },
        { train800: data.select, val200: data.val, train800val200: data.trainval, test: data.test },
        {
          epochs,
          batchSize: 64,
          microBatch: 32,
          lr,
          weightDecay: 1e-4,
          warmupEpochs: 2,
          evalEvery: 1,
          seed,
          onStage: (stage) => {
            prepareOn = stage.phase === 'final' ? data.trainval : data.select;
          },
        },
      );
      outcome.model.dispose();
      const seconds = (performance.now() - t0) / 1000;
      record(method, task, outcome.test.top1, params, seconds);
      console.log(
        `${task} ${method} seed ${seed}: test top-1 ${(outcome.test.top1 * 100).toFixed(2)} % (${seconds.toFixed(0)} s)`,
      );
    }
  }
  if (refs.includes('knn')) {
    const t0 = performance.now();
    const top1 = await pixelKnn(task, data);
    for (const _ of seeds)
      record('ref: pixel kNN (k on val)', task, top1, 0, (performance.now() - t0) / 1000 / seeds.length);
    console.log(`${task} pixel kNN: ${(top1 * 100).toFixed(2)} %`);
  }
}

// Report: mean ± std per task, group means (mean over tasks of a group, then over groups), parameters, time.
const tasks = values.tasks.split(',').filter((t) => [...results.values()].some((row) => row.has(t)));
const groupOf = (t: string) => MINI_VTAB_TASKS.find((x) => x.name === t)?.group ?? 'structured';
const groups = ['natural', 'specialized', 'structured'].filter((g) => tasks.some((t) => groupOf(t) === g));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));
const lines = [
  '# Mini-VTAB results',
  '',
  `Backbone: the bundled **self-pretrained tiny ViT** (${values.weights}; depth 12, width 128, 32×32 px, patch 8), not an ImageNet-21k ViT-B/16.`,
  `Protocol: VTAB-1k style — train on train800, choose the epoch count on val200, refit on train800val200, evaluate the test split once; ${epochs} epochs max, AdamW, batch 64, warm-up 2, wd 1e-4, no tuning on the test split.`,
  `Data: @peftjs/mini-vtab (${train800}/${val200}/${test} images per task, generator seed 0). Seeds: ${seeds.join(', ')}. Backend ${backend.backend}${backend.native.installed ? ' + native matmul' : ''}; ${cpus()[0]?.model ?? 'CPU'} × ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; ${new Date().toISOString()}; total ${((Date.now() - started) / 60000).toFixed(1)} min.`,
  `Command: \`pnpm bench:accuracy ${process.argv.slice(2).join(' ')}\``,
  '',
  `| method | ${tasks.join(' | ')} | ${groups.map((g) => `${g} mean`).join(' | ')} | group mean | trainable params (no head) | wall s |`,
  `|---|${tasks.map(() => '---').join('|')}|${groups.map(() => '---').join('|')}|---|---|---|`,
];
for (const [method, row] of results) {
  const cells = tasks.map((t) => {
    const c = row.get(t);
    return c ? `${(mean(c.top1) * 100).toFixed(1)} ± ${(std(c.top1) * 100).toFixed(1)}` : '';
  });
  const groupMeans = groups.map((g) => {
    const xs = tasks.filter((t) => groupOf(t) === g && row.has(t)).map((t) => mean(row.get(t)?.top1 ?? []));
    return xs.length ? mean(xs) * 100 : Number.NaN;
  });
  const params = [...row.values()][0]?.params ?? 0;
  const seconds = [...row.values()].reduce((a, c) => a + c.seconds, 0);
  lines.push(
    `| ${method} | ${cells.join(' | ')} | ${groupMeans.map((m) => (Number.isNaN(m) ? '' : m.toFixed(1))).join(' | ')} | ${mean(groupMeans.filter((m) => !Number.isNaN(m))).toFixed(1)} | ${params.toLocaleString('en-US')} | ${seconds.toFixed(0)} |`,
  );
}
lines.push(
  '',
  'Numbers are test top-1 (%), mean ± std over seeds; the kNN row is deterministic (std 0).',
  '',
);
await writeFile(values.out, lines.join('\n'));
console.log(`wrote ${values.out}`);
