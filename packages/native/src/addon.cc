// N-API glue for the PEFT.js GEMM. Compiled WITHOUT -mavx2/-mfma: this file checks the CPU and only then calls
// into gemm.cc, so loading the addon on an older CPU reports a reason instead of dying on an illegal instruction.
//
// Exports:
//   supported: boolean      AVX2 and FMA present and enabled by the OS
//   reason: string          why not (empty when supported)
//   isa: string             "avx2+fma"
//   maxThreads: number      threads the GEMM can use (1 or 2)
//   gemm(a, aOffset, b, bOffset, c, cOffset, batch, m, n, k, transA, transB, strideA, strideB, threads)
//        a, b, c are Float32Arrays (any backing buffer, including WebAssembly memory); offsets and strides count
//        floats. C[i] = op(A[i])·op(B[i]) is written at c[cOffset + i·m·n ...]. Throws on bad arguments.
//   gelu, geluGrad, layerNorm, layerNormGrad: the fused kernels of fused.h, same array/offset conventions.

#include <cpuid.h>
#include <node_api.h>

#include <cstdint>
#include <string>

#include "fused.h"
#include "gemm.h"

namespace {

struct CpuCheck {
  bool ok = false;
  std::string reason;
};

std::uint64_t read_xcr0() {
  std::uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}

CpuCheck check_cpu() {
  CpuCheck result;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
    result.reason = "CPUID leaf 1 unavailable";
    return result;
  }
  const bool has_fma = (ecx >> 12) & 1;
  const bool has_osxsave = (ecx >> 27) & 1;
  const bool has_avx = (ecx >> 28) & 1;
  if (!has_avx) {
    result.reason = "this CPU has no AVX";
    return result;
  }
  if (!has_osxsave || (read_xcr0() & 0x6) != 0x6) {
    result.reason = "the operating system has not enabled AVX register state (XCR0)";
    return result;
  }
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  bool has_avx2 = false;
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    has_avx2 = (ebx >> 5) & 1;
  }
  if (!has_avx2 && !has_fma) {
    result.reason = "this CPU lacks AVX2 and FMA";
    return result;
  }
  if (!has_avx2) {
    result.reason = "this CPU lacks AVX2";
    return result;
  }
  if (!has_fma) {
    result.reason = "this CPU lacks FMA";
    return result;
  }
  result.ok = true;
  return result;
}

const CpuCheck& cpu() {
  static const CpuCheck check = check_cpu();
  return check;
}

bool throw_type(napi_env env, const char* message) {
  napi_throw_type_error(env, nullptr, message);
  return false;
}

bool throw_range(napi_env env, const std::string& message) {
  napi_throw_range_error(env, nullptr, message.c_str());
  return false;
}

bool get_floats(napi_env env, napi_value value, const char* name, float** data, std::int64_t* length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed)
    return throw_type(env, (std::string(name) + " must be a Float32Array").c_str());
  napi_typedarray_type type;
  size_t count = 0;
  void* raw = nullptr;
  if (napi_get_typedarray_info(env, value, &type, &count, &raw, nullptr, nullptr) != napi_ok ||
      type != napi_float32_array)
    return throw_type(env, (std::string(name) + " must be a Float32Array").c_str());
  *data = static_cast<float*>(raw);
  *length = static_cast<std::int64_t>(count);
  return true;
}

bool get_count(napi_env env, napi_value value, const char* name, std::int64_t* out) {
  double d = 0;
  if (napi_get_value_double(env, value, &d) != napi_ok)
    return throw_type(env, (std::string(name) + " must be a number").c_str());
  // 2^52 keeps every product below exact-double range checks meaningful.
  if (!(d >= 0) || d > 4503599627370496.0 || d != static_cast<double>(static_cast<std::int64_t>(d)))
    return throw_range(env, std::string(name) + " must be a non-negative integer");
  *out = static_cast<std::int64_t>(d);
  return true;
}

