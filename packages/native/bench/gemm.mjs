// GFLOP/s of the native GEMM against the measured peak of its instruction set, directly and through tfjs (the fused
// linear layer against matmul + add, and with --stock the stock wasm/cpu BatchMatMul against the native one).
// Run from packages/native: `pnpm bench [--stock]` (needs the addon built: `pnpm build:native`); best of several
// runs per number. The kernels' instruction set is chosen once per process: `PEFTJS_NATIVE_ISA=avx2 pnpm bench`
// measures the AVX2 kernels on an AVX-512 machine.
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import {
  FUSED_KERNELS,
  installFusedKernels,
  installNativeMatMul,
  loadNativeKernels,
  measureNativePeak,
  nativeGemm,
  setNativeThreads,
  uninstallNativeMatMul,
} from '@peftjs/native';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

const status = loadNativeKernels();
if (!status.ok) {
  console.log(`native kernels unavailable: ${status.reason}`);
  process.exit(1);
}
const withStock = process.argv.includes('--stock');

/** Best seconds per call over `trials` timed calls (after one warm-up call), capped at ~`budget` seconds. */
function bestSeconds(fn, trials = 15, budget = 3) {
  fn();
  let best = Number.POSITIVE_INFINITY;
  const start = performance.now();
  for (let i = 0; i < trials; i++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
    if ((performance.now() - start) / 1000 > budget) break;
  }
  return best;
}

// The products of the bench:speed step (micro-batch 16: 1200 token rows, dim 192, 3 heads of 64, 75 tokens) and of
// bench:inference (batch 8 at 224²: 1576 rows, 197 tokens, 257 with SHIP's prompts), then a large square one.
const shapes = [
  { name: 'qkv [1200,192]×[192,576]', batch: 1, m: 1200, n: 576, k: 192 },
  { name: 'fc1 [1200,192]×[192,768]', batch: 1, m: 1200, n: 768, k: 192 },
  { name: 'fc2 [1200,768]×[768,192]', batch: 1, m: 1200, n: 192, k: 768 },
  { name: 'proj [1200,192]×[192,192]', batch: 1, m: 1200, n: 192, k: 192 },
  { name: '∂fc1 [1200,768]×[192,768]ᵀ', batch: 1, m: 1200, n: 192, k: 768, transposeB: true },
  { name: '∂fc2 [1200,192]×[768,192]ᵀ', batch: 1, m: 1200, n: 768, k: 192, transposeB: true },
  { name: 'q·kᵀ 48×[75,64]×[75,64]ᵀ', batch: 48, m: 75, n: 75, k: 64, transposeB: true },
  { name: 'p·v 48×[75,75]×[75,64]', batch: 48, m: 75, n: 64, k: 75 },
  { name: 'fc1 [1576,192]×[192,768]', batch: 1, m: 1576, n: 768, k: 192 },
  { name: 'q·kᵀ 24×[197,64]×[257,64]ᵀ', batch: 24, m: 197, n: 257, k: 64, transposeB: true },
  { name: 'p·v 24×[197,257]×[257,64]', batch: 24, m: 197, n: 64, k: 257 },
  { name: '1024³', batch: 1, m: 1024, n: 1024, k: 1024 },
];

const fill = (count) => {
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = Math.sin(i * 0.37) * 0.5;
  return data;
};
const gflops = (s, seconds) => (2 * s.batch * s.m * s.n * s.k) / seconds / 1e9;
const pad = (text, width) => text.padEnd(width);
const peak = (threads) => measureNativePeak(threads, 1);

