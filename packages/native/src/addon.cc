// N-API glue for the PEFT.js kernels. Compiled for baseline x86-64 (no ISA flags): this file checks the CPU
// once, then hands every call to the kernel table of the instruction set chosen (kernel_table.h), so loading the
// addon on an older CPU reports a reason instead of dying on an illegal instruction.
//
// Exports:
//   supported: boolean      AVX2 and FMA present and enabled by the OS (the least the kernels need)
//   reason: string          why not (empty when supported)
//   cpu: string             the CPU's brand string (CPUID), e.g. "Intel(R) Xeon(R) Processor"
//   isas: string[]          kernel tables this CPU can run, best last ("avx2", then "avx512" where available)
//   avx512Reason: string    why "avx512" is not among them (empty when it is)
//   maxThreads: number      threads a kernel can use (1 or 2)
//   selectIsa(name)         chooses the table once per process: "auto" (the best in isas) or one of isas;
//                           returns the name chosen. Kernels called before it use "auto".
//   isa: string             getter: the table in use (after selectIsa or the first kernel call), else ""
//   gemm(a, aOffset, b, bOffset, c, cOffset, batch, m, n, k, transA, transB, strideA, strideB, threads)
//        a, b, c are Float32Arrays (any backing buffer, including WebAssembly memory); offsets and strides count
//        floats. C[i] = op(A[i])·op(B[i]) is written at c[cOffset + i·m·n ...]. Throws on bad arguments.
//   linear(x, xOffset, weight, weightOffset, bias, biasOffset, y, yOffset, rows, inFeatures, outFeatures, gelu,
//          threads)  y = act(x·weight + bias), weight stored [in, out]; bias may be null; act = GELU when gelu.
//   gelu, geluGrad, layerNorm, layerNormGrad, softmax, softmaxGrad, binary, transpose: the element-wise and
//        data-movement kernels of kernel_table.h, same array/offset conventions.
//   peakGflops(threads, seconds): GFLOP/s of the chosen table's register-only FMA loop (its measured peak).

#include <cpuid.h>
#include <node_api.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>

#include "kernel_table.h"
#include "threads.h"