bool get_flag(napi_env env, napi_value value, const char* name, bool* out) {
  if (napi_get_value_bool(env, value, out) != napi_ok)
    return throw_type(env, (std::string(name) + " must be a boolean").c_str());
  return true;
}

// Last float index touched by `batch` matrices of `size` floats `stride` apart, plus one; 0 when nothing is read.
bool span_fits(std::int64_t offset, std::int64_t batch, std::int64_t stride, std::int64_t size,
               std::int64_t length) {
  if (batch == 0 || size == 0) return true;
  const double end = static_cast<double>(offset) + static_cast<double>(batch - 1) * stride + size;
  return end <= static_cast<double>(length);
}

napi_value Gemm(napi_env env, napi_callback_info info) {
  if (!cpu().ok) {
    napi_throw_error(env, nullptr, ("@peftjs/native: " + cpu().reason).c_str());
    return nullptr;
  }
  size_t argc = 15;
  napi_value argv[15];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  if (argc != 15) {
    napi_throw_type_error(env, nullptr, "gemm expects 15 arguments");
    return nullptr;
  }
  float *a = nullptr, *b = nullptr, *c = nullptr;
  std::int64_t a_len = 0, b_len = 0, c_len = 0;
  std::int64_t a_off = 0, b_off = 0, c_off = 0, batch = 0, m = 0, n = 0, k = 0, stride_a = 0, stride_b = 0,
               threads = 1;
  bool trans_a = false, trans_b = false;
  if (!get_floats(env, argv[0], "a", &a, &a_len) || !get_count(env, argv[1], "aOffset", &a_off) ||
      !get_floats(env, argv[2], "b", &b, &b_len) || !get_count(env, argv[3], "bOffset", &b_off) ||
      !get_floats(env, argv[4], "c", &c, &c_len) || !get_count(env, argv[5], "cOffset", &c_off) ||
      !get_count(env, argv[6], "batch", &batch) || !get_count(env, argv[7], "m", &m) ||
      !get_count(env, argv[8], "n", &n) || !get_count(env, argv[9], "k", &k) ||
      !get_flag(env, argv[10], "transA", &trans_a) || !get_flag(env, argv[11], "transB", &trans_b) ||
      !get_count(env, argv[12], "strideA", &stride_a) || !get_count(env, argv[13], "strideB", &stride_b) ||
      !get_count(env, argv[14], "threads", &threads))
    return nullptr;

  if (static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) > 4.0e18 ||
      static_cast<double>(batch) * static_cast<double>(m) * static_cast<double>(n) > 4.0e18) {
    throw_range(env, "gemm dimensions are too large");
    return nullptr;
  }
  const std::int64_t size_a = m * k, size_b = k * n, size_c = m * n;
  if (!span_fits(c_off, batch, size_c, size_c, c_len)) {
    throw_range(env, "c is too small for batch·m·n floats at cOffset");
    return nullptr;
  }
  if (size_c > 0 && !span_fits(a_off, batch, stride_a, size_a, a_len)) {
    throw_range(env, "a is too small for the requested matrices at aOffset/strideA");
    return nullptr;
  }
  if (size_c > 0 && !span_fits(b_off, batch, stride_b, size_b, b_len)) {
    throw_range(env, "b is too small for the requested matrices at bOffset/strideB");
    return nullptr;
  }
  if (batch > 0 && size_c > 0) {
    const peftjs::GemmShape shape{m, n, k, trans_a, trans_b};
    peftjs::sgemm_batched(shape, batch, a + a_off, stride_a, b + b_off, stride_b, c + c_off,
                          static_cast<int>(threads > 2 ? 2 : threads));
  }
  return nullptr;
}

// Fetches `count` Float32Array/offset pairs and checks each holds `need[i]` floats from its offset.
struct FloatArg {
  float* data = nullptr;
  std::int64_t length = 0;
  std::int64_t offset = 0;
};

