// The kernels of kernel_table.h written once over a vector type V (vec_avx2.h, vec_avx512.h) and, for the GEMM,
// a micro-kernel K. Included by isa_avx2.cc and isa_avx512.cc inside their `#pragma GCC target` regions, so each
// instantiation is compiled for that ISA; everything here has internal linkage, so the two copies never meet.
//
// GEMM layout (row-major C, op(A) is m×k, op(B) is k×n):
//   for each k block (kc ≤ K::KC, balanced):
//     for each column block of B (nc columns, kc×nc floats sized for L2):
//       pack that block of op(B) into K::NR-column micro-panels, k-major, zero-padded
//       for each K::MR-row micro-panel of op(A):
//         untransposed A with K::MR full rows: read in place (row pointers, one k offset)
//         otherwise: copy the MR×kc panel into a small k-major buffer (zero rows past m), which stays in L1
//         for each micro-panel of B: the K tile over kc; the first k block stores C, later ones add to it, the
//         last one applies the epilogue (bias, GELU)
//
// Element-wise kernels: GELU uses the Abramowitz–Stegun 7.1.26 erf of tfjs's Erf kernel (|error| ≤ 1.5e-7); exp
// is a Cephes-style range reduction + degree-6 polynomial (≈1 ulp); LayerNorm is PyTorch's (biased variance, eps
// inside the square root, two passes).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernel_table.h"
#include "threads.h"

