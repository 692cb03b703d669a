// Fused element-wise kernels of the ViT block, with their gradients: exact (erf) GELU and LayerNorm over the last
// axis. Compiled with -mavx2 -mfma (like gemm.cc); callers check the CPU first.
//
// Why: in a prompt-tuning step on tfjs-backend-wasm, GELU alone ran as ~12 separate kernels (Mul, Erf, Add, Mul,
// and in the backward pass Square, Neg, Exp, Mul ...), each a single-threaded pass over [B, N, 4D] floats; the
// profile showed Exp + Erf at ~20 % of kernel time. Here each is one two-threaded pass.
//
// Numerics: erf uses the same Abramowitz–Stegun 7.1.26 form as tfjs's Erf kernel (|error| ≤ 1.5e-7), so values
// match the unfused path to float rounding; exp is a Cephes-style range reduction + degree-6 polynomial (≈1 ulp).
// LayerNorm is PyTorch's: biased variance, eps inside the square root.

#include "fused.h"

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "gemm.h"

namespace peftjs {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// Vector maths (8 floats)

inline __m256 exp8(__m256 x) {
  // exp(x) = 2^n · exp(r), n = round(x·log2 e), r = x − n·ln 2 (ln 2 split in two for exactness).
  const __m256 hi = _mm256_set1_ps(88.3762626647949f);
  const __m256 lo = _mm256_set1_ps(-88.3762626647949f);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^n through the exponent bits; n ≥ −127 here, and n = −127 gives 0 (exp underflows anyway).
  __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
  e = _mm256_max_epi32(e, _mm256_setzero_si256());
  return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(e, 23)));
}

// Φ(x) = ½(1 + erf(x/√2)) and φ(x) = exp(−x²/2)/√(2π), together (they share exp(−x²/2)).
inline void cdf_pdf8(__m256 x, __m256* cdf, __m256* pdf) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));  // x/√2
  const __m256 az = _mm256_andnot_ps(sign_mask, z);
  const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), az,
                                                                         _mm256_set1_ps(1.0f)));
  __m256 poly = _mm256_set1_ps(1.061405429f);
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-1.453152027f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(1.421413741f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-0.284496736f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(0.254829592f));
  poly = _mm256_mul_ps(poly, t);
  const __m256 g = exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(az, az)));  // exp(−z²) = exp(−x²/2)
  const __m256 erf_abs = _mm256_fnmadd_ps(poly, g, _mm256_set1_ps(1.0f));
  const __m256 erf = _mm256_or_ps(erf_abs, _mm256_and_ps(z, sign_mask));
  *cdf = _mm256_mul_ps(_mm256_set1_ps(0.5f), _mm256_add_ps(_mm256_set1_ps(1.0f), erf));
  *pdf = _mm256_mul_ps(g, _mm256_set1_ps(0.39894228040143268f));
}

// ---------------------------------------------------------------------------------------------------------------
// Splitting work in two halves (one per core)

constexpr std::int64_t kParallelFloats = 1 << 15;  // below this the helper hand-off costs more than it saves

template <typename Body>
void split_range(std::int64_t n, std::int64_t grain, int threads, Body body) {
  if (threads < 2 || n * grain < kParallelFloats || n < 2) {
    body(0, n);
    return;
  }
  struct Ctx {
    Body* body;
    std::int64_t n;
  } ctx{&body, n};
  run_two_parts(
      threads,
      [](void* raw, int index) {
        auto* c = static_cast<Ctx*>(raw);
        const std::int64_t mid = c->n / 2;
        if (index == 0)
          (*c->body)(0, mid);
        else
          (*c->body)(mid, c->n);
      },
      &ctx);
}

// out[i] = op(in[0][i], …, in[K−1][i]) over [0, n), 8 lanes at a time; the tail goes through the same vector op on
// a zero-padded copy, so every element sees exactly the same arithmetic.
template <int K, typename Op>
void map_elements(const float* const (&in)[K], float* out, std::int64_t n, int threads, Op op) {
  split_range(n, 1, threads, [&](std::int64_t lo, std::int64_t hi) {
    __m256 v[K];
    std::int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
      for (int k = 0; k < K; ++k) v[k] = _mm256_loadu_ps(in[k] + i);
      _mm256_storeu_ps(out + i, op(v));
    }
    if (i == hi) return;
    const std::int64_t rest = hi - i;
    alignas(32) float lanes[8] = {};
    for (int k = 0; k < K; ++k) {
      for (std::int64_t j = 0; j < rest; ++j) lanes[j] = in[k][i + j];
      v[k] = _mm256_load_ps(lanes);
    }
    _mm256_store_ps(lanes, op(v));
    for (std::int64_t j = 0; j < rest; ++j) out[i + j] = lanes[j];
  });
}

// Horizontal sum of 8 floats.
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float row_sum(const float* x, std::int64_t d) {
  __m256 acc = _mm256_setzero_ps();
  std::int64_t i = 0;
  for (; i + 8 <= d; i += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + i));
  float s = hsum(acc);
  for (; i < d; ++i) s += x[i];
  return s;
}

}  // namespace

