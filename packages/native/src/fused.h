// Fused GELU and LayerNorm kernels (forward and backward), AVX2+FMA; implemented in fused.cc, which is compiled
// with -mavx2 -mfma like gemm.cc: callers must check the CPU before calling into it. Arrays are dense row-major
// float32; `threads` ≥ 2 lets the work split over the calling thread and the GEMM's helper thread.
#pragma once

#include <cstdint>

namespace peftjs {

// y = x·Φ(x) = ½·x·(1 + erf(x/√2)), n elements.
void gelu_forward(const float* x, float* y, std::int64_t n, int threads);

// dx = dy·(Φ(x) + x·φ(x)), the exact derivative of gelu_forward.
void gelu_backward(const float* dy, const float* x, float* dx, std::int64_t n, int threads);

// y[r] = (x[r] − mean) / √(var + eps) · weight + bias for each of `rows` rows of `dim` floats (biased variance).
void layer_norm_forward(const float* x, const float* weight, const float* bias, float* y, std::int64_t rows,
                        std::int64_t dim, float eps, int threads);

// Gradients of layer_norm_forward: dx [rows, dim], dweight [dim] and dbias [dim] (summed over rows).
void layer_norm_backward(const float* dy, const float* x, const float* weight, float* dx, float* dweight,
                         float* dbias, std::int64_t rows, std::int64_t dim, float eps, int threads);

}  // namespace peftjs
