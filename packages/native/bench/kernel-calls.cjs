// Fixed kernel calls on one addon binary, for load-independent instruction counts under valgrind (which runs the
// AVX2 table: its emulated CPU has no AVX-512). Compare two builds (e.g. one from an older commit) like this:
//
//   valgrind --tool=callgrind --callgrind-out-file=cg.gemm node bench/kernel-calls.cjs build/Release/peftjs_native.node gemm
//   callgrind_annotate --inclusive=yes --threshold=100 cg.gemm | grep '::Gemm(napi'
//
// Kinds: gemm (the bench:speed step's linear, backward and attention products, one thread), gelu, ln (LayerNorm),
// lnb (LayerNorm gradient).
const addon = require(require('node:path').resolve(process.argv[2]));
const kind = process.argv[3];
if (addon.selectIsa) addon.selectIsa('avx2');
const fill = (n) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 0.5);
const shapes = [
  [1200, 576, 192, 1, false, false],
  [1200, 768, 192, 1, false, false],
  [1200, 192, 768, 1, false, false],
  [1200, 192, 768, 1, false, true],
  [75, 75, 64, 48, false, true],
  [75, 64, 75, 48, false, false],
  [192, 576, 1200, 1, true, false],
];
if (kind === 'gemm')
  for (const [m, n, k, batch, ta, tb] of shapes) {
    const c = new Float32Array(batch * m * n);
    addon.gemm(fill(batch * m * k), 0, fill(batch * k * n), 0, c, 0, batch, m, n, k, ta, tb, m * k, k * n, 1);
  }
const x = fill(1200 * 768);
const y = new Float32Array(x.length);
const w = fill(192);
if (kind === 'gelu') addon.gelu(x, 0, y, 0, x.length, 1);
if (kind === 'ln') addon.layerNorm(x, 0, w, 0, fill(192), 0, y, 0, 4800, 192, 1e-6, 1);
if (kind === 'lnb')
  addon.layerNormGrad(
    x,
    0,
    x,
    0,
    w,
    0,
    y,
    0,
    new Float32Array(192),
    0,
    new Float32Array(192),
    0,
    4800,
    192,
    1e-6,
    1,
  );