namespace {

struct CpuCheck {
  bool ok = false;          // AVX2 + FMA usable
  std::string reason;       // why not
  bool avx512 = false;      // AVX-512F/BW/VL/DQ usable
  std::string avx512_reason;
  std::string brand;
};

std::uint64_t read_xcr0() {
  std::uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}

std::string brand_string() {
  unsigned regs[12] = {};
  if (__get_cpuid_max(0x80000000u, nullptr) < 0x80000004u) return "unknown CPU";
  for (unsigned i = 0; i < 3; ++i)
    __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
  char text[49] = {};
  std::memcpy(text, regs, 48);
  std::string brand(text);
  const auto first = brand.find_first_not_of(' ');
  const auto last = brand.find_last_not_of(' ');
  return first == std::string::npos ? "unknown CPU" : brand.substr(first, last - first + 1);
}

// What is missing from AVX-512 F/DQ/BW/VL (leaf 7 EBX) and its OS state (XCR0 opmask, ZMM_Hi256, Hi16_ZMM).
std::string avx512_missing(unsigned leaf7_ebx, std::uint64_t xcr0) {
  const struct {
    int bit;
    const char* name;
  } parts[] = {{16, "AVX-512F"}, {17, "AVX-512DQ"}, {30, "AVX-512BW"}, {31, "AVX-512VL"}};
  std::string missing;
  for (const auto& part : parts)
    if (!((leaf7_ebx >> part.bit) & 1u)) missing += (missing.empty() ? "" : ", ") + std::string(part.name);
  if (!missing.empty()) return "this CPU lacks " + missing;
  if ((xcr0 & 0xE0) != 0xE0) return "the operating system has not enabled AVX-512 register state (XCR0)";
  return "";
}

CpuCheck check_cpu() {
  CpuCheck result;
  result.brand = brand_string();
  result.avx512_reason = "AVX2/FMA are unavailable";
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
  unsigned leaf7_ebx = 0;
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    leaf7_ebx = ebx;
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
  result.avx512_reason = avx512_missing(leaf7_ebx, read_xcr0());
  result.avx512 = result.avx512_reason.empty();
  return result;
}

const CpuCheck& cpu() {
  static const CpuCheck check = check_cpu();
  return check;
}

// The table in use; chosen once (selectIsa, or "auto" at the first kernel call) and never changed afterwards.
std::atomic<const peftjs::KernelTable*> chosen{nullptr};

const peftjs::KernelTable* best_table() {
  return cpu().avx512 ? &peftjs::avx512_kernels() : &peftjs::avx2_kernels();
}

const peftjs::KernelTable& table() {
  const peftjs::KernelTable* t = chosen.load(std::memory_order_acquire);
  if (t != nullptr) return *t;
  const peftjs::KernelTable* expected = nullptr;
  chosen.compare_exchange_strong(expected, best_table());
  return *chosen.load(std::memory_order_acquire);
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
    table().sgemm_batched(shape, batch, a + a_off, stride_a, b + b_off, stride_b, c + c_off, peftjs::Epilogue{},
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
  table().gelu_forward(a[0].data + a[0].offset, a[1].data + a[1].offset, n, static_cast<int>(threads));
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
  table().gelu_backward(a[0].data + a[0].offset, a[1].data + a[1].offset, a[2].data + a[2].offset, n,
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

// The trailing (rows, n, split, weight0, weight1, threads) arguments of softmax and softmaxGrad.
struct SoftmaxArgs {
  std::int64_t rows = 0;
  std::int64_t n = 0;
  std::int64_t split = 0;
  float weight0 = 1;
  float weight1 = 1;
  std::int64_t threads = 1;
};

bool get_weight(napi_env env, napi_value value, const char* name, float* out) {
  double d = 0;
  if (napi_get_value_double(env, value, &d) != napi_ok || !(d >= 0) || !(d <= 1e30))
    return throw_range(env, std::string(name) + " must be a finite number ≥ 0");
  *out = static_cast<float>(d);
  return true;
}

bool get_softmax_args(napi_env env, napi_value* argv, const char* name, SoftmaxArgs* r) {
  if (!get_count(env, argv[0], "rows", &r->rows) || !get_count(env, argv[1], "n", &r->n) ||
      !get_count(env, argv[2], "split", &r->split) || !get_weight(env, argv[3], "weight0", &r->weight0) ||
      !get_weight(env, argv[4], "weight1", &r->weight1) || !get_count(env, argv[5], "threads", &r->threads))
    return false;
  if (r->split > r->n) return throw_range(env, std::string(name) + ": split must be ≤ n");
  if (static_cast<double>(r->rows) * static_cast<double>(r->n) > 4.0e18)
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
  table().layer_norm_forward(a[0].data + a[0].offset, a[1].data + a[1].offset, a[2].data + a[2].offset,
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
  table().layer_norm_backward(a[0].data + a[0].offset, a[1].data + a[1].offset, a[2].data + a[2].offset,
                              a[3].data + a[3].offset, a[4].data + a[4].offset, a[5].data + a[5].offset,
                              r.rows, r.dim, r.eps, static_cast<int>(r.threads));
  return nullptr;
}

// softmax(x, xOffset, y, yOffset, rows, n, split, weight0, weight1, threads)
napi_value Softmax(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  if (!check_cpu_or_throw(env) || !get_argv(env, info, argv, 10, "softmax")) return nullptr;
  static const char* const names[] = {"x", "y"};
  FloatArg a[2];
  SoftmaxArgs r;
  if (!get_float_args(env, argv, names, a, 2) || !get_softmax_args(env, argv + 4, "softmax", &r)) return nullptr;
  const std::int64_t spans[] = {r.rows * r.n, r.rows * r.n};
  if (!require_spans(env, a, names, spans, 2)) return nullptr;
  table().softmax_forward(a[0].data + a[0].offset, a[1].data + a[1].offset, r.rows, r.n, r.split, r.weight0,
                          r.weight1, static_cast<int>(r.threads));
  return nullptr;
}

// softmaxGrad(dy, dyOffset, y, yOffset, dx, dxOffset, rows, n, split, weight0, weight1, threads)
napi_value SoftmaxGrad(napi_env env, napi_callback_info info) {
  napi_value argv[12];
  if (!check_cpu_or_throw(env) || !get_argv(env, info, argv, 12, "softmaxGrad")) return nullptr;
  static const char* const names[] = {"dy", "y", "dx"};
  FloatArg a[3];
  SoftmaxArgs r;
  if (!get_float_args(env, argv, names, a, 3) || !get_softmax_args(env, argv + 6, "softmaxGrad", &r))
    return nullptr;
  const std::int64_t spans[] = {r.rows * r.n, r.rows * r.n, r.rows * r.n};
  if (!require_spans(env, a, names, spans, 3)) return nullptr;
  table().softmax_backward(a[0].data + a[0].offset, a[1].data + a[1].offset, a[2].data + a[2].offset, r.rows, r.n,
                           r.split, r.weight0, r.weight1, static_cast<int>(r.threads));
  return nullptr;
}

// linear(x, xOffset, weight, weightOffset, bias, biasOffset, y, yOffset, rows, inFeatures, outFeatures, gelu,
//        threads)
napi_value Linear(napi_env env, napi_callback_info info) {
  napi_value argv[13];
  if (!check_cpu_or_throw(env) || !get_argv(env, info, argv, 13, "linear")) return nullptr;
  FloatArg x, w, bias, y;
  napi_valuetype bias_type = napi_undefined;
  napi_typeof(env, argv[4], &bias_type);
  const bool has_bias = bias_type != napi_null && bias_type != napi_undefined;
  std::int64_t rows = 0, in = 0, out = 0, threads = 1;
  bool gelu = false;
  if (!get_floats(env, argv[0], "x", &x.data, &x.length) || !get_count(env, argv[1], "xOffset", &x.offset) ||
      !get_floats(env, argv[2], "weight", &w.data, &w.length) ||
      !get_count(env, argv[3], "weightOffset", &w.offset) ||
      (has_bias && !get_floats(env, argv[4], "bias", &bias.data, &bias.length)) ||
      !get_count(env, argv[5], "biasOffset", &bias.offset) || !get_floats(env, argv[6], "y", &y.data, &y.length) ||
      !get_count(env, argv[7], "yOffset", &y.offset) || !get_count(env, argv[8], "rows", &rows) ||
      !get_count(env, argv[9], "inFeatures", &in) || !get_count(env, argv[10], "outFeatures", &out) ||
      !get_flag(env, argv[11], "gelu", &gelu) || !get_count(env, argv[12], "threads", &threads))
    return nullptr;
  if (static_cast<double>(rows) * static_cast<double>(in) * static_cast<double>(out) > 4.0e18) {
    throw_range(env, "linear dimensions are too large");
    return nullptr;
  }
  if (!require_span(env, x, "x", rows * in) || !require_span(env, w, "weight", in * out) ||
      (has_bias && !require_span(env, bias, "bias", out)) || !require_span(env, y, "y", rows * out))
    return nullptr;
  if (rows > 0 && out > 0) {
    const peftjs::GemmShape shape{rows, out, in, false, false};
    peftjs::Epilogue epilogue;
    epilogue.bias = has_bias ? bias.data + bias.offset : nullptr;
    epilogue.gelu = gelu;
    table().sgemm_batched(shape, 1, x.data + x.offset, 0, w.data + w.offset, 0, y.data + y.offset, epilogue,
                          static_cast<int>(threads > 2 ? 2 : threads));
  }
  return nullptr;
}

// binary(op, a, aOffset, b, bOffset, y, yOffset, n, period, threads): y = a op b, b repeating every `period`
// floats (n: same shapes; 1: a scalar; else a trailing vector). op 0: +, 1: −, 2: ×.
napi_value Binary(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  if (!check_cpu_or_throw(env) || !get_argv(env, info, argv, 10, "binary")) return nullptr;
  std::int64_t op = 0, n = 0, period = 0, threads = 1;
  if (!get_count(env, argv[0], "op", &op)) return nullptr;
  static const char* const names[] = {"a", "b", "y"};
  FloatArg a[3];
  if (!get_float_args(env, argv + 1, names, a, 3) || !get_count(env, argv[7], "n", &n) ||
      !get_count(env, argv[8], "period", &period) || !get_count(env, argv[9], "threads", &threads))
    return nullptr;
  if (op > 2) {
    throw_range(env, "op must be 0 (+), 1 (−) or 2 (×)");
    return nullptr;
  }
  if (n > 0 && (period == 0 || n % period != 0))
    {
    throw_range(env, "period must divide n");
    return nullptr;
  }
  const std::int64_t spans[] = {n, period, n};
  if (!require_spans(env, a, names, spans, 3)) return nullptr;
  table().binary(static_cast<int>(op), a[0].data + a[0].offset, a[1].data + a[1].offset, a[2].data + a[2].offset, n,
                 period, static_cast<int>(threads));
  return nullptr;
}

// transpose(x, xOffset, y, yOffset, shape, perm, threads): shape and perm are arrays of the same length ≤ 8.
napi_value Transpose(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!check_cpu_or_throw(env) || !get_argv(env, info, argv, 7, "transpose")) return nullptr;
  static const char* const names[] = {"x", "y"};
  FloatArg a[2];
  std::int64_t threads = 1;
  if (!get_float_args(env, argv, names, a, 2) || !get_count(env, argv[6], "threads", &threads)) return nullptr;
  std::uint32_t rank = 0, perm_rank = 0;
  if (napi_get_array_length(env, argv[4], &rank) != napi_ok ||
      napi_get_array_length(env, argv[5], &perm_rank) != napi_ok)
    {
    throw_type(env, "shape and perm must be arrays");
    return nullptr;
  }
  if (rank == 0 || rank > 8 || perm_rank != rank)
    {
    throw_range(env, "shape and perm must have the same length, 1 to 8");
    return nullptr;
  }
  std::int64_t shape[8];
  int perm[8];
  bool seen[8] = {};
  double total = 1;
  for (std::uint32_t d = 0; d < rank; ++d) {
    napi_value v = nullptr;
    std::int64_t p = 0;
    if (napi_get_element(env, argv[4], d, &v) != napi_ok || !get_count(env, v, "shape[i]", &shape[d]) ||
        napi_get_element(env, argv[5], d, &v) != napi_ok || !get_count(env, v, "perm[i]", &p))
      return nullptr;
    if (p >= rank || seen[p]) {
    throw_range(env, "perm must be a permutation of 0..rank-1");
    return nullptr;
  }
    seen[p] = true;
    perm[d] = static_cast<int>(p);
    total *= static_cast<double>(shape[d]);
  }
  if (total > 4.0e18) {
    throw_range(env, "transpose dimensions are too large");
    return nullptr;
  }
  const std::int64_t size = static_cast<std::int64_t>(total);
  const std::int64_t spans[] = {size, size};
  if (!require_spans(env, a, names, spans, 2)) return nullptr;
  table().transpose(a[0].data + a[0].offset, a[1].data + a[1].offset, shape, perm, static_cast<int>(rank),
                    static_cast<int>(threads));
  return nullptr;
}

napi_value make_string(napi_env env, const std::string& text) {
  napi_value value = nullptr;
  napi_create_string_utf8(env, text.c_str(), text.size(), &value);
  return value;
}

// selectIsa(name): "auto" or one of isas; returns the name chosen. Throws RangeError otherwise, or when another
// table was chosen before.
napi_value SelectIsa(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!check_cpu_or_throw(env) || !get_argv(env, info, argv, 1, "selectIsa")) return nullptr;
  char name[32] = {};
  size_t length = 0;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &length) != napi_ok) {
    throw_type(env, "selectIsa expects a string");
    return nullptr;
  }
  const std::string request(name, length);
  const peftjs::KernelTable* wanted = nullptr;
  if (request == "auto")
    wanted = best_table();
  else if (request == "avx2")
    wanted = &peftjs::avx2_kernels();
  else if (request == "avx512" && cpu().avx512)
    wanted = &peftjs::avx512_kernels();
  else if (request == "avx512") {
    throw_range(env, "avx512 kernels cannot run here: " + cpu().avx512_reason);
    return nullptr;
  } else {
    throw_range(env, "unknown instruction set \"" + request + "\" (known: auto, avx2, avx512)");
    return nullptr;
  }
  const peftjs::KernelTable* expected = nullptr;
  if (!chosen.compare_exchange_strong(expected, wanted) && expected != wanted) {
    throw_range(env, std::string("the ") + expected->name + " kernels are already in use in this process");
    return nullptr;
  }
  return make_string(env, wanted->name);
}

napi_value IsaGetter(napi_env env, napi_callback_info) {
  const peftjs::KernelTable* t = chosen.load(std::memory_order_acquire);
  return make_string(env, t != nullptr ? t->name : "");
}

// peakGflops(threads, seconds)
napi_value PeakGflops(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!check_cpu_or_throw(env) || !get_argv(env, info, argv, 2, "peakGflops")) return nullptr;
  std::int64_t threads = 1;
  double seconds = 0;
  if (!get_count(env, argv[0], "threads", &threads)) return nullptr;
  if (napi_get_value_double(env, argv[1], &seconds) != napi_ok || !(seconds > 0) || !(seconds <= 60)) {
    throw_range(env, "seconds must be a number in (0, 60]");
    return nullptr;
  }
  napi_value result = nullptr;
  napi_create_double(env, table().peak_gflops(static_cast<int>(threads > 2 ? 2 : threads), seconds), &result);
  return result;
}

