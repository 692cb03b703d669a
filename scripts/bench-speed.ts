/**
 * Prompt-tuning step speed: PEFT.js routes vs PyTorch at its best configuration on this machine, interleaved in one
 * run (a benchmark, not a test).
 *
 *   pnpm bench:speed [--rounds 5] [--warmup 1] [--routes wasm-native,wasm-native-1t,...] [--methods vpt,ship]
 *                    [--py-configs auto|t1b1,t1b2,...] [--python /usr/bin/python3] [--json out.jsonl] [--no-profile]
 *
 * Every configuration runs in its own long-lived process (scripts/bench-speed-worker.ts for PEFT.js,
 * tools/reference/speed_reference.py --serve for PyTorch), set up and warmed up first; then each round times one
 * training step and one forward of every method on every configuration, in an order rotated per round, so load
 * drift hits all of them alike. Reported: median, min–max and count per configuration, and the median CPU time
 * (all threads of the process): for one-thread configurations it is what the step costs on an idle core, so the
 * like-for-like comparison is also given in CPU time, which a shared machine's load barely moves.
 *
 * PEFT.js routes: wasm-native (the default: native kernels, best instruction set, every core), wasm-native-1t (one
 * thread), wasm-native-avx2 / wasm-native-avx2-1t (AVX2 kernels forced with PEFTJS_NATIVE_ISA=avx2: what an
 * AVX2-only CPU runs), wasm-stock (PEFTJS_NATIVE=off), cpu-native.
 * PyTorch: torch intra-op threads × OpenBLAS threads in {1×1, 1×2, 2×1} (no oversubscription), with ATen's default
 * kernels and, on AVX-512 CPUs, its opt-in AVX-512 ones (ATEN_CPU_CAPABILITY=avx512); on the OpenBLAS core it
 * detects, or — where that is a generic fallback (an older OpenBLAS on a newer CPU) — on the core matching the CPU's
 * vector ISA (OPENBLAS_CORETYPE), the detected core keeping one configuration to show what a default install gets.
 * Ratios divide by the best PyTorch configuration of the same method and measurement; the table keeps every
 * configuration tried. Every record carries the CPU model and the ISA path (PEFT.js: native kernel table; PyTorch:
 * OpenBLAS core and ATen's ISA).
 *
 * Geometry: ViT-Tiny-like, depth 12, dim 192, 3 heads, 32² px, patch 4 (65 tokens), 10 classes, batch 64,
 * random weights. Methods: VPT-shallow with 10 prompt tokens and SHIP with K = 10 SIP at block 0, 10 SSP, decoupled
 * attention and PML, no attribute prompts.
 */
import { type ChildProcessByStdio, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    routes: { type: 'string', default: 'wasm-native,wasm-native-1t,wasm-native-avx2,wasm-native-avx2-1t' },
    methods: { type: 'string', default: 'vpt,ship' },
    'py-configs': { type: 'string', default: 'auto' },
    python: { type: 'string', default: '/usr/bin/python3' },
    json: { type: 'string' },
    'no-profile': { type: 'boolean', default: false },
    'micro-batch': { type: 'string' },
  },
});

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WHATS = ['train_step', 'forward'] as const;
const ROUTE_ENV: Record<string, Record<string, string>> = {
  'wasm-native': {},
  'wasm-native-1t': { PEFTJS_NATIVE_THREADS: '1' },
  'wasm-native-avx2': { PEFTJS_NATIVE_ISA: 'avx2' },
  'wasm-native-avx2-1t': { PEFTJS_NATIVE_ISA: 'avx2', PEFTJS_NATIVE_THREADS: '1' },
  'wasm-stock': { PEFTJS_NATIVE: 'off' },
  'cpu-native': {},
};

type Reply = Record<string, unknown>;

/** Every configuration process started, so a failure of one stops the others. */
type Child = ChildProcessByStdio<Writable, Readable, null>;
const live: Child[] = [];

/** A long-lived configuration process speaking JSON lines (see the worker scripts). */
class Worker {
  readonly info: Promise<Reply>;
  private readonly child: Child;
  private readonly pending: ((reply: Reply) => void)[] = [];
  private infoResolve: ((reply: Reply) => void) | undefined;

