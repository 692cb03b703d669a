/**
 * One PEFT.js configuration ("route") of `pnpm bench:speed`, kept alive so the parent can interleave it with the
 * others (a benchmark helper, not a test). The parent sets the route's environment (PEFTJS_NATIVE,
 * PEFTJS_NATIVE_THREADS, PEFTJS_NATIVE_ISA) and talks JSON lines:
 *
 *   worker → {"kind":"info", backend, isa, isaReason, cpu, threads, peak1, peak2, tfjs}   once, at start
 *   {"cmd":"setup","method":"vpt"|"ship"}            → {"kind":"ready"}     build, one untimed step, warm-up
 *   {"cmd":"time","method":m,"what":"train_step"|"forward"} → {"kind":"sample","seconds":s,"cpu":c}
 *                                                    (wall time, and CPU time of all the process's threads)
 *   {"cmd":"profile","method":m}                      → {"kind":"profile", matmulShare, totalKernelMs, top}
 *   {"cmd":"quit"}
 *
 *   node --conditions=@peftjs/source --import tsx scripts/bench-speed-worker.ts --route wasm-native [--warmup 1]
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { VisionTransformer, customVit } from '@peftjs/backbone';
import { vpt } from '@peftjs/baselines';
import { type Tensor1D, type Tensor4D, createPeftModel, initBackend, tf } from '@peftjs/core';
import { loadNativeKernels, measureNativePeak } from '@peftjs/native';
import { ship } from '@peftjs/ship';
import { AdamW, accumulateGradients } from '@peftjs/train';

/** Batch of every timed step and forward (the PyTorch reference uses the same). */
const SPEED_BATCH = 64;

const { values } = parseArgs({
  options: {
    route: { type: 'string' },
    warmup: { type: 'string', default: '1' },
    'micro-batch': { type: 'string' },
  },
});
const route = values.route ?? 'wasm-native';
const emit = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

type Model = ReturnType<typeof createPeftModel>;
const prefer = route.startsWith('cpu') ? 'cpu' : 'wasm';
const choice = await initBackend({ prefer, log: false });
const native = choice.native;
emit({
  kind: 'info',
  route,
  backend: choice.backend,
  isa: native.installed ? native.isa : 'off',
  isaReason: native.installed ? native.isaReason : native.reason,
  cpu: native.installed ? native.cpu : undefined,
  threads: native.installed ? (loadNativeKernels() as { threads?: number }).threads : undefined,
  // The measured peak of the kernels' instruction set (an FMA loop), for GFLOP/s-vs-peak statements.
  peak1: native.installed ? measureNativePeak(1, 1) : undefined,
  peak2: native.installed ? measureNativePeak(2, 1) : undefined,
  tfjs: tf.version.tfjs,
});

const vit = VisionTransformer.create(
  customVit({ imageSize: 32, patchSize: 4, dim: 192, depth: 12, heads: 3, numClasses: 10 }),
  { seed: 0 },
);
const images = tf.randomNormal([SPEED_BATCH, 32, 32, 3], 0, 1, 'float32', 1) as Tensor4D;
const labels = tf.tensor1d(
  Array.from({ length: SPEED_BATCH }, (_, i) => (i * 7) % 10),
  'int32',
) as Tensor1D;
// wasm: batch 64 on one tape aborts the wasm module (4 GB heap; measured: `RuntimeError: Aborted()` in Transpose),
// so wasm routes accumulate gradients over micro-batches of 16; the cpu backend (JS heap) takes one tape.
const micro = values['micro-batch'] ? Number(values['micro-batch']) : prefer === 'wasm' ? 16 : SPEED_BATCH;

interface Entry {
  model: Model;
  optimizer: InstanceType<typeof AdamW>;
}
const models = new Map<string, Entry>();

function trainStep({ model, optimizer }: Entry): void {
  let grads: Record<string, tf.Tensor>;
  if (micro === SPEED_BATCH) {
    const out = model.lossAndGradients(images, labels, { training: true });
    out.loss.dataSync();
    out.loss.dispose();
    grads = out.grads;
  } else grads = accumulateGradients(model, images, labels, { microBatch: micro }).grads;
  optimizer.step(model, grads);
  for (const g of Object.values(grads)) g.dataSync();
  tf.dispose(Object.values(grads));
}

async function forward({ model }: Entry): Promise<void> {
  const logits = model.predict(images);
  await logits.data();
  logits.dispose();
}

function build(method: string): Entry {
  if (method !== 'vpt' && method !== 'ship') throw new Error(`unknown method "${method}" (known: vpt, ship)`);
  const plugins =
    method === 'vpt'
      ? [vpt({ mode: 'shallow', tokens: 10 })]
      : ship({ starts: [0], promptLength: 10, prompts: { ap: false } });
  return { model: createPeftModel(vit, plugins), optimizer: new AdamW({ lr: 1e-3, weightDecay: 0 }) };
}

/** Share of one training step's kernel time spent in matmul kernels (BatchMatMul and the fused linear layer). */
async function profile(entry: Entry): Promise<object> {
  const info = await tf.profile(() => trainStep(entry));
  const byName = new Map<string, number>();
  // A custom gradient's scope ("unnamed scope") is timed around kernels that are timed themselves.
  for (const k of info.kernels.filter((x) => x.name !== 'unnamed scope'))
    byName.set(k.name, (byName.get(k.name) ?? 0) + (Number(k.kernelTimeMs) || 0));
  const total = [...byName.values()].reduce((a, b) => a + b, 0);
  const matmul = [...byName].filter(([n]) => /MatMul|Linear/.test(n)).reduce((a, [, v]) => a + v, 0);
  const top = [...byName]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 10)
    .map(([n, v]) => `${n} ${((100 * v) / total).toFixed(1)}%`);
  return { kind: 'profile', matmulShare: matmul / total, totalKernelMs: total, top };
}

const warmup = Number(values.warmup);
for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line) as { cmd: string; method?: string; what?: string };
  if (cmd.cmd === 'quit') break;
  const method = cmd.method ?? '';
  if (cmd.cmd === 'setup') {
    const entry = build(method);
    models.set(method, entry);
    trainStep(entry); // kernel setup and first-use allocations
    for (let i = 0; i < warmup; i++) {
      trainStep(entry);
      await forward(entry);
    }
    emit({ kind: 'ready', method, note: micro === SPEED_BATCH ? 'one tape' : `micro-batch ${micro}` });
    continue;
  }
  const entry = models.get(method);
  if (!entry) throw new Error(`method "${method}" was not set up`);
  if (cmd.cmd === 'time') {
    const cpu = process.cpuUsage();
    const start = performance.now();
    if (cmd.what === 'train_step') trainStep(entry);
    else await forward(entry);
    const seconds = (performance.now() - start) / 1000;
    const used = process.cpuUsage(cpu);
    emit({ kind: 'sample', seconds, cpu: (used.user + used.system) / 1e6 });
  } else if (cmd.cmd === 'profile') emit(await profile(entry));
  else throw new Error(`unknown command ${line}`);
}
for (const { model, optimizer } of models.values()) {
  optimizer.dispose();
  model.dispose();
}