void export_function(napi_env env, napi_value exports, const char* name, napi_callback fn) {
  napi_value value = nullptr;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, nullptr, &value);
  napi_set_named_property(env, exports, name, value);
}

}  // namespace

NAPI_MODULE_INIT() {
  const CpuCheck& check = cpu();
  napi_value supported = nullptr;
  napi_get_boolean(env, check.ok, &supported);
  napi_set_named_property(env, exports, "supported", supported);
  napi_set_named_property(env, exports, "reason", make_string(env, check.reason));
  napi_set_named_property(env, exports, "cpu", make_string(env, check.brand));
  napi_value isas = nullptr;
  napi_create_array(env, &isas);
  if (check.ok) napi_set_element(env, isas, 0, make_string(env, "avx2"));
  if (check.avx512) napi_set_element(env, isas, 1, make_string(env, "avx512"));
  napi_set_named_property(env, exports, "isas", isas);
  napi_set_named_property(env, exports, "avx512Reason", make_string(env, check.avx512_reason));
  napi_value threads = nullptr;
  napi_create_int32(env, check.ok ? peftjs::max_threads() : 1, &threads);
  napi_set_named_property(env, exports, "maxThreads", threads);
  napi_property_descriptor isa_property = {"isa", nullptr, nullptr, IsaGetter, nullptr, nullptr, napi_enumerable,
                                           nullptr};
  napi_define_properties(env, exports, 1, &isa_property);
  export_function(env, exports, "selectIsa", SelectIsa);
  export_function(env, exports, "gemm", Gemm);
  export_function(env, exports, "linear", Linear);
  export_function(env, exports, "gelu", Gelu);
  export_function(env, exports, "geluGrad", GeluGrad);
  export_function(env, exports, "layerNorm", LayerNorm);
  export_function(env, exports, "layerNormGrad", LayerNormGrad);
  export_function(env, exports, "softmax", Softmax);
  export_function(env, exports, "softmaxGrad", SoftmaxGrad);
  export_function(env, exports, "binary", Binary);
  export_function(env, exports, "transpose", Transpose);
  export_function(env, exports, "peakGflops", PeakGflops);
  return exports;
}