const peak1 = peak(1);
const peak2 = peak(2);
console.log(`CPU ${status.cpu} × ${cpus().length}; native ${status.isa} (${status.isaReason})`);
console.log(
  `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
console.log(
  `measured peak (register-only FMA loop, fastest 0.1 ms chunk in 1 s): ${peak1.toFixed(1)} GFLOP/s on 1 thread, ${peak2.toFixed(1)} on 2\n`,
);
console.log('direct nativeGemm (Float32Array in, Float32Array out): GFLOP/s and % of the measured peak');
for (const s of shapes) {
  const a = fill(s.batch * s.m * s.k);
  const b = fill(s.batch * s.k * s.n);
  const out = new Float32Array(s.batch * s.m * s.n);
  const run = () => nativeGemm(a, b, s, out);
  setNativeThreads(1);
  const one = gflops(s, bestSeconds(run));
  setNativeThreads(2);
  const two = gflops(s, bestSeconds(run));
  setNativeThreads(1);
  const pct = (v, p) => `${((100 * v) / p).toFixed(0)} %`;
  console.log(
    `  ${pad(s.name, 34)} 1 thread ${one.toFixed(1).padStart(6)} (${pct(one, peak1).padStart(5)})   2 threads ${two.toFixed(1).padStart(6)} (${pct(two, peak2).padStart(5)})`,
  );
}

const require = createRequire(import.meta.url);
setWasmPaths(`${join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist')}/`);
tf.env().set('PROD', true);
await tf.setBackend('wasm');
await tf.ready();
installNativeMatMul('wasm');
installFusedKernels('wasm');
console.log(
  '\ntfjs on wasm, one thread: the linear layer as one kernel (bias, GELU in the GEMM epilogue) vs separate',
);
for (const [rows, inF, outF] of [
  [1200, 192, 768],
  [1576, 192, 768],
]) {
  const x = tf.tensor2d(fill(rows * inF), [rows, inF]);
  const w = tf.tensor2d(fill(inF * outF), [inF, outF]);
  const bias = tf.tensor1d(fill(outF));
  const ms = (fn) => (1000 * bestSeconds(() => tf.tidy(fn))).toFixed(2);
  const kernel = (name, inputs, attrs) => tf.engine().runKernel(name, inputs, attrs);
  const separate = ms(() => tf.add(tf.matMul(x, w), bias));
  const fused = ms(() => kernel(FUSED_KERNELS.linear, { x, weight: w, bias }, { activation: 'linear' }));
  const separateGelu = ms(() => kernel(FUSED_KERNELS.gelu, { x: tf.add(tf.matMul(x, w), bias) }));
  const fusedGelu = ms(() => kernel(FUSED_KERNELS.linear, { x, weight: w, bias }, { activation: 'gelu' }));
  console.log(
    `  [${rows},${inF}]×[${inF},${outF}] + bias: matmul + add ${separate} ms, fused ${fused} ms;` +
      ` then GELU: separate kernel ${separateGelu} ms, in the epilogue ${fusedGelu} ms`,
  );
  tf.dispose([x, w, bias]);
}

if (withStock) {
  for (const backend of ['wasm', 'cpu']) {
    await tf.setBackend(backend);
    await tf.ready();
    console.log(`\ntf.matMul on the ${backend} backend: stock kernel vs native (GFLOP/s, one thread)`);
    for (const s of shapes.filter((x) => x.batch > 1 || x.m === 1024)) {
      // The pure-JS cpu kernel needs minutes for 1024³; transposed stock wasm products are also very slow.
      const stockBudget = backend === 'cpu' ? 4 : 6;
      const aShape = s.transposeA ? [s.batch, s.k, s.m] : [s.batch, s.m, s.k];
      const bShape = s.transposeB ? [s.batch, s.n, s.k] : [s.batch, s.k, s.n];
      const a = tf.tensor(fill(s.batch * s.m * s.k), s.batch === 1 ? aShape.slice(1) : aShape);
      const b = tf.tensor(fill(s.batch * s.k * s.n), s.batch === 1 ? bShape.slice(1) : bShape);
      // wasm and cpu kernels run synchronously inside tf.matMul: this times the kernel plus the output allocation,
      // not a read-back of the result. (Returning nothing from tidy matters: tidy walks a returned typed array.)
      const run = () =>
        tf.tidy(() => {
          tf.matMul(a, b, s.transposeA ?? false, s.transposeB ?? false);
        });
      installNativeMatMul(backend);
      const native = gflops(s, bestSeconds(run)).toFixed(1);
      uninstallNativeMatMul(backend);
      let stock = 'skipped';
      if (!(backend === 'cpu' && s.m * s.n * s.k * s.batch > 2e8)) {
        stock = gflops(s, bestSeconds(run, 3, stockBudget)).toFixed(2);
      }
      installNativeMatMul(backend);
      console.log(`  ${pad(s.name, 34)} stock ${stock.padStart(7)}   native ${native.padStart(6)}`);
      a.dispose();
      b.dispose();
    }
  }
}
