/**
 * Prompt-tuning step speed: PEFT.js (several backend routes) vs PyTorch on this machine, in one run (a benchmark,
 * not a test). Routes: wasm-native (the default: native kernels on every core they use), wasm-native-1t (native
 * kernels pinned to one thread, like for like with PyTorch on 1 thread), wasm-stock (no native kernels),
 * cpu-native. PyTorch runs on 1 thread (the ratio's base, as issue #8 defines it) and on 2 threads (context).
 *
 *   pnpm bench:speed [--steps 2] [--slow-steps 1] [--warmup 1] [--py-steps 1] [--py-warmup 1] [--routes ...]
 *
 * Geometry: ViT-Tiny-like, depth 12, dim 192, 3 heads, 32² px, patch 4 (65 tokens), 10 classes, batch 64,
 * random weights. Methods: VPT-shallow with 10 prompt tokens (prompts + head trainable) and SHIP with K = 10 SIP at
 * block 0, 10 SSP, decoupled attention and PML, no attribute prompts. Each PEFT.js route runs in a child process of
 * this script (one backend per process); PyTorch runs `tools/reference/speed_reference.py`. Times are medians.
 */
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Tensor1D, Tensor4D } from '@peftjs/core';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '2' },
    'slow-steps': { type: 'string', default: '1' },
    warmup: { type: 'string', default: '1' },
    'py-steps': { type: 'string', default: '1' },
    'py-warmup': { type: 'string', default: '1' },
    routes: { type: 'string', default: 'wasm-native,wasm-native-1t,wasm-stock,cpu-native' },
    child: { type: 'string' },
    'micro-batch': { type: 'string' },
  },
});

const BATCH = 64;

interface Row {
  impl: string;
  route: string;
  method: string;
  what: string;
  seconds: number;
  note?: string;
}

// ---------------------------------------------------------------- child: one PEFT.js route
async function runRoute(route: string): Promise<void> {
  const { VisionTransformer, customVit } = await import('@peftjs/backbone');
  const { vpt } = await import('@peftjs/baselines');
  const { createPeftModel, initBackend, tf } = await import('@peftjs/core');
  const { ship } = await import('@peftjs/ship');
  const { AdamW, accumulateGradients } = await import('@peftjs/train');
  type Model = ReturnType<typeof createPeftModel>;

  const prefer = route.startsWith('cpu') ? 'cpu' : 'wasm';
  const choice = await initBackend({ prefer, log: false });
  const emit = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
  emit({
    kind: 'info',
    route,
    backend: choice.backend,
    native: choice.native.installed ? choice.native.isa : `off (${choice.native.reason})`,
    tfjs: tf.version.tfjs,
  });
  const fast = route.startsWith('wasm-native');
  const steps = Number(fast ? values.steps : values['slow-steps']);
  const warmup = Number(values.warmup);
  const vit = VisionTransformer.create(
    customVit({ imageSize: 32, patchSize: 4, dim: 192, depth: 12, heads: 3, numClasses: 10 }),
    { seed: 0 },
  );
  const images = tf.randomNormal([BATCH, 32, 32, 3], 0, 1, 'float32', 1) as Tensor4D;
  const labels = tf.tensor1d(
    Array.from({ length: BATCH }, (_, i) => (i * 7) % 10),
    'int32',
  ) as Tensor1D;
  // wasm: batch 64 on one tape aborts the wasm module (4 GB heap; measured: `RuntimeError: Aborted()` in Transpose),
  // so wasm routes accumulate gradients over micro-batches of 16; the cpu backend (JS heap) takes one tape.
  const micro = values['micro-batch'] ? Number(values['micro-batch']) : prefer === 'wasm' ? 16 : BATCH;

  function trainStep(model: Model, optimizer: InstanceType<typeof AdamW>): void {
    const { grads } =
      micro === BATCH
        ? (() => {
            const out = model.lossAndGradients(images, labels, { training: true });
            out.loss.dataSync();
            out.loss.dispose();
            return out;
          })()
        : accumulateGradients(model, images, labels, { microBatch: micro });
    optimizer.step(model, grads);
    for (const g of Object.values(grads)) g.dataSync();
    tf.dispose(Object.values(grads));
  }

  async function time(fn: () => void | Promise<void>, n: number): Promise<number> {
    for (let i = 0; i < warmup; i++) await fn();
    const t: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await fn();
      t.push((performance.now() - t0) / 1000);
    }
    return median(t);
  }

  const methods: [string, () => Model][] = [
    ['vpt', () => createPeftModel(vit, [vpt({ mode: 'shallow', tokens: 10 })])],
  ];
  if (fast) {
    methods.push([
      'ship',
      () => createPeftModel(vit, ship({ starts: [0], promptLength: 10, prompts: { ap: false } })),
    ]);
  }
  for (const [method, make] of methods) {
    const model = make();
    const optimizer = new AdamW({ lr: 1e-3, weightDecay: 0 });
    trainStep(model, optimizer); // first step: kernel setup and first-use allocations
    const train = await time(() => trainStep(model, optimizer), steps);
    const note = micro === BATCH ? 'one tape' : `micro-batch ${micro}`;
    emit({
      kind: 'row',
      impl: 'peftjs',
      route,
      method,
      what: 'train_step',
      seconds: train,
      note,
      steps,
      warmup,
    });
    const forward = await time(async () => {
      const logits = model.predict(images);
      await logits.data();
      logits.dispose();
    }, steps);
    emit({ kind: 'row', impl: 'peftjs', route, method, what: 'forward', seconds: forward, steps, warmup });
    if (fast) {
      // Share of one training step's kernel time spent in matmul kernels.
      const info = await tf.profile(() => trainStep(model, optimizer));
      const byName = new Map<string, number>();
      for (const k of info.kernels) {
        const ms = Number(k.kernelTimeMs) || 0;
        byName.set(k.name, (byName.get(k.name) ?? 0) + ms);
      }
      const total = [...byName.values()].reduce((a, b) => a + b, 0);
      const matmul = [...byName].filter(([n]) => /MatMul/.test(n)).reduce((a, [, v]) => a + v, 0);
      const top = [...byName]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 10)
        .map(([n, v]) => `${n} ${((100 * v) / total).toFixed(1)}%`);
      emit({ kind: 'profile', route, method, matmulShare: matmul / total, totalKernelMs: total, top });
    }
    optimizer.dispose();
    model.dispose();
  }
}