bool get_float_args(napi_env env, napi_value* argv, const char* const* names, FloatArg* out, int count) {
  for (int i = 0; i < count; ++i) {
    const std::string offset_name = std::string(names[i]) + "Offset";
    if (!get_floats(env, argv[2 * i], names[i], &out[i].data, &out[i].length) ||
        !get_count(env, argv[2 * i + 1], offset_name.c_str(), &out[i].offset))
      return false;
  }
  return true;
}

bool require_span(napi_env env, const FloatArg& arg, const char* name, std::int64_t floats) {
  if (arg.offset + floats <= arg.length) return true;
  return throw_range(env, std::string(name) + " is too small for " + std::to_string(floats) + " floats at " +
                              name + "Offset");
}

bool require_spans(napi_env env, const FloatArg* a, const char* const* names, const std::int64_t* spans,
                   int count) {
  for (int i = 0; i < count; ++i)
    if (!require_span(env, a[i], names[i], spans[i])) return false;
  return true;
}

bool check_cpu_or_throw(napi_env env) {
  if (cpu().ok) return true;
  napi_throw_error(env, nullptr, ("@peftjs/native: " + cpu().reason).c_str());
  return false;
}

bool get_argv(napi_env env, napi_callback_info info, napi_value* argv, size_t expected, const char* name) {
  size_t argc = expected;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return false;
  if (argc != expected)
    return throw_type(env, (std::string(name) + " expects " + std::to_string(expected) + " arguments").c_str());
  return true;
}

// gelu(x, xOffset, y, yOffset, n, threads)
napi_value Gelu(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!check_cpu_or_throw(env) || !get_argv(env, info, argv, 6, "gelu")) return nullptr;
  static const char* const names[] = {"x", "y"};
  FloatArg a[2];
  std::int64_t n = 0, threads = 1;
  if (!get_float_args(env, argv, names, a, 2) || !get_count(env, argv[4], "n", &n) ||
      !get_count(env, argv[5], "threads", &threads) || !require_span(env, a[0], "x", n) ||
      !require_span(env, a[1], "y", n))
    return nullptr;
  peftjs::gelu_forward(a[0].data + a[0].offset, a[1].data + a[1].offset, n, static_cast<int>(threads));
  return nullptr;
}

// geluGrad(dy, dyOffset, x, xOffset, dx, dxOffset, n, threads)
napi_value GeluGrad(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!check_cpu_or_throw(env) || !get_argv(env, info, argv, 8, "geluGrad")) return nullptr;
  static const char* const names[] = {"dy", "x", "dx"};
  FloatArg a[3];
  std::int64_t n = 0, threads = 1;
  if (!get_float_args(env, argv, names, a, 3) || !get_count(env, argv[6], "n", &n) ||
      !get_count(env, argv[7], "threads", &threads))
    return nullptr;
  const std::int64_t spans[] = {n, n, n};
  if (!require_spans(env, a, names, spans, 3)) return nullptr;
  peftjs::gelu_backward(a[0].data + a[0].offset, a[1].data + a[1].offset, a[2].data + a[2].offset, n,
                        static_cast<int>(threads));
  return nullptr;
}

bool get_eps(napi_env env, napi_value value, float* eps) {
  double d = 0;
  if (napi_get_value_double(env, value, &d) != napi_ok || !(d > 0) || !(d < 1))
    return throw_range(env, "eps must be a number in (0, 1)");
  *eps = static_cast<float>(d);
  return true;
}

// The trailing (rows, dim, eps, threads) arguments of layerNorm and layerNormGrad, read from argv[0..3].
struct RowArgs {
  std::int64_t rows = 0;
  std::int64_t dim = 0;
  float eps = 0;
  std::int64_t threads = 1;
};

bool get_row_args(napi_env env, napi_value* argv, const char* name, RowArgs* r) {
  if (!get_count(env, argv[0], "rows", &r->rows) || !get_count(env, argv[1], "dim", &r->dim) ||
      !get_eps(env, argv[2], &r->eps) || !get_count(env, argv[3], "threads", &r->threads))
    return false;
  if (static_cast<double>(r->rows) * static_cast<double>(r->dim) > 4.0e18)
    return throw_range(env, std::string(name) + " dimensions are too large");
  return true;
}