  constructor(
    readonly impl: 'peftjs' | 'pytorch',
    readonly label: string,
    command: string,
    args: string[],
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawn(command, args, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'inherit'] });
    live.push(this.child);
    this.info = new Promise((resolve) => {
      this.infoResolve = resolve;
    });
    const lines = createInterface({ input: this.child.stdout });
    lines.on('line', (line) => {
      if (!line.trim().startsWith('{')) return;
      const reply = JSON.parse(line) as Reply;
      if (reply.kind === 'info' && this.infoResolve) {
        this.infoResolve(reply);
        this.infoResolve = undefined;
      } else this.pending.shift()?.(reply);
    });
    this.child.on('exit', (code) => {
      if (code !== 0 && code !== null) {
        console.error(`${label} exited with ${code}; stopping the other configurations`);
        for (const other of live) if (other !== this.child && other.exitCode === null) other.kill();
        process.exit(1);
      }
    });
  }

  request(cmd: object): Promise<Reply> {
    return new Promise((resolve) => {
      this.pending.push(resolve);
      this.child.stdin.write(`${JSON.stringify(cmd)}\n`);
    });
  }

  quit(): void {
    this.child.stdin.write('{"cmd":"quit"}\n');
    this.child.stdin.end();
  }
}

function peftWorker(route: string): Worker {
  const env = ROUTE_ENV[route];
  if (!env) {
    console.error(`unknown route "${route}" (known: ${Object.keys(ROUTE_ENV).join(', ')})`);
    process.exit(2);
  }
  const args = [
    '--conditions=@peftjs/source',
    '--import',
    'tsx',
    'scripts/bench-speed-worker.ts',
    '--route',
    route,
  ];
  args.push('--warmup', values.warmup);
  if (values['micro-batch']) args.push('--micro-batch', values['micro-batch']);
  return new Worker('peftjs', route, process.execPath, args, {
    ...process.env,
    PEFTJS_LOG: 'silent',
    ...env,
  });
}

interface PyConfig {
  torchThreads: number;
  blasThreads: number;
  /** OPENBLAS_CORETYPE, or 'auto' for OpenBLAS's own detection. */
  core: string;
  /** ATEN_CPU_CAPABILITY, or 'default' for ATen's own choice (AVX2 in torch 1.13 even on AVX-512 CPUs). */
  aten: string;
}

function pyWorker(c: PyConfig): Worker {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OMP_NUM_THREADS: String(c.torchThreads),
    OPENBLAS_NUM_THREADS: String(c.blasThreads),
  };
  delete env.OPENBLAS_CORETYPE;
  delete env.ATEN_CPU_CAPABILITY;
  if (c.core !== 'auto') env.OPENBLAS_CORETYPE = c.core;
  if (c.aten !== 'default') env.ATEN_CPU_CAPABILITY = c.aten;
  const forced = [c.core !== 'auto' ? `OpenBLAS ${c.core}` : '', c.aten !== 'default' ? `ATen ${c.aten}` : '']
    .filter(Boolean)
    .join(', ');
  const label = `torch ${c.torchThreads}t × BLAS ${c.blasThreads}t${forced ? ` (${forced})` : ''}`;
  const args = ['tools/reference/speed_reference.py', '--serve', '--threads', String(c.torchThreads)];
  return new Worker('pytorch', label, values.python, [...args, '--warmup', values.warmup], env);
}

/** The CPU's flags (Linux), to name the OpenBLAS core that matches its vector ISA. */
function cpuFlags(): Set<string> {
  if (!existsSync('/proc/cpuinfo')) return new Set();
  const line = readFileSync('/proc/cpuinfo', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('flags'));
  return new Set(line?.split(':')[1]?.trim().split(/\s+/) ?? []);
}

/**
 * What PyTorch can use on this CPU: the OpenBLAS cores whose SGEMM uses its widest vectors, the one to force when
 * OpenBLAS's detection falls short, and whether ATen's AVX-512 kernels (opt-in in torch 1.13) can run.
 */
