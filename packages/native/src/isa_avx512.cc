// The AVX-512 kernel table (AVX-512F/BW/VL/DQ, with FMA): a 12×32 register tile for the GEMM (24 zmm accumulators,
// edges by masked loads and stores, bias and GELU applied in registers) and the element-wise kernels on 16-lane
// vectors. Compiled for baseline x86-64 with the ISA enabled per function by the pragma below, so the addon still
// loads on AVX2-only CPUs; addon.cc hands this table out only where the CPU and the OS support AVX-512.

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
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")

#include "kernels_impl.h"
#include "vec_avx512.h"

namespace peftjs {
namespace {

constexpr int kRows = 12;
constexpr int kPanel = 32;  // floats per k in a packed B panel

// C[0:rows, 0:cols] (= or +=) Σ_k a(:,k) ⊗ b(k,:) over kc, then + bias and GELU when the mode asks; NV 16-float
// vectors per row (cols ≤ 16·NV). PackedA: a is k-major with 12 floats per k; otherwise a points at row 0 of a
// row-major A with row stride lda (all 12 rows valid).
template <int NV, bool PackedA>
inline void kernel_12xNV(i64 kc, const float* a, i64 lda, const float* b, float* c, i64 ldc, int rows, int cols,
                         const TileMode& mode) {
  __m512 acc[kRows][NV];
#pragma GCC unroll 12
  for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();

  for (int r = 0; r < rows; ++r) _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);

  const float* row[kRows];
#pragma GCC unroll 12
  for (int r = 0; r < kRows; ++r) row[r] = a + (PackedA ? r : r * lda);
  constexpr i64 step = PackedA ? kRows : 1;

#pragma GCC unroll 2
  for (i64 p = 0; p < kc; ++p) {
    const i64 o = p * step;
    __m512 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_ps(b + 16 * v);
#pragma GCC unroll 12
    for (int r = 0; r < kRows; ++r) {
      const __m512 x = _mm512_set1_ps(row[r][o]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(x, bv[v], acc[r][v]);
    }
    b += kPanel;
  }

  __mmask16 mask[NV];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) mask[v] = VecAvx512::first(cols - 16 * v);
  __m512 bias[NV] = {};
  if (mode.bias != nullptr) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bias[v] = _mm512_maskz_loadu_ps(mask[v], mode.bias + 16 * v);
  }
#pragma GCC unroll 12
  for (int r = 0; r < kRows; ++r) {
    if (r >= rows) break;
    float* out = c + r * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      __m512 value = acc[r][v];
      if (mode.accumulate) value = _mm512_add_ps(value, _mm512_maskz_loadu_ps(mask[v], out + 16 * v));
      if (mode.bias != nullptr) value = _mm512_add_ps(value, bias[v]);
      if (mode.gelu) value = gelu_v<VecAvx512>(value);
      _mm512_mask_storeu_ps(out + 16 * v, mask[v], value);
    }
  }
}

struct Avx512Kernel {
  using Vec = VecAvx512;
  static constexpr int MR = kRows;
  static constexpr int NR = kPanel;
  static constexpr i64 KC = 256;              // B micro-panel 32×256×4 = 32 KB + A rows 12 KB in a 48 KB L1
  static constexpr i64 B_BLOCK = 256 * 1024;  // 1 MB of packed B per column block (half of a 2 MB L2)

  static void tile(i64 kc, const float* a, i64 lda, bool packed_a, const float* b, float* c, i64 ldc, int rows,
                   int cols, const TileMode& mode) {
    if (cols > 16) {
      if (packed_a)
        kernel_12xNV<2, true>(kc, a, 0, b, c, ldc, rows, cols, mode);
      else
        kernel_12xNV<2, false>(kc, a, lda, b, c, ldc, rows, cols, mode);
    } else {
      if (packed_a)
        kernel_12xNV<1, true>(kc, a, 0, b, c, ldc, rows, cols, mode);
      else
        kernel_12xNV<1, false>(kc, a, lda, b, c, ldc, rows, cols, mode);
    }
  }
};

}  // namespace

// Called by addon.cc only after the CPU check (the table's own initialisation may use this ISA).

const KernelTable& avx512_kernels() {
  static const KernelTable table{
      "avx512",
      sgemm_batched<Avx512Kernel>,
      gelu_forward<VecAvx512>,
      gelu_backward<VecAvx512>,
      layer_norm_forward<VecAvx512>,
      layer_norm_backward<VecAvx512>,
      softmax_forward<VecAvx512>,
      softmax_backward<VecAvx512>,
      binary<VecAvx512>,
      transpose<VecAvx512>,
      peak_gflops<VecAvx512>,
  };
  return table;
}

}  // namespace peftjs

#pragma GCC pop_options
