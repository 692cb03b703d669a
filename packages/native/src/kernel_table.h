// The kernels of @peftjs/native, one table per instruction set. isa_avx2.cc and isa_avx512.cc each fill one; addon.cc
// (compiled for baseline x86-64) checks the CPU once at load and hands out the table the CPU can run. Nothing in
// a table may be called before that check: the ISA files compile their code with `#pragma GCC target`, so a
// binary built anywhere still loads on an AVX2-only CPU and picks the AVX2 table there.
//
// Arrays are dense row-major float32; `threads` ≥ 2 lets the work split over the calling thread and one helper.
#pragma once

#include <cstdint>

namespace peftjs {

struct GemmShape {
  std::int64_t m;  // rows of op(A) and C
  std::int64_t n;  // columns of op(B) and C
  std::int64_t k;  // shared dimension
  bool trans_a;    // A is stored [k, m] instead of [m, k]
  bool trans_b;    // B is stored [n, k] instead of [k, n]
};

// What happens to C after the product: C = act(op(A)·op(B) + bias), bias a row vector of n floats (nullable).
struct Epilogue {
  const float* bias = nullptr;
  bool gelu = false;  // exact (erf) GELU, the same function as gelu_forward
};

struct KernelTable {
  // Short name reported to JavaScript ("avx2", "avx512").
  const char* name;

  // `batch` products C[i] = epilogue(op(A[i])·op(B[i])); A and B advance by their batch strides (0 broadcasts one
  // matrix), C by m·n. Leading dimensions are the dense ones.
  void (*sgemm_batched)(const GemmShape& s, std::int64_t batch, const float* a, std::int64_t stride_a,
                        const float* b, std::int64_t stride_b, float* c, const Epilogue& epilogue, int threads);

  // y = x·Φ(x) = ½·x·(1 + erf(x/√2)), n elements.
  void (*gelu_forward)(const float* x, float* y, std::int64_t n, int threads);
  // dx = dy·(Φ(x) + x·φ(x)).
  void (*gelu_backward)(const float* dy, const float* x, float* dx, std::int64_t n, int threads);

  // y[r] = (x[r] − mean) / √(var + eps) · weight + bias for `rows` rows of `dim` floats (biased variance).
  void (*layer_norm_forward)(const float* x, const float* weight, const float* bias, float* y, std::int64_t rows,
                             std::int64_t dim, float eps, int threads);
  // dx [rows, dim], dweight and dbias [dim] (summed over rows).
  void (*layer_norm_backward)(const float* dy, const float* x, const float* weight, float* dx, float* dweight,
                              float* dbias, std::int64_t rows, std::int64_t dim, float eps, int threads);

  // Softmax over each row of n floats, in two segments: columns [0, split) and [split, n) are normalised
  // separately and scaled by weight0 and weight1 (split = n, weight0 = 1: the plain softmax).
  void (*softmax_forward)(const float* x, float* y, std::int64_t rows, std::int64_t n, std::int64_t split,
                          float weight0, float weight1, int threads);
  // dx = y·(dy − Σ_segment y·dy / weight) per segment (0 where the segment's weight is 0).
  void (*softmax_backward)(const float* dy, const float* y, float* dx, std::int64_t rows, std::int64_t n,
                           std::int64_t split, float weight0, float weight1, int threads);

  // y[i] = a[i] op b[i mod period] for i < n, op 0: +, 1: −, 2: ×. period = n (same shapes), 1 (b a scalar) or the
  // length of a trailing vector b repeated over a (a bias); n is a multiple of period.
  void (*binary)(int op, const float* a, const float* b, float* y, std::int64_t n, std::int64_t period, int threads);

  // y = x transposed by perm (rank ≤ 8): y's axis i is x's axis perm[i]. Trailing axes that stay in place are
  // copied as contiguous runs.
  void (*transpose)(const float* x, float* y, const std::int64_t* shape, const int* perm, int rank, int threads);

  // GFLOP/s of a register-only FMA loop on `threads` threads for about `seconds`: this ISA's measured peak.
  double (*peak_gflops)(int threads, double seconds);
};

const KernelTable& avx2_kernels();
const KernelTable& avx512_kernels();

}  // namespace peftjs