namespace peftjs {
namespace {

using i64 = std::int64_t;

// ---------------------------------------------------------------------------------------------------------------
// Vector maths

template <class V>
inline typename V::R exp_v(typename V::R x) {
  // exp(x) = 2^n · exp(r), n = round(x·log2 e), r = x − n·ln 2 (ln 2 split in two for exactness).
  x = V::min(V::max(x, V::set1(-88.3762626647949f)), V::set1(88.3762626647949f));
  const typename V::R n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
  typename V::R r = V::fnmadd(n, V::set1(0.693359375f), x);
  r = V::fnmadd(n, V::set1(-2.12194440e-4f), r);
  typename V::R p = V::set1(1.9875691500e-4f);
  p = V::fmadd(p, r, V::set1(1.3981999507e-3f));
  p = V::fmadd(p, r, V::set1(8.3334519073e-3f));
  p = V::fmadd(p, r, V::set1(4.1665795894e-2f));
  p = V::fmadd(p, r, V::set1(1.6666665459e-1f));
  p = V::fmadd(p, r, V::set1(5.0000001201e-1f));
  p = V::fmadd(p, V::mul(r, r), V::add(r, V::set1(1.0f)));
  return V::mul(p, V::pow2(n));
}

// Φ(x) = ½(1 + erf(x/√2)) and φ(x) = exp(−x²/2)/√(2π), together (they share exp(−x²/2)).
template <class V>
inline void cdf_pdf_v(typename V::R x, typename V::R* cdf, typename V::R* pdf) {
  using R = typename V::R;
  const R z = V::mul(x, V::set1(0.70710678118654752f));  // x/√2
  const R az = V::abs(z);
  const R t = V::div(V::set1(1.0f), V::fmadd(V::set1(0.3275911f), az, V::set1(1.0f)));
  R poly = V::set1(1.061405429f);
  poly = V::fmadd(poly, t, V::set1(-1.453152027f));
  poly = V::fmadd(poly, t, V::set1(1.421413741f));
  poly = V::fmadd(poly, t, V::set1(-0.284496736f));
  poly = V::fmadd(poly, t, V::set1(0.254829592f));
  poly = V::mul(poly, t);
  const R g = exp_v<V>(V::sub(V::zero(), V::mul(az, az)));  // exp(−z²) = exp(−x²/2)
  const R erf = V::copysign(V::fnmadd(poly, g, V::set1(1.0f)), z);
  *cdf = V::mul(V::set1(0.5f), V::add(V::set1(1.0f), erf));
  *pdf = V::mul(g, V::set1(0.39894228040143268f));
}

template <class V>
inline typename V::R gelu_v(typename V::R x) {
  typename V::R cdf, pdf;
  cdf_pdf_v<V>(x, &cdf, &pdf);
  return V::mul(x, cdf);
}

// ---------------------------------------------------------------------------------------------------------------
// Splitting work in two halves (one per core)

constexpr i64 kParallelFloats = 1 << 15;  // below this the helper hand-off costs more than it saves

template <typename Body>
void split_range(i64 n, i64 grain, int threads, Body body) {
  if (threads < 2 || n * grain < kParallelFloats || n < 2) {
    body(0, n);
    return;
  }
  struct Ctx {
    Body* body;
    i64 n;
  } ctx{&body, n};
  run_two_parts(
      threads,
      [](void* raw, int index) {
        auto* c = static_cast<Ctx*>(raw);
        const i64 mid = c->n / 2;
        if (index == 0)
          (*c->body)(0, mid);
        else
          (*c->body)(mid, c->n);
      },
      &ctx);
}

// out[i] = op(in[0][i], …, in[K−1][i]) over [0, n), W lanes at a time; the tail goes through the same vector op
// on zero-padded lanes, so every element sees exactly the same arithmetic.
template <class V, int K, typename Op>
void map_elements(const float* const (&in)[K], float* out, i64 n, int threads, Op op) {
  split_range(n, 1, threads, [&](i64 lo, i64 hi) {
    typename V::R v[K];
    i64 i = lo;
    for (; i + V::W <= hi; i += V::W) {
      for (int k = 0; k < K; ++k) v[k] = V::loadu(in[k] + i);
      V::storeu(out + i, op(v));
    }
    if (i == hi) return;
    for (int k = 0; k < K; ++k) v[k] = V::load_first(in[k] + i, hi - i, 0.0f);
    V::store_first(out + i, op(v), hi - i);
  });
}

template <class V>
inline float row_sum(const float* x, i64 d) {
  typename V::R acc = V::zero();
  i64 i = 0;
  for (; i + V::W <= d; i += V::W) acc = V::add(acc, V::loadu(x + i));
  float s = V::hsum(acc);
  for (; i < d; ++i) s += x[i];
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// GELU and LayerNorm

template <class V>
void gelu_forward(const float* x, float* y, i64 n, int threads) {
  const float* const in[1] = {x};
  map_elements<V, 1>(in, y, n, threads, [](const typename V::R* v) { return gelu_v<V>(v[0]); });
}

template <class V>
void gelu_backward(const float* dy, const float* x, float* dx, i64 n, int threads) {
  // d/dx [x·Φ(x)] = Φ(x) + x·φ(x)
  const float* const in[2] = {dy, x};
  map_elements<V, 2>(in, dx, n, threads, [](const typename V::R* v) {
    typename V::R cdf, pdf;
    cdf_pdf_v<V>(v[1], &cdf, &pdf);
    return V::mul(v[0], V::fmadd(v[1], pdf, cdf));
  });
}

template <class V>
void layer_norm_forward(const float* x, const float* weight, const float* bias, float* y, i64 rows, i64 dim,
                        float eps, int threads) {
  using R = typename V::R;
  split_range(rows, dim, threads, [&](i64 lo, i64 hi) {
    const float inv_dim = 1.0f / static_cast<float>(dim);
    for (i64 r = lo; r < hi; ++r) {
      const float* xr = x + r * dim;
      float* yr = y + r * dim;
      const float mean = row_sum<V>(xr, dim) * inv_dim;
      // Two passes (mean, then squared deviations), as tfjs's moments and PyTorch's result: no cancellation.
      const R vm = V::set1(mean);
      R acc = V::zero();
      i64 i = 0;
      for (; i + V::W <= dim; i += V::W) {
        const R d = V::sub(V::loadu(xr + i), vm);
        acc = V::fmadd(d, d, acc);
      }
      float ss = V::hsum(acc);
      for (; i < dim; ++i) ss += (xr[i] - mean) * (xr[i] - mean);
      const float rstd = 1.0f / std::sqrt(ss * inv_dim + eps);
      const R vr = V::set1(rstd);
      i = 0;
      for (; i + V::W <= dim; i += V::W) {
        const R normed = V::mul(V::sub(V::loadu(xr + i), vm), vr);
        V::storeu(yr + i, V::fmadd(normed, V::loadu(weight + i), V::loadu(bias + i)));
      }
      for (; i < dim; ++i) yr[i] = (xr[i] - mean) * rstd * weight[i] + bias[i];
    }
  });
}

template <class V>
void layer_norm_backward(const float* dy, const float* x, const float* weight, float* dx, float* dweight,
                         float* dbias, i64 rows, i64 dim, float eps, int threads) {
  using R = typename V::R;
  // Per half: its own dweight/dbias partial sums, added at the end (no shared writes).
  std::vector<float> partial(static_cast<std::size_t>(4 * dim), 0.0f);
  struct Half {
    float* dw;
    float* db;
  };
  const Half halves[2] = {{partial.data(), partial.data() + dim},
                          {partial.data() + 2 * dim, partial.data() + 3 * dim}};
  const bool two = threads >= 2 && rows >= 2 && rows * dim >= kParallelFloats;
  auto body = [&](i64 lo, i64 hi) {
    const Half& h = halves[two && lo > 0 ? 1 : 0];
    const float inv_dim = 1.0f / static_cast<float>(dim);
    const i64 full = dim / V::W * V::W;
    const i64 rest = dim - full;
    for (i64 r = lo; r < hi; ++r) {
      const float* xr = x + r * dim;
      const float* dyr = dy + r * dim;
      float* dxr = dx + r * dim;
      const float mean = row_sum<V>(xr, dim) * inv_dim;
      const R vm = V::set1(mean);
      // Tails load x padded with the mean (so x̂ = 0 there) and dy padded with 0: every lane sees the same
      // arithmetic and the padding adds nothing to the sums.
      R acc = V::zero();
      for (i64 i = 0; i < full; i += V::W) {
        const R d = V::sub(V::loadu(xr + i), vm);
        acc = V::fmadd(d, d, acc);
      }
      if (rest > 0) {
        const R d = V::sub(V::load_first(xr + full, rest, mean), vm);
        acc = V::fmadd(d, d, acc);
      }
      const float rstd = 1.0f / std::sqrt(V::hsum(acc) * inv_dim + eps);
      const R vr = V::set1(rstd);
      // g = dy·w; dx = rstd·(g − mean(g) − x̂·mean(g·x̂)); dw += dy·x̂; db += dy
      R sum_g = V::zero(), sum_gx = V::zero();
      auto accumulate = [&](R xh, R dyv, R w, float* dw, float* db, i64 count) {
        const R g = V::mul(dyv, w);
        sum_g = V::add(sum_g, g);
        sum_gx = V::fmadd(g, xh, sum_gx);
        if (count == V::W) {
          V::storeu(dw, V::fmadd(dyv, xh, V::loadu(dw)));
          V::storeu(db, V::add(V::loadu(db), dyv));
        } else {
          V::store_first(dw, V::fmadd(dyv, xh, V::load_first(dw, count, 0.0f)), count);
          V::store_first(db, V::add(V::load_first(db, count, 0.0f), dyv), count);
        }
      };
      for (i64 i = 0; i < full; i += V::W)
        accumulate(V::mul(V::sub(V::loadu(xr + i), vm), vr), V::loadu(dyr + i), V::loadu(weight + i), h.dw + i,
                   h.db + i, V::W);
      if (rest > 0)
        accumulate(V::mul(V::sub(V::load_first(xr + full, rest, mean), vm), vr), V::load_first(dyr + full, rest, 0.0f),
                   V::load_first(weight + full, rest, 0.0f), h.dw + full, h.db + full, rest);
      const R mg = V::set1(V::hsum(sum_g) * inv_dim);
      const R mgx = V::set1(V::hsum(sum_gx) * inv_dim);
      auto dx_of = [&](R xv, R dyv, R w) {
        const R xh = V::mul(V::sub(xv, vm), vr);
        return V::mul(vr, V::fnmadd(xh, mgx, V::sub(V::mul(dyv, w), mg)));
      };
      for (i64 i = 0; i < full; i += V::W)
        V::storeu(dxr + i, dx_of(V::loadu(xr + i), V::loadu(dyr + i), V::loadu(weight + i)));
      if (rest > 0)
        V::store_first(dxr + full,
                       dx_of(V::load_first(xr + full, rest, mean), V::load_first(dyr + full, rest, 0.0f),
                             V::load_first(weight + full, rest, 0.0f)),
                       rest);
    }
  };
  if (two)
    split_range(rows, dim, threads, body);
  else
    body(0, rows);
  for (i64 i = 0; i < dim; ++i) {
    dweight[i] = halves[0].dw[i] + halves[1].dw[i];
    dbias[i] = halves[0].db[i] + halves[1].db[i];
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Softmax in up to two segments of a row

// y[0:len] = weight · softmax(x[0:len]).
template <class V>
void softmax_segment(const float* x, float* y, i64 len, float weight) {
  using R = typename V::R;
  if (len <= 0) return;
  if (weight == 0.0f) {
    for (i64 i = 0; i < len; ++i) y[i] = 0.0f;
    return;
  }
  R vmax = V::set1(-INFINITY);
  i64 i = 0;
  for (; i + V::W <= len; i += V::W) vmax = V::max(vmax, V::loadu(x + i));
  if (i < len) vmax = V::max(vmax, V::load_first(x + i, len - i, -INFINITY));
  const R m = V::set1(V::hmax(vmax));
  R vsum = V::zero();
  for (i = 0; i + V::W <= len; i += V::W) {
    const R e = exp_v<V>(V::sub(V::loadu(x + i), m));
    V::storeu(y + i, e);
    vsum = V::add(vsum, e);
  }
  if (i < len) {
    const R e = V::keep_first(exp_v<V>(V::sub(V::load_first(x + i, len - i, 0.0f), m)), len - i);
    V::store_first(y + i, e, len - i);
    vsum = V::add(vsum, e);
  }
  const R scale = V::set1(weight / V::hsum(vsum));
  for (i = 0; i + V::W <= len; i += V::W) V::storeu(y + i, V::mul(V::loadu(y + i), scale));
  if (i < len) V::store_first(y + i, V::mul(V::load_first(y + i, len - i, 0.0f), scale), len - i);
}

// dx[0:len] = y·(dy − Σ y·dy / weight).
template <class V>
void softmax_segment_grad(const float* dy, const float* y, float* dx, i64 len, float weight) {
  using R = typename V::R;
  if (len <= 0) return;
  if (weight == 0.0f) {
    for (i64 i = 0; i < len; ++i) dx[i] = 0.0f;
    return;
  }
  R acc = V::zero();
  i64 i = 0;
  for (; i + V::W <= len; i += V::W) acc = V::fmadd(V::loadu(y + i), V::loadu(dy + i), acc);
  float dot = V::hsum(acc);
  for (; i < len; ++i) dot += y[i] * dy[i];
  const R s = V::set1(dot / weight);
  for (i = 0; i + V::W <= len; i += V::W)
    V::storeu(dx + i, V::mul(V::loadu(y + i), V::sub(V::loadu(dy + i), s)));
  if (i < len) {
    const R d = V::mul(V::load_first(y + i, len - i, 0.0f), V::sub(V::load_first(dy + i, len - i, 0.0f), s));
    V::store_first(dx + i, d, len - i);
  }
}

template <class V>
void softmax_forward(const float* x, float* y, i64 rows, i64 n, i64 split, float w0, float w1, int threads) {
  split_range(rows, n, threads, [&](i64 lo, i64 hi) {
    for (i64 r = lo; r < hi; ++r) {
      softmax_segment<V>(x + r * n, y + r * n, split, w0);
      softmax_segment<V>(x + r * n + split, y + r * n + split, n - split, w1);
    }
  });
}

template <class V>
void softmax_backward(const float* dy, const float* y, float* dx, i64 rows, i64 n, i64 split, float w0, float w1,
                      int threads) {
  split_range(rows, n, threads, [&](i64 lo, i64 hi) {
    for (i64 r = lo; r < hi; ++r) {
      const i64 o = r * n;
      softmax_segment_grad<V>(dy + o, y + o, dx + o, split, w0);
      softmax_segment_grad<V>(dy + o + split, y + o + split, dx + o + split, n - split, w1);
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Element-wise binary ops and transposes (data movement the JS backends run on one thread)

template <class V, int Op>
inline typename V::R apply_op(typename V::R a, typename V::R b) {
  if constexpr (Op == 0) return V::add(a, b);
  if constexpr (Op == 1) return V::sub(a, b);
  return V::mul(a, b);
}

template <class V, int Op>
void binary_op(const float* a, const float* b, float* y, i64 n, i64 period, int threads) {
  using R = typename V::R;
  if (period == n || period == 1) {
    split_range(n, 1, threads, [&](i64 lo, i64 hi) {
      const bool scalar = period == 1 && n != 1;
      const R bs = V::set1(b[0]);
      i64 i = lo;
      for (; i + V::W <= hi; i += V::W) V::storeu(y + i, apply_op<V, Op>(V::loadu(a + i), scalar ? bs : V::loadu(b + i)));
      if (i < hi) {
        const R bv = scalar ? bs : V::load_first(b + i, hi - i, 0.0f);
        V::store_first(y + i, apply_op<V, Op>(V::load_first(a + i, hi - i, 0.0f), bv), hi - i);
      }
    });
    return;
  }
  // b repeats every `period` floats: rows of a.
  split_range(n / period, period, threads, [&](i64 lo, i64 hi) {
    for (i64 r = lo; r < hi; ++r) {
      const float* ar = a + r * period;
      float* yr = y + r * period;
      i64 j = 0;
      for (; j + V::W <= period; j += V::W) V::storeu(yr + j, apply_op<V, Op>(V::loadu(ar + j), V::loadu(b + j)));
      if (j < period)
        V::store_first(yr + j,
                       apply_op<V, Op>(V::load_first(ar + j, period - j, 0.0f), V::load_first(b + j, period - j, 0.0f)),
                       period - j);
    }
  });
}

template <class V>
void binary(int op, const float* a, const float* b, float* y, i64 n, i64 period, int threads) {
  if (n <= 0) return;
  if (op == 0)
    binary_op<V, 0>(a, b, y, n, period, threads);
  else if (op == 1)
    binary_op<V, 1>(a, b, y, n, period, threads);
  else
    binary_op<V, 2>(a, b, y, n, period, threads);
}

// Copies n floats W at a time (short runs: cheaper than a memcpy call each).
template <class V>
inline void copy_run(const float* src, float* dst, i64 n) {
  i64 i = 0;
  for (; i + V::W <= n; i += V::W) V::storeu(dst + i, V::loadu(src + i));
  if (i < n) V::store_first(dst + i, V::load_first(src + i, n - i, 0.0f), n - i);
}

template <class V>
void transpose(const float* x, float* y, const i64* shape, const int* perm, int rank, int threads) {
  constexpr int kMaxRank = 8;
  i64 in_stride[kMaxRank];
  i64 total = 1;
  for (int d = rank - 1; d >= 0; --d) {
    in_stride[d] = total;
    total *= shape[d];
  }
  if (total <= 0) return;
  // Trailing output axes that are x's trailing axes in order form one contiguous run.
  int kept = rank;
  i64 run = 1;
  while (kept > 0 && perm[kept - 1] == kept - 1) {
    run *= shape[kept - 1];
    --kept;
  }
  // Output axes [0, kept) are walked; the source offset of each output row follows their strides.
  i64 out_dims[kMaxRank], src_stride[kMaxRank];
  for (int d = 0; d < kept; ++d) {
    out_dims[d] = shape[perm[d]];
    src_stride[d] = in_stride[perm[d]];
  }
  const i64 rows = total / run;
  // When the last axis moves, copy one element at a time; the innermost walked axis then steps through x.
  split_range(rows, run, threads, [&](i64 lo, i64 hi) {
    i64 index[kMaxRank] = {};
    i64 rest = lo, src = 0;
    for (int d = kept - 1; d >= 0; --d) {
      index[d] = rest % out_dims[d];
      rest /= out_dims[d];
      src += index[d] * src_stride[d];
    }
    for (i64 r = lo; r < hi; ++r) {
      if (run == 1)
        y[r] = x[src];
      else if (run <= 1024)
        copy_run<V>(x + src, y + r * run, run);
      else
        std::memcpy(y + r * run, x + src, sizeof(float) * static_cast<std::size_t>(run));
      for (int d = kept - 1; d >= 0; --d) {
        src += src_stride[d];
        if (++index[d] < out_dims[d]) break;
        src -= out_dims[d] * src_stride[d];
        index[d] = 0;
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// GEMM epilogue outside the micro-kernel: rows×cols of C (row stride ldc) get + bias, then GELU.

template <class V>
void epilogue_rows(float* c, i64 ldc, i64 rows, i64 cols, const float* bias, bool gelu) {
  using R = typename V::R;
  for (i64 r = 0; r < rows; ++r) {
    float* row = c + r * ldc;
    i64 j = 0;
    for (; j + V::W <= cols; j += V::W) {
      R v = V::loadu(row + j);
      if (bias != nullptr) v = V::add(v, V::loadu(bias + j));
      if (gelu) v = gelu_v<V>(v);
      V::storeu(row + j, v);
    }
    if (j < cols) {
      R v = V::load_first(row + j, cols - j, 0.0f);
      if (bias != nullptr) v = V::add(v, V::load_first(bias + j, cols - j, 0.0f));
      if (gelu) v = gelu_v<V>(v);
      V::store_first(row + j, v, cols - j);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// GEMM packing

// In-register transpose of an 8×8 block held in r[0..7] (rows in, columns out).
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]);
  const __m256 t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]);
  const __m256 t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]);
  const __m256 t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]);
  const __m256 t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44);
  const __m256 u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44);
  const __m256 u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44);
  const __m256 u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44);
  const __m256 u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Packs op(B)[p0 : p0+kc, j0 : j0+nc] into NR-column micro-panels: panel q holds columns j0+NR·q.., k-major,
// zero-padded to NR columns. NR is a multiple of 8.
template <int NR>
void pack_b(const GemmShape& s, const float* b, i64 p0, i64 kc, i64 j0, i64 nc, float* dst) {
  for (i64 jq = 0; jq < nc; jq += NR) {
    const i64 nr = std::min<i64>(NR, nc - jq);
    const i64 j = j0 + jq;
    float* panel = dst + jq * kc;
    if (!s.trans_b) {
      // B stored [k, n]: row p of the panel is NR contiguous floats.
      const float* src = b + p0 * s.n + j;
      if (nr == NR) {
        for (i64 p = 0; p < kc; ++p)
          for (int q = 0; q < NR; q += 8)
            _mm256_store_ps(panel + p * NR + q, _mm256_loadu_ps(src + p * s.n + q));
      } else {
        for (i64 p = 0; p < kc; ++p) {
          i64 q = 0;
          for (; q < nr; ++q) panel[p * NR + q] = src[p * s.n + q];
          for (; q < NR; ++q) panel[p * NR + q] = 0.0f;
        }
      }
    } else {
      // B stored [n, k]: column j of op(B) is row j of storage; transpose 8×8 blocks.
      const float* src = b + j * s.k + p0;
      i64 p = 0;
      if (nr == NR) {
        for (; p + 8 <= kc; p += 8) {
          for (int group = 0; group < NR / 8; ++group) {
            __m256 r[8];
            for (int q = 0; q < 8; ++q) r[q] = _mm256_loadu_ps(src + (group * 8 + q) * s.k + p);
            transpose8(r);
            for (int q = 0; q < 8; ++q) _mm256_store_ps(panel + (p + q) * NR + group * 8, r[q]);
          }
        }
      }
      for (; p < kc; ++p) {
        i64 q = 0;
        for (; q < nr; ++q) panel[p * NR + q] = src[q * s.k + p];
        for (; q < NR; ++q) panel[p * NR + q] = 0.0f;
      }
    }
  }
}

// Packs op(A)[i0 : i0+mr, p0 : p0+kc] k-major with MR floats per k (rows past mr are zero).
template <int MR>
void pack_a(const GemmShape& s, const float* a, i64 i0, i64 mr, i64 p0, i64 kc, float* dst) {
  if (s.trans_a) {
    // A stored [k, m]: the MR values of one k are contiguous.
    const float* src = a + p0 * s.m + i0;
    if (mr == MR) {
      for (i64 p = 0; p < kc; ++p)
        for (int r = 0; r < MR; ++r) dst[p * MR + r] = src[p * s.m + r];
    } else {
      for (i64 p = 0; p < kc; ++p) {
        i64 r = 0;
        for (; r < mr; ++r) dst[p * MR + r] = src[p * s.m + r];
        for (; r < MR; ++r) dst[p * MR + r] = 0.0f;
      }
    }
  } else {
    // A stored [m, k]: gather one value from each row per k.
    const float* src = a + i0 * s.k + p0;
    for (i64 p = 0; p < kc; ++p) {
      i64 r = 0;
      for (; r < mr; ++r) dst[p * MR + r] = src[r * s.k + p];
      for (; r < MR; ++r) dst[p * MR + r] = 0.0f;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// GEMM driver over a micro-kernel K:
//   K::MR, K::NR          tile rows and packed B panel width
//   K::KC, K::B_BLOCK     k block and floats of packed B per column block
//   K::tile(kc, a, lda, packed_a, b, c, ldc, rows, cols, mode)   one tile of C (rows ≤ MR, cols ≤ NR)

struct TileMode {
  bool accumulate;     // add to C (a later k block) instead of overwriting it
  const float* bias;   // last k block only: bias of the tile's first column, or null
  bool gelu;           // last k block only
};

// Per-thread scratch: packed B block and one packed A micro-panel.
template <class K>
struct Workspace {
  float* b_pack = nullptr;
  std::size_t b_cap = 0;
  float* a_pack = nullptr;

  Workspace() {
    // Slack after the A panel: packers and kernels may touch a full vector past the last row.
    a_pack = static_cast<float*>(std::aligned_alloc(64, sizeof(float) * (K::KC * K::MR + 64)));
  }
  ~Workspace() {
    std::free(b_pack);
    std::free(a_pack);
  }
  float* b_buffer(std::size_t floats) {
    if (floats > b_cap) {
      std::free(b_pack);
      std::size_t bytes = ((floats * sizeof(float)) + 63) / 64 * 64;
      b_pack = static_cast<float*>(std::aligned_alloc(64, bytes));
      b_cap = b_pack != nullptr ? floats : 0;
    }
    return b_pack;
  }
};

template <class K>
Workspace<K>& workspace() {
  static thread_local Workspace<K> ws;
  return ws;
}

// One product restricted to the columns [n_begin, n_end) of C (threads split columns; each packs its own B).
template <class K>
void sgemm_columns(const GemmShape& s, const float* a, const float* b, float* c, i64 n_begin, i64 n_end,
                   const Epilogue& ep) {
  const i64 m = s.m, n = s.n, k = s.k;
  if (m <= 0 || n_end <= n_begin) return;
  if (k <= 0) {
    for (i64 i = 0; i < m; ++i) std::fill(c + i * n + n_begin, c + i * n + n_end, 0.0f);
    if (ep.bias != nullptr || ep.gelu)
      epilogue_rows<typename K::Vec>(c + n_begin, n, m, n_end - n_begin,
                                     ep.bias != nullptr ? ep.bias + n_begin : nullptr, ep.gelu);
    return;
  }
  Workspace<K>& ws = workspace<K>();
  const i64 k_blocks = (k + K::KC - 1) / K::KC;
  const i64 kc_nominal = (k + k_blocks - 1) / k_blocks;
  i64 nc_max = std::max<i64>(K::NR, (K::B_BLOCK / kc_nominal) / K::NR * K::NR);
  // Balance column blocks so the last one is not a sliver.
  const i64 width = n_end - n_begin;
  const i64 n_blocks = (width + nc_max - 1) / nc_max;
  nc_max = ((width + n_blocks - 1) / n_blocks + K::NR - 1) / K::NR * K::NR;
  float* bp = ws.b_buffer(static_cast<std::size_t>(kc_nominal * nc_max));
  if (bp == nullptr) std::abort();
  float* ap = ws.a_pack;

  for (i64 p0 = 0; p0 < k; p0 += kc_nominal) {
    const i64 kc = std::min(kc_nominal, k - p0);
    const bool last = p0 + kc >= k;
    for (i64 j0 = n_begin; j0 < n_end; j0 += nc_max) {
      const i64 nc = std::min(nc_max, n_end - j0);
      pack_b<K::NR>(s, b, p0, kc, j0, nc, bp);
      for (i64 i0 = 0; i0 < m; i0 += K::MR) {
        const i64 mr = std::min<i64>(K::MR, m - i0);
        const bool direct = !s.trans_a && mr == K::MR;
        if (!direct) pack_a<K::MR>(s, a, i0, mr, p0, kc, ap);
        const float* a_panel = direct ? a + i0 * k + p0 : ap;
        float* c_rows = c + i0 * n;
        for (i64 jq = 0; jq < nc; jq += K::NR) {
          const i64 nr = std::min<i64>(K::NR, nc - jq);
          const TileMode mode{p0 > 0, last && ep.bias != nullptr ? ep.bias + j0 + jq : nullptr,
                              last && ep.gelu};
          K::tile(kc, a_panel, direct ? k : 0, !direct, bp + jq * kc, c_rows + j0 + jq, n, static_cast<int>(mr),
                  static_cast<int>(nr), mode);
        }
      }
    }
  }
}

template <class K>
void sgemm_batched(const GemmShape& s, i64 batch, const float* a, i64 stride_a, const float* b, i64 stride_b,
                   float* c, const Epilogue& ep, int threads) {
  if (batch <= 0 || s.m <= 0 || s.n <= 0) return;
  const i64 stride_c = s.m * s.n;
  const double flops = 2.0 * static_cast<double>(batch) * s.m * s.n * std::max<i64>(s.k, 1);
  struct Job {
    const GemmShape* s;
    i64 batch;
    const float* a;
    i64 stride_a;
    const float* b;
    i64 stride_b;
    float* c;
    i64 stride_c;
    const Epilogue* ep;
    i64 split;  // batches [0, split) on part 0 (batch ≥ 2), or columns [0, split) (batch 1)
  } job{&s, batch, a, stride_a, b, stride_b, c, stride_c, &ep, 0};
  auto run_batches = [](const Job& j, i64 lo, i64 hi) {
    for (i64 i = lo; i < hi; ++i)
      sgemm_columns<K>(*j.s, j.a + i * j.stride_a, j.b + i * j.stride_b, j.c + i * j.stride_c, 0, j.s->n, *j.ep);
  };
  // Below ~4 MFLOP the hand-off to the helper costs more than it saves.
  if (threads <= 1 || flops < 4e6) {
    run_batches(job, 0, batch);
    return;
  }
  if (batch >= 2) {
    job.split = (batch + 1) / 2;
    run_two_parts(
        threads,
        [](void* raw, int part) {
          const Job& j = *static_cast<const Job*>(raw);
          const i64 lo = part == 0 ? 0 : j.split;
          const i64 hi = part == 0 ? j.split : j.batch;
          for (i64 i = lo; i < hi; ++i)
            sgemm_columns<K>(*j.s, j.a + i * j.stride_a, j.b + i * j.stride_b, j.c + i * j.stride_c, 0, j.s->n,
                             *j.ep);
        },
        &job);
    return;
  }
  if (s.n < 2 * K::NR) {
    run_batches(job, 0, 1);
    return;
  }
  job.split = (s.n / 2 + K::NR - 1) / K::NR * K::NR;
  run_two_parts(
      threads,
      [](void* raw, int part) {
        const Job& j = *static_cast<const Job*>(raw);
        if (part == 0)
          sgemm_columns<K>(*j.s, j.a, j.b, j.c, 0, j.split, *j.ep);
        else
          sgemm_columns<K>(*j.s, j.a, j.b, j.c, j.split, j.s->n, *j.ep);
      },
      &job);
}

// ---------------------------------------------------------------------------------------------------------------
// Peak: a register-only FMA loop (12 independent accumulators: enough to cover FMA latency × ports, few enough to
// stay in AVX2's 16 registers), timed in chunks of ~0.1 ms; the fastest chunk counts, so time slices lost to other
// processes do not lower the result.

template <class V>
double fma_loop_gflops(double seconds) {
  using R = typename V::R;
  constexpr int kAcc = 12;
  constexpr int kChunk = 1 << 14;  // iterations of kAcc FMAs
  R acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = V::set1(static_cast<float>(i));
  const R x = V::set1(0.999999f), y = V::set1(1e-7f);
  const auto start = std::chrono::steady_clock::now();
  double best = 0;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int it = 0; it < kChunk; ++it) {
#pragma GCC unroll 12
      for (int i = 0; i < kAcc; ++i) acc[i] = V::fmadd(acc[i], x, y);
    }
    const auto t1 = std::chrono::steady_clock::now();
    const double chunk = std::chrono::duration<double>(t1 - t0).count();
    if (chunk > 0) best = std::max(best, static_cast<double>(kChunk) * kAcc * V::W * 2 / chunk / 1e9);
    if (std::chrono::duration<double>(t1 - start).count() >= seconds) break;
  }
  R total = acc[0];
  for (int i = 1; i < kAcc; ++i) total = V::add(total, acc[i]);
  volatile float sink = V::hsum(total);
  (void)sink;
  return best;
}

template <class V>
double peak_gflops(int threads, double seconds) {
  if (threads < 2) return fma_loop_gflops<V>(seconds);
  struct Ctx {
    double seconds;
    double result[2];
  } ctx{seconds, {0, 0}};
  run_two_parts(
      2,
      [](void* raw, int part) {
        auto* c = static_cast<Ctx*>(raw);
        c->result[part] = fma_loop_gflops<V>(c->seconds);
      },
      &ctx);
  return ctx.result[0] + ctx.result[1];
}

}  // namespace
}  // namespace peftjs
