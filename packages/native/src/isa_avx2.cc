// The AVX2 + FMA kernel table: a 6×16 register tile for the GEMM (packed, cache-blocked; see kernels_impl.h) and
// the element-wise kernels on 8-lane vectors. Compiled for baseline x86-64 with the ISA enabled per function by
// the pragma below, so nothing here runs unless addon.cc found AVX2 and FMA.

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernel_table.h"
#include "threads.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma")

#include "kernels_impl.h"
#include "vec_avx2.h"

namespace peftjs {
namespace {

// acc(6×16) = Σ_k a(:,k) ⊗ b(k,:), then C = acc or C += acc.
// PackedA: a is k-major with 6 floats per k. Otherwise a points at row 0 of a row-major A with row stride lda.
// b is a packed micro-panel: 16 floats per k, 32-byte aligned.
template <bool PackedA>
inline void kernel_6x16(i64 kc, const float* a, i64 lda, const float* b, float* c, i64 ldc, bool accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

  for (int r = 0; r < 6; ++r) _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);

  const float* a0 = a;
  const float* a1 = a + (PackedA ? 1 : lda);
  const float* a2 = a + (PackedA ? 2 : 2 * lda);
  const float* a3 = a + (PackedA ? 3 : 3 * lda);
  const float* a4 = a + (PackedA ? 4 : 4 * lda);
  const float* a5 = a + (PackedA ? 5 : 5 * lda);
  constexpr i64 step = PackedA ? 6 : 1;

#pragma GCC unroll 4
  for (i64 p = 0; p < kc; ++p) {
    const i64 o = p * step;
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
    __m256 x = _mm256_broadcast_ss(a0 + o);
    c00 = _mm256_fmadd_ps(x, b0, c00);
    c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(a1 + o);
    c10 = _mm256_fmadd_ps(x, b0, c10);
    c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(a2 + o);
    c20 = _mm256_fmadd_ps(x, b0, c20);
    c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(a3 + o);
    c30 = _mm256_fmadd_ps(x, b0, c30);
    c31 = _mm256_fmadd_ps(x, b1, c31);
    x = _mm256_broadcast_ss(a4 + o);
    c40 = _mm256_fmadd_ps(x, b0, c40);
    c41 = _mm256_fmadd_ps(x, b1, c41);
    x = _mm256_broadcast_ss(a5 + o);
    c50 = _mm256_fmadd_ps(x, b0, c50);
    c51 = _mm256_fmadd_ps(x, b1, c51);
    b += 16;
  }

  auto store_row = [&](float* row, __m256 lo, __m256 hi) {
    if (accumulate) {
      lo = _mm256_add_ps(lo, _mm256_loadu_ps(row));
      hi = _mm256_add_ps(hi, _mm256_loadu_ps(row + 8));
    }
    _mm256_storeu_ps(row, lo);
    _mm256_storeu_ps(row + 8, hi);
  };
  store_row(c, c00, c01);
  store_row(c + ldc, c10, c11);
  store_row(c + 2 * ldc, c20, c21);
  store_row(c + 3 * ldc, c30, c31);
  store_row(c + 4 * ldc, c40, c41);
  store_row(c + 5 * ldc, c50, c51);
}

struct Avx2Kernel {
  using Vec = VecAvx2;
  static constexpr int MR = 6;
  static constexpr int NR = 16;
  static constexpr i64 KC = 320;             // B micro-panel 16×320×4 = 20 KB + A panel 7.5 KB fit in L1
  static constexpr i64 B_BLOCK = 96 * 1024;  // 384 KB of packed B per column block (L2)

  // Full tiles go straight to C; edge tiles (fewer than 6 rows or 16 columns) through a scratch tile. The bias and
  // GELU epilogue is one more pass over the tile while it is in L1.
  static void tile(i64 kc, const float* a, i64 lda, bool packed_a, const float* b, float* c, i64 ldc, int rows,
                   int cols, const TileMode& mode) {
    if (rows == MR && cols == NR) {
      if (packed_a)
        kernel_6x16<true>(kc, a, 0, b, c, ldc, mode.accumulate);
      else
        kernel_6x16<false>(kc, a, lda, b, c, ldc, mode.accumulate);
    } else {
      alignas(32) float scratch[MR * NR];
      if (packed_a)
        kernel_6x16<true>(kc, a, 0, b, scratch, NR, false);
      else
        kernel_6x16<false>(kc, a, lda, b, scratch, NR, false);
      for (int r = 0; r < rows; ++r) {
        float* row = c + r * ldc;
        const float* t = scratch + r * NR;
        if (mode.accumulate)
          for (int q = 0; q < cols; ++q) row[q] += t[q];
        else
          for (int q = 0; q < cols; ++q) row[q] = t[q];
      }
    }
    if (mode.bias != nullptr || mode.gelu) epilogue_rows<Vec>(c, ldc, rows, cols, mode.bias, mode.gelu);
  }
};

}  // namespace

// Called by addon.cc only after the CPU check (the table's own initialisation may use this ISA).

const KernelTable& avx2_kernels() {
  static const KernelTable table{
      "avx2",
      sgemm_batched<Avx2Kernel>,
      gelu_forward<VecAvx2>,
      gelu_backward<VecAvx2>,
      layer_norm_forward<VecAvx2>,
      layer_norm_backward<VecAvx2>,
      softmax_forward<VecAvx2>,
      softmax_backward<VecAvx2>,
      binary<VecAvx2>,
      transpose<VecAvx2>,
      peak_gflops<VecAvx2>,
  };
  return table;
}

}  // namespace peftjs

#pragma GCC pop_options