function cpuOptions(): { okCores: string[]; forceCore: string | null; avx512: boolean } {
  const flags = cpuFlags();
  if (['avx512f', 'avx512bw', 'avx512vl', 'avx512dq'].every((f) => flags.has(f)))
    return { okCores: ['SkylakeX', 'Cooperlake', 'SapphireRapids'], forceCore: 'SkylakeX', avx512: true };
  if (flags.has('avx2') && flags.has('fma'))
    return { okCores: ['Haswell', 'Zen', 'SkylakeX'], forceCore: 'Haswell', avx512: false };
  return { okCores: [], forceCore: null, avx512: false };
}

/** The torch-threads × BLAS-threads grid: --py-configs, or every pair that does not oversubscribe the cores. */
function threadGrid(): [number, number][] {
  if (values['py-configs'] === 'auto')
    return (
      [
        [1, 1],
        [1, 2],
        [2, 1],
      ] as [number, number][]
    ).filter(([t, b]) => t * b <= Math.max(1, cpus().length));
  return values['py-configs'].split(',').map((spec) => {
    const m = /^t(\d+)b(\d+)$/.exec(spec.trim());
    if (!m) {
      console.error(`--py-configs: "${spec}" is not tNbM (torch threads N, BLAS threads M)`);
      process.exit(2);
    }
    return [Number(m[1]), Number(m[2])];
  });
}

/**
 * PyTorch workers: the thread grid on OpenBLAS's own core choice and ATen's default ISA, and again with ATen's
 * AVX-512 kernels where the CPU has them; where OpenBLAS's detection falls back to a generic core, the detected
 * core keeps only its first configuration (what a default install gets) and the grid runs on the core matching the
 * CPU's vector ISA instead.
 */
async function pytorchWorkers(): Promise<Worker[]> {
  const probe = spawnSync(values.python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    console.log(
      `pytorch: not available (${values.python} cannot import torch), so only the PEFT.js rows are measured. ` +
        'To compare, install it: `apt-get install -y --no-install-recommends python3-torch python3-numpy` ' +
        '(Debian/Ubuntu; then use --python /usr/bin/python3) or `pip install torch` (then --python python3).',
    );
    return [];
  }
  const grid = threadGrid();
  const [t0, b0] = grid[0] ?? [1, 1];
  const first = pyWorker({ torchThreads: t0, blasThreads: b0, core: 'auto', aten: 'default' });
  const detected = String((await first.info).blas_core ?? 'unknown');
  const { okCores, forceCore, avx512 } = cpuOptions();
  const generic = forceCore !== null && !okCores.includes(detected);
  const core = generic ? (forceCore as string) : 'auto';
  if (generic)
    console.log(
      `pytorch: OpenBLAS detected core "${detected}" on this CPU, a generic fallback; the grid runs on ` +
        `OPENBLAS_CORETYPE=${core} (the core for the CPU's vector ISA)`,
    );
  const workers = [first];
  for (const aten of avx512 ? ['default', 'avx512'] : ['default'])
    for (const [t, b] of grid)
      if (generic || aten !== 'default' || t !== t0 || b !== b0)
        workers.push(pyWorker({ torchThreads: t, blasThreads: b, core, aten }));
  return workers;
}

