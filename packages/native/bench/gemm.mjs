// GFLOP/s of the native GEMM, directly and through tfjs (stock wasm/cpu BatchMatMul vs the native replacement).
// Run from packages/native: `pnpm bench` (needs the addon built: `pnpm build:native`). Best of several runs.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import {
  installNativeMatMul,
  loadNativeKernels,
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

/** Best seconds per call over `trials` timed calls (after one warm-up call), capped at ~`budget` seconds. */
function bestSeconds(fn, trials = 7, budget = 3) {
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

const shapes = [
  { name: '1024³', batch: 1, m: 1024, n: 1024, k: 1024 },
  { name: '[24,197,64]×[24,64,267]', batch: 24, m: 197, n: 267, k: 64 },
  { name: '[24,197,267]×[24,267,64]', batch: 24, m: 197, n: 64, k: 267 },
  { name: '[24,197,64]×[24,267,64]ᵀ (q·kᵀ)', batch: 24, m: 197, n: 267, k: 64, transposeB: true },
  { name: '[24,267,197]ᵀ×[24,267,64] (∂ wrt probs)', batch: 24, m: 197, n: 64, k: 267, transposeA: true },
];

const fill = (count) => {
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = Math.sin(i * 0.37) * 0.5;
  return data;
};
const gflops = (s, seconds) => (2 * s.batch * s.m * s.n * s.k) / seconds / 1e9;
const pad = (text, width) => text.padEnd(width);

console.log(`native: ${status.isa}; one core unless stated\n`);
console.log('direct nativeGemm (Float32Array in, Float32Array out)');
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
  console.log(`  ${pad(s.name, 44)} ${one.toFixed(1).padStart(6)} GFLOP/s   (2 threads: ${two.toFixed(1)})`);
}

const require = createRequire(import.meta.url);
setWasmPaths(`${join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist')}/`);
tf.env().set('PROD', true);

for (const backend of ['wasm', 'cpu']) {
  await tf.setBackend(backend);
  await tf.ready();
  console.log(`\ntf.matMul on the ${backend} backend: stock kernel vs native (GFLOP/s)`);
  for (const s of shapes) {
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
    let stock = 'skipped';
    if (!(backend === 'cpu' && s.m * s.n * s.k * s.batch > 2e8)) {
      stock = gflops(s, bestSeconds(run, 3, stockBudget)).toFixed(2);
    }
    installNativeMatMul(backend);
    const native = gflops(s, bestSeconds(run)).toFixed(1);
    uninstallNativeMatMul(backend);
    console.log(`  ${pad(s.name, 44)} stock ${stock.padStart(7)}   native ${native.padStart(6)}`);
    a.dispose();
    b.dispose();
  }
}
