// 8-lane float vectors (AVX2 + FMA) for the generic kernels of kernels_impl.h. Include only inside a region
// compiled for avx2,fma (isa_avx2.cc), inside an anonymous namespace.
#pragma once

#include <immintrin.h>

#include <cstdint>

struct VecAvx2 {
  using R = __m256;
  static constexpr int W = 8;

  static R zero() { return _mm256_setzero_ps(); }
  static R set1(float x) { return _mm256_set1_ps(x); }
  static R loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, R v) { _mm256_storeu_ps(p, v); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R div(R a, R b) { return _mm256_div_ps(a, b); }
  static R max(R a, R b) { return _mm256_max_ps(a, b); }
  static R min(R a, R b) { return _mm256_min_ps(a, b); }
  static R fmadd(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }    // a·b + c
  static R fnmadd(R a, R b, R c) { return _mm256_fnmadd_ps(a, b, c); }  // c − a·b
  static R abs(R a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  // |a| with the sign of s.
  static R copysign(R a, R s) { return _mm256_or_ps(a, _mm256_and_ps(s, _mm256_set1_ps(-0.0f))); }
  static R round(R a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // 2^n for integral n ≥ −127 held in a float vector (n = −127 gives 0).
  static R pow2(R n) {
    __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    e = _mm256_max_epi32(e, _mm256_setzero_si256());
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  }
  static float hsum(R v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(R v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // The first `count` (< W) floats of p, `fill` in the other lanes.
  static R load_first(const float* p, std::int64_t count, float fill) {
    alignas(32) float lanes[W];
    for (int j = 0; j < W; ++j) lanes[j] = j < count ? p[j] : fill;
    return _mm256_load_ps(lanes);
  }
  static void store_first(float* p, R v, std::int64_t count) {
    alignas(32) float lanes[W];
    _mm256_store_ps(lanes, v);
    for (std::int64_t j = 0; j < count; ++j) p[j] = lanes[j];
  }
  // v with the lanes from `count` on set to 0.
  static R keep_first(R v, std::int64_t count) {
    const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), index));
    return _mm256_and_ps(v, keep);
  }
};