// ---------------------------------------------------------------- parent
function runChild(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<object[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const lines = out.split('\n').filter((l) => l.trim().startsWith('{'));
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}\n${out}`));
      else resolve(lines.map((l) => JSON.parse(l) as object));
    });
  });
}

async function main(): Promise<void> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const self = fileURLToPath(import.meta.url);
  console.log(`# speed benchmark — ${new Date().toISOString()}`);
  console.log(
    `machine: ${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}`,
  );
  console.log(
    'geometry: depth 12, dim 192, 3 heads, 32² px, patch 4 (65 tokens), batch 64; VPT-shallow 10 tokens; ' +
      'SHIP K=10 at block 0 + 10 SSP, DA, PML, no AP',
  );
  const rows: Row[] = [];

  // PyTorch on 1 thread is the ratio's base (the reference); on 2 threads it is context for the 2-core routes.
  for (const pyThreads of [1, 2]) {
    const py = (await runChild(
      '/usr/bin/python3',
      [
        'tools/reference/speed_reference.py',
        '--steps',
        values['py-steps'],
        '--warmup',
        values['py-warmup'],
        '--threads',
        String(pyThreads),
      ],
      { ...process.env, OMP_NUM_THREADS: String(pyThreads), OPENBLAS_NUM_THREADS: String(pyThreads) },
      root,
    )) as (Row & { torch: string; blas?: string })[];
    for (const r of py) rows.push({ ...r, route: `cpu ${pyThreads} thread${pyThreads > 1 ? 's' : ''}` });
    console.log(
      `pytorch: torch ${py[0]?.torch}, ${py[0]?.blas ?? 'system BLAS'}, ${pyThreads} thread(s), warm-up ${values['py-warmup']}, median of ${values['py-steps']}`,
    );
  }

  const profiles: { route: string; method: string; matmulShare: number; top: string[] }[] = [];
  for (const route of values.routes.split(',')) {
    const env: NodeJS.ProcessEnv = { ...process.env, PEFTJS_LOG: 'silent' };
    if (route === 'wasm-stock') env.PEFTJS_NATIVE = 'off';
    // wasm-native uses the default thread count (both cores here); wasm-native-1t pins the native kernels to one
    // thread, like for like with PyTorch on 1 thread.
    if (route === 'wasm-native-1t') env.PEFTJS_NATIVE_THREADS = '1';
    const args = ['--conditions=@peftjs/source', '--import', 'tsx', self, '--child', route];
    for (const k of ['steps', 'slow-steps', 'warmup', 'micro-batch'] as const) {
      if (values[k] !== undefined) args.push(`--${k}`, values[k] as string);
    }
    const out = (await runChild(process.execPath, args, env, root)) as Record<string, unknown>[];
    for (const o of out) {
      if (o.kind === 'row') rows.push(o as unknown as Row);
      else if (o.kind === 'profile') profiles.push(o as unknown as (typeof profiles)[number]);
      else console.log(`${route}: ${JSON.stringify(o)}`);
    }
  }

  const ref = (method: string, what: string) =>
    rows.find(
      (r) => r.impl === 'pytorch' && r.route === 'cpu 1 thread' && r.method === method && r.what === what,
    )?.seconds;
  console.log('');
  console.log('| impl | route | method | what | seconds | ratio vs PyTorch 1 thread | note |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const base = ref(r.method, r.what);
    const ratio = base ? (r.seconds / base).toFixed(3) : '—';
    console.log(
      `| ${r.impl} | ${r.route} | ${r.method} | ${r.what} | ${r.seconds.toFixed(3)} | ${ratio} | ${r.note ?? ''} |`,
    );
  }
  for (const p of profiles) {
    console.log(
      `matmul share (${p.route}, ${p.method} train step, tf.profile kernelTimeMs): ${(100 * p.matmulShare).toFixed(1)}%; top kernels: ${p.top.join(', ')}`,
    );
  }
  const peft = rows.filter((r) => r.impl === 'peftjs' && r.method === 'vpt' && r.what === 'train_step');
  const fastest = peft.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const base = ref('vpt', 'train_step') as number;
  const oneThread = peft.find((r) => r.route === 'wasm-native-1t');
  if (oneThread)
    console.log(`like for like (both on 1 thread): step ratio ${(oneThread.seconds / base).toFixed(3)}`);
  const twoThreadBase = rows.find(
    (r) =>
      r.impl === 'pytorch' && r.route === 'cpu 2 threads' && r.method === 'vpt' && r.what === 'train_step',
  );
  if (twoThreadBase)
    console.log(
      `against PyTorch on 2 threads: step ratio ${(fastest.seconds / twoThreadBase.seconds).toFixed(3)} (${fastest.route})`,
    );
  console.log(`fastest PEFT.js route (vpt train step): ${fastest.route}`);
  console.log(`step_ratio_vs_pytorch=${(fastest.seconds / base).toFixed(3)}`);
}

if (values.child) await runRoute(values.child);
else await main();