void gelu_forward(const float* x, float* y, std::int64_t n, int threads) {
  const float* const in[1] = {x};
  map_elements<1>(in, y, n, threads, [](const __m256* v) {
    __m256 cdf, pdf;
    cdf_pdf8(v[0], &cdf, &pdf);
    return _mm256_mul_ps(v[0], cdf);
  });
}

void gelu_backward(const float* dy, const float* x, float* dx, std::int64_t n, int threads) {
  // d/dx [x·Φ(x)] = Φ(x) + x·φ(x)
  const float* const in[2] = {dy, x};
  map_elements<2>(in, dx, n, threads, [](const __m256* v) {
    __m256 cdf, pdf;
    cdf_pdf8(v[1], &cdf, &pdf);
    return _mm256_mul_ps(v[0], _mm256_fmadd_ps(v[1], pdf, cdf));
  });
}

void layer_norm_forward(const float* x, const float* weight, const float* bias, float* y, std::int64_t rows,
                        std::int64_t dim, float eps, int threads) {
  split_range(rows, dim, threads, [&](std::int64_t lo, std::int64_t hi) {
    const float inv_dim = 1.0f / static_cast<float>(dim);
    for (std::int64_t r = lo; r < hi; ++r) {
      const float* xr = x + r * dim;
      float* yr = y + r * dim;
      const float mean = row_sum(xr, dim) * inv_dim;
      // Two passes (mean, then squared deviations), as tfjs's moments and PyTorch's result: no cancellation.
      const __m256 vm = _mm256_set1_ps(mean);
      __m256 acc = _mm256_setzero_ps();
      std::int64_t i = 0;
      for (; i + 8 <= dim; i += 8) {
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xr + i), vm);
        acc = _mm256_fmadd_ps(d, d, acc);
      }
      float ss = hsum(acc);
      for (; i < dim; ++i) ss += (xr[i] - mean) * (xr[i] - mean);
      const float rstd = 1.0f / std::sqrt(ss * inv_dim + eps);
      const __m256 vr = _mm256_set1_ps(rstd);
      i = 0;
      for (; i + 8 <= dim; i += 8) {
        const __m256 normed = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + i), vm), vr);
        _mm256_storeu_ps(yr + i,
                         _mm256_fmadd_ps(normed, _mm256_loadu_ps(weight + i), _mm256_loadu_ps(bias + i)));
      }
      for (; i < dim; ++i) yr[i] = (xr[i] - mean) * rstd * weight[i] + bias[i];
    }
  });
}

void layer_norm_backward(const float* dy, const float* x, const float* weight, float* dx, float* dweight,
                         float* dbias, std::int64_t rows, std::int64_t dim, float eps, int threads) {
  // Per half: its own dweight/dbias partial sums, added at the end (no shared writes).
  std::vector<float> partial(static_cast<std::size_t>(4 * dim), 0.0f);
  struct Half {
    float* dw;
    float* db;
  };
  const Half halves[2] = {{partial.data(), partial.data() + dim}, {partial.data() + 2 * dim, partial.data() + 3 * dim}};
  const bool two = threads >= 2 && rows >= 2 && rows * dim >= kParallelFloats;
  auto body = [&](std::int64_t lo, std::int64_t hi) {
    const Half& h = halves[two && lo > 0 ? 1 : 0];
    const float inv_dim = 1.0f / static_cast<float>(dim);
    std::vector<float> normed(static_cast<std::size_t>(dim));
    for (std::int64_t r = lo; r < hi; ++r) {
      const float* xr = x + r * dim;
      const float* dyr = dy + r * dim;
      float* dxr = dx + r * dim;
      const float mean = row_sum(xr, dim) * inv_dim;
      float ss = 0;
      for (std::int64_t i = 0; i < dim; ++i) ss += (xr[i] - mean) * (xr[i] - mean);
      const float rstd = 1.0f / std::sqrt(ss * inv_dim + eps);
      // g = dy·w; dx = rstd·(g − mean(g) − x̂·mean(g·x̂)); dw += dy·x̂; db += dy
      float sum_g = 0, sum_gx = 0;
      for (std::int64_t i = 0; i < dim; ++i) {
        const float xh = (xr[i] - mean) * rstd;
        normed[static_cast<std::size_t>(i)] = xh;
        const float g = dyr[i] * weight[i];
        sum_g += g;
        sum_gx += g * xh;
        h.dw[i] += dyr[i] * xh;
        h.db[i] += dyr[i];
      }
      const float mg = sum_g * inv_dim, mgx = sum_gx * inv_dim;
      for (std::int64_t i = 0; i < dim; ++i)
        dxr[i] = rstd * (dyr[i] * weight[i] - mg - normed[static_cast<std::size_t>(i)] * mgx);
    }
  };
  if (two)
    split_range(rows, dim, threads, body);
  else
    body(0, rows);
  for (std::int64_t i = 0; i < dim; ++i) {
    dweight[i] = halves[0].dw[i] + halves[1].dw[i];
    dbias[i] = halves[0].db[i] + halves[1].db[i];
  }
}

}  // namespace peftjs