interface Row {
  impl: string;
  config: string;
  method: string;
  what: string;
  samples: number[];
  cpu: number[];
  info: Reply;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function describeInfo(w: Worker, info: Reply): string {
  if (w.impl === 'pytorch')
    return `torch ${info.torch} (${info.threads} intra-op threads), ${info.blas}, core ${info.blas_core} (${info.blas_threads} threads), ATen ${info.aten_isa}`;
  const peak =
    info.peak1 !== undefined
      ? `; FMA peak ${Number(info.peak1).toFixed(0)} GFLOP/s (1 thread), ${Number(info.peak2).toFixed(0)} (2)`
      : '';
  return `backend ${info.backend}, native ${info.isa} (${info.isaReason})${peak}`;
}

/** The instruction-set path of a record: PEFT.js's kernel table, or PyTorch's OpenBLAS core and ATen ISA. */
function isaOf(w: Worker, info: Reply): string {
  return w.impl === 'pytorch' ? `OpenBLAS ${info.blas_core}, ATen ${info.aten_isa}` : String(info.isa);
}

async function main(): Promise<void> {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const loadBefore = loadavg();
  console.log(`# speed benchmark — ${new Date().toISOString()}`);
  console.log(
    `machine: ${cpu} × ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`,
  );
  console.log(
    'geometry: depth 12, dim 192, 3 heads, 32² px, patch 4 (65 tokens), batch 64; VPT-shallow 10 tokens; ' +
      'SHIP K=10 at block 0 + 10 SSP, DA, PML, no AP',
  );
  const methods = values.methods.split(',');
  const workers = [...(await pytorchWorkers()), ...values.routes.split(',').map(peftWorker)];
  const infos = new Map<Worker, Reply>();
  for (const w of workers) {
    const info = await w.info;
    infos.set(w, info);
    console.log(`${w.label}: ${describeInfo(w, info)}`);
    for (const method of methods) {
      const ready = await w.request({ cmd: 'setup', method });
      if (ready.note) info.note = ready.note;
    }
  }

  const rows = new Map<string, Row>();
  const rounds = Number(values.rounds);
  for (let round = 0; round < rounds; round++) {
    const order = workers.map((_, i) => workers[(i + round) % workers.length] as Worker);
    for (const method of methods)
      for (const what of WHATS)
        for (const w of order) {
          await sleep(150); // let the previous configuration's spinning threads go to sleep
          const { seconds, cpu } = await w.request({ cmd: 'time', method, what });
          const key = `${w.label}|${method}|${what}`;
          const row = rows.get(key) ?? {
            impl: w.impl,
            config: w.label,
            method,
            what,
            samples: [],
            cpu: [],
            info: infos.get(w) ?? {},
          };
          row.samples.push(seconds as number);
          row.cpu.push(cpu as number);
          rows.set(key, row);
        }
    console.log(`round ${round + 1}/${rounds} done; load average ${loadavg()[0]?.toFixed(2)}`);
  }
  const profiles: string[] = [];
  if (!values['no-profile'])
    for (const w of workers.filter((x) => x.impl === 'peftjs' && x.label.startsWith('wasm-native')))
      for (const method of methods) {
        const p = await w.request({ cmd: 'profile', method });
        profiles.push(
          `matmul share (${w.label}, ${method} train step, tf.profile kernelTimeMs): ${(100 * Number(p.matmulShare)).toFixed(1)}%; top kernels: ${(p.top as string[]).join(', ')}`,
        );
      }
  for (const w of workers) w.quit();
  report([...rows.values()], profiles, workers, infos, loadBefore, cpu);
}

function report(
  rows: Row[],
  profiles: string[],
  workers: Worker[],
  infos: Map<Worker, Reply>,
  loadBefore: number[],
  cpu: string,
): void {
  const med = (r: Row) => median(r.samples);
  const best = (method: string, what: string, filter: (r: Row) => boolean = () => true) =>
    rows
      .filter((r) => r.impl === 'pytorch' && r.method === method && r.what === what && filter(r))
      .reduce<Row | undefined>((a, b) => (a && med(a) <= med(b) ? a : b), undefined);
  console.log('');
  console.log(
    '| impl | configuration | method | what | median s | min–max s | n | ratio vs PyTorch best | CPU s (median) | ISA path |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  const records: object[] = [];
  for (const r of rows) {
    const base = best(r.method, r.what);
    const ratio = base ? med(r) / med(base) : null;
    const worker = workers.find((w) => w.label === r.config) as Worker;
    const isa = isaOf(worker, infos.get(worker) ?? {});
    const spread = `${Math.min(...r.samples).toFixed(3)}–${Math.max(...r.samples).toFixed(3)}`;
    console.log(
      `| ${r.impl} | ${r.config}${r.info.note ? ` (${r.info.note})` : ''} | ${r.method} | ${r.what} | ${med(r).toFixed(3)} | ${spread} | ${r.samples.length} | ${ratio === null ? '—' : ratio.toFixed(3)} | ${median(r.cpu).toFixed(3)} | ${isa} |`,
    );
    records.push({
      ...r,
      median: med(r),
      ratioVsPytorchBest: ratio,
      cpuSeconds: r.cpu, // CPU time per sample; `cpu` below is the CPU model
      cpuSecondsMedian: median(r.cpu),
      cpu,
      isa,
      date: new Date().toISOString(),
    });
  }
  for (const line of profiles) console.log(line);
  summarize(rows, best, med);
  console.log(
    `load average after ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (before ${loadBefore.map((l) => l.toFixed(2)).join(' ')})`,
  );
  if (values.json) writeFileSync(values.json, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
}

function summarize(
  rows: Row[],
  best: (method: string, what: string, filter?: (r: Row) => boolean) => Row | undefined,
  med: (r: Row) => number,
): void {
  const find = (config: string, method = 'vpt', what = 'train_step') =>
    rows.find((r) => r.config === config && r.method === method && r.what === what);
  const base = best('vpt', 'train_step');
  const baseOne = best('vpt', 'train_step', (r) => r.config.startsWith('torch 1t × BLAS 1t'));
  if (base)
    console.log(`PyTorch best configuration (vpt train step): ${base.config}, ${med(base).toFixed(3)} s`);
  const pairs: [string, string, Row | undefined][] = [
    ['like for like (1 thread each) vs PyTorch 1×1 (its best core)', 'wasm-native-1t', baseOne],
    ['default route vs PyTorch best', 'wasm-native', base],
    ['AVX2 forced, 1 thread, vs PyTorch 1×1', 'wasm-native-avx2-1t', baseOne],
    ['AVX2 forced, default threads, vs PyTorch best', 'wasm-native-avx2', base],
  ];
  for (const [label, config, ref] of pairs) {
    const r = find(config);
    if (r && ref)
      console.log(
        `${label}: ${config} ${med(r).toFixed(3)} s / ${med(ref).toFixed(3)} s = ${(med(r) / med(ref)).toFixed(3)}`,
      );
  }
  // In CPU time (all threads of the process): one-thread configurations, nearly independent of the machine's load.
  const cpuOf = (r: Row) => median(r.cpu);
  const oneThreadRows = rows.filter(
    (r) =>
      r.impl === 'pytorch' &&
      r.method === 'vpt' &&
      r.what === 'train_step' &&
      r.config.startsWith('torch 1t × BLAS 1t'),
  );
  const cpuBase = oneThreadRows.reduce<Row | undefined>(
    (a, b) => (a && cpuOf(a) <= cpuOf(b) ? a : b),
    undefined,
  );
  for (const config of ['wasm-native-1t', 'wasm-native-avx2-1t']) {
    const r = find(config);
    if (r && cpuBase)
      console.log(
        `like for like in CPU time (1 thread each): ${config} ${cpuOf(r).toFixed(3)} s / ${cpuBase.config} ${cpuOf(cpuBase).toFixed(3)} s = ${(cpuOf(r) / cpuOf(cpuBase)).toFixed(3)}`,
      );
  }
  for (const [avx2, native] of [
    ['wasm-native-avx2', 'wasm-native'],
    ['wasm-native-avx2-1t', 'wasm-native-1t'],
  ] as const) {
    const a = find(avx2);
    const n = find(native);
    if (a && n)
      console.log(
        `AVX2 kernels / default kernels (same machine, ${native}): ${(med(a) / med(n)).toFixed(3)}`,
      );
  }
  for (const config of new Set(rows.filter((r) => r.impl === 'peftjs').map((r) => r.config))) {
    const v = find(config, 'vpt');
    const s = find(config, 'ship');
    if (v && s) console.log(`SHIP step / VPT step (${config}): ${(med(s) / med(v)).toFixed(3)}`);
  }
  const def =
    find('wasm-native') ??
    rows.find((r) => r.impl === 'peftjs' && r.method === 'vpt' && r.what === 'train_step');
  console.log(
    `step_ratio_vs_pytorch=${def && base ? (med(def) / med(base)).toFixed(3) : 'n/a (no PyTorch)'}`,
  );
}

await main();