// layerNorm(x, xOffset, weight, weightOffset, bias, biasOffset, y, yOffset, rows, dim, eps, threads)
napi_value LayerNorm(napi_env env, napi_callback_info info) {
  napi_value argv[12];
  if (!check_cpu_or_throw(env) || !get_argv(env, info, argv, 12, "layerNorm")) return nullptr;
  static const char* const names[] = {"x", "weight", "bias", "y"};
  FloatArg a[4];
  RowArgs r;
  if (!get_float_args(env, argv, names, a, 4) || !get_row_args(env, argv + 8, "layerNorm", &r)) return nullptr;
  const std::int64_t spans[] = {r.rows * r.dim, r.dim, r.dim, r.rows * r.dim};
  if (!require_spans(env, a, names, spans, 4)) return nullptr;
  peftjs::layer_norm_forward(a[0].data + a[0].offset, a[1].data + a[1].offset, a[2].data + a[2].offset,
                             a[3].data + a[3].offset, r.rows, r.dim, r.eps, static_cast<int>(r.threads));
  return nullptr;
}

// layerNormGrad(dy, dyOffset, x, xOffset, weight, weightOffset, dx, dxOffset, dweight, dweightOffset,
//               dbias, dbiasOffset, rows, dim, eps, threads)
napi_value LayerNormGrad(napi_env env, napi_callback_info info) {
  napi_value argv[16];
  if (!check_cpu_or_throw(env) || !get_argv(env, info, argv, 16, "layerNormGrad")) return nullptr;
  static const char* const names[] = {"dy", "x", "weight", "dx", "dweight", "dbias"};
  FloatArg a[6];
  RowArgs r;
  if (!get_float_args(env, argv, names, a, 6) || !get_row_args(env, argv + 12, "layerNormGrad", &r))
    return nullptr;
  const std::int64_t full = r.rows * r.dim;
  const std::int64_t spans[] = {full, full, r.dim, full, r.dim, r.dim};
  if (!require_spans(env, a, names, spans, 6)) return nullptr;
  peftjs::layer_norm_backward(a[0].data + a[0].offset, a[1].data + a[1].offset, a[2].data + a[2].offset,
                              a[3].data + a[3].offset, a[4].data + a[4].offset, a[5].data + a[5].offset,
                              r.rows, r.dim, r.eps, static_cast<int>(r.threads));
  return nullptr;
}

void export_function(napi_env env, napi_value exports, const char* name, napi_callback fn) {
  napi_value value = nullptr;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, nullptr, &value);
  napi_set_named_property(env, exports, name, value);
}

napi_value make_string(napi_env env, const std::string& text) {
  napi_value value = nullptr;
  napi_create_string_utf8(env, text.c_str(), text.size(), &value);
  return value;
}

}  // namespace

NAPI_MODULE_INIT() {
  const CpuCheck& check = cpu();
  napi_value supported = nullptr;
  napi_get_boolean(env, check.ok, &supported);
  napi_set_named_property(env, exports, "supported", supported);
  napi_set_named_property(env, exports, "reason", make_string(env, check.reason));
  napi_set_named_property(env, exports, "isa", make_string(env, "avx2+fma"));
  napi_value threads = nullptr;
  napi_create_int32(env, check.ok ? peftjs::max_threads() : 1, &threads);
  napi_set_named_property(env, exports, "maxThreads", threads);
  export_function(env, exports, "gemm", Gemm);
  export_function(env, exports, "gelu", Gelu);
  export_function(env, exports, "geluGrad", GeluGrad);
  export_function(env, exports, "layerNorm", LayerNorm);
  export_function(env, exports, "layerNormGrad", LayerNormGrad);
  return exports;
}
