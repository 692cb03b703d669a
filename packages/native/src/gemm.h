// Single-precision GEMM for PEFT.js: C[b] = op(A[b]) · op(B[b]), row-major, C overwritten (beta = 0).
// Everything declared here lives in gemm.cc, the only translation unit compiled with -mavx2 -mfma; callers must
// check cpu_features() before calling into it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace peftjs {

struct GemmShape {
  std::int64_t m;  // rows of op(A) and C
  std::int64_t n;  // columns of op(B) and C
  std::int64_t k;  // shared dimension
  bool trans_a;    // A is stored [k, m] instead of [m, k]
  bool trans_b;    // B is stored [n, k] instead of [k, n]
};

// One product. Leading dimensions are the dense ones (k or m for A, n or k for B, n for C).
void sgemm(const GemmShape& s, const float* a, const float* b, float* c);

// `batch` products; A and B advance by their batch strides (0 broadcasts one matrix), C by m·n.
// `threads` ≤ 1 runs on the calling thread; 2 splits the work with one helper thread.
void sgemm_batched(const GemmShape& s, std::int64_t batch, const float* a, std::int64_t stride_a,
                   const float* b, std::int64_t stride_b, float* c, int threads);

// Number of worker threads the pool can use (1 = none started).
int max_threads();

// Runs part(ctx, 0) on the calling thread and part(ctx, 1) on the helper thread, returning when both are done;
// both parts run here, one after the other, when threads ≤ 1 or another caller holds the helper.
void run_two_parts(int threads, void (*part)(void* ctx, int index), void* ctx);

}  // namespace peftjs
