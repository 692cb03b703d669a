// Blocked, packed single-precision GEMM with an AVX2/FMA 6×16 register tile.
//
// Layout of the computation (row-major C, op(A) is m×k, op(B) is k×n):
//   for each k block (kc ≤ KC_MAX, balanced):
//     for each column block of B (nc columns, kc×nc floats sized for L2):
//       pack that block of op(B) into 16-column micro-panels, k-major, zero-padded to 16 columns
//       for each 6-row micro-panel of op(A):
//         untransposed A with 6 full rows: read in place (6 row pointers; one k offset)
//         otherwise: copy the 6×kc panel into a small k-major buffer (zero rows past m), which stays in L1
//         for each 16-column micro-panel: 6×16 FMA tile over kc; first k block stores C, later ones add to it
// Edge tiles (fewer than 6 rows or 16 columns) are computed into a 6×16 scratch tile and the valid part copied.
// This file is the only one compiled with -mavx2 -mfma; nothing here runs before the caller checked the CPU.

#include "gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

namespace peftjs {
namespace {

constexpr int MR = 6;
constexpr int NR = 16;
constexpr std::int64_t KC_MAX = 320;          // B micro-panel 16×320×4 = 20 KB + A panel 7.5 KB fit in L1
constexpr std::int64_t B_BLOCK_FLOATS = 96 * 1024;  // 384 KB of packed B per column block (L2)

// Per-thread scratch: packed B block, one packed A micro-panel, one edge tile.
struct Workspace {
  float* b_pack = nullptr;
  std::size_t b_cap = 0;
  float* a_pack = nullptr;
  alignas(32) float tile[MR * NR];

  Workspace() {
    // 8 floats of slack after the A panel: the packer may store a full vector past the last 6-float row.
    a_pack = static_cast<float*>(std::aligned_alloc(64, sizeof(float) * (KC_MAX * MR + 64)));
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

Workspace& workspace() {
  static thread_local Workspace ws;
  return ws;
}

// ---------------------------------------------------------------------------------------------------------------
// Micro-kernel: acc(6×16) = Σ_k a(:,k) ⊗ b(k,:), then C = acc or C += acc.
// PackedA: a is k-major with 6 floats per k. Otherwise a points at row 0 of a row-major A with row stride lda.
// b is a packed micro-panel: 16 floats per k, 32-byte aligned.

template <bool PackedA>
inline void kernel_6x16(std::int64_t kc, const float* a, std::int64_t lda, const float* b, float* c,
                        std::int64_t ldc, bool accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

  for (int r = 0; r < MR; ++r) _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);

  const float* a0 = a;
  const float* a1 = a + (PackedA ? 1 : lda);
  const float* a2 = a + (PackedA ? 2 : 2 * lda);
  const float* a3 = a + (PackedA ? 3 : 3 * lda);
  const float* a4 = a + (PackedA ? 4 : 4 * lda);
  const float* a5 = a + (PackedA ? 5 : 5 * lda);
  constexpr std::int64_t step = PackedA ? MR : 1;

#pragma GCC unroll 4
  for (std::int64_t p = 0; p < kc; ++p) {
    const std::int64_t o = p * step;
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
    b += NR;
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

// ---------------------------------------------------------------------------------------------------------------
// Packing.

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

// Packs op(B)[p0 : p0+kc, j0 : j0+nc] into 16-column micro-panels: panel q holds columns j0+16q.., k-major.
void pack_b(const GemmShape& s, const float* b, std::int64_t p0, std::int64_t kc, std::int64_t j0,
            std::int64_t nc, float* dst) {
  for (std::int64_t jq = 0; jq < nc; jq += NR) {
    const std::int64_t nr = std::min<std::int64_t>(NR, nc - jq);
    const std::int64_t j = j0 + jq;
    float* panel = dst + jq * kc;
    if (!s.trans_b) {
      // B stored [k, n]: row p of the panel is 16 contiguous floats.
      const float* src = b + p0 * s.n + j;
      if (nr == NR) {
        for (std::int64_t p = 0; p < kc; ++p) {
          _mm256_store_ps(panel + p * NR, _mm256_loadu_ps(src + p * s.n));
          _mm256_store_ps(panel + p * NR + 8, _mm256_loadu_ps(src + p * s.n + 8));
        }
      } else {
        for (std::int64_t p = 0; p < kc; ++p) {
          std::int64_t q = 0;
          for (; q < nr; ++q) panel[p * NR + q] = src[p * s.n + q];
          for (; q < NR; ++q) panel[p * NR + q] = 0.0f;
        }
      }
    } else {
      // B stored [n, k]: column j of op(B) is row j of storage; transpose 8×8 blocks.
      const float* src = b + j * s.k + p0;
      std::int64_t p = 0;
      if (nr == NR) {
        for (; p + 8 <= kc; p += 8) {
          for (int half = 0; half < 2; ++half) {
            __m256 r[8];
            for (int q = 0; q < 8; ++q) r[q] = _mm256_loadu_ps(src + (half * 8 + q) * s.k + p);
            transpose8(r);
            for (int q = 0; q < 8; ++q) _mm256_store_ps(panel + (p + q) * NR + half * 8, r[q]);
          }
        }
      }
      for (; p < kc; ++p) {
        std::int64_t q = 0;
        for (; q < nr; ++q) panel[p * NR + q] = src[q * s.k + p];
        for (; q < NR; ++q) panel[p * NR + q] = 0.0f;
      }
    }
  }
}

// Packs op(A)[i0 : i0+mr, p0 : p0+kc] k-major with 6 floats per k (rows past mr are zero).
void pack_a(const GemmShape& s, const float* a, std::int64_t i0, std::int64_t mr, std::int64_t p0,
            std::int64_t kc, float* dst) {
  if (s.trans_a) {
    // A stored [k, m]: the 6 values of one k are contiguous.
    const float* src = a + p0 * s.m + i0;
    if (mr == MR) {
      for (std::int64_t p = 0; p < kc; ++p) {
        const float* row = src + p * s.m;
        _mm_storeu_ps(dst + p * MR, _mm_loadu_ps(row));
        _mm_storel_pi(reinterpret_cast<__m64*>(dst + p * MR + 4), _mm_castpd_ps(_mm_load_sd(
                                                                     reinterpret_cast<const double*>(row + 4))));
      }
    } else {
      for (std::int64_t p = 0; p < kc; ++p) {
        std::int64_t r = 0;
        for (; r < mr; ++r) dst[p * MR + r] = src[p * s.m + r];
        for (; r < MR; ++r) dst[p * MR + r] = 0.0f;
      }
    }
  } else {
    // A stored [m, k]: gather one value from each row per k.
    const float* src = a + i0 * s.k + p0;
    for (std::int64_t p = 0; p < kc; ++p) {
      std::int64_t r = 0;
      for (; r < mr; ++r) dst[p * MR + r] = src[r * s.k + p];
      for (; r < MR; ++r) dst[p * MR + r] = 0.0f;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// One product restricted to the columns [n_begin, n_end) of C (threads split columns; each packs its own B).

void sgemm_columns(const GemmShape& s, const float* a, const float* b, float* c, std::int64_t n_begin,
                   std::int64_t n_end) {
  const std::int64_t m = s.m, n = s.n, k = s.k;
  if (m <= 0 || n_end <= n_begin) return;
  if (k <= 0) {
    for (std::int64_t i = 0; i < m; ++i) std::fill(c + i * n + n_begin, c + i * n + n_end, 0.0f);
    return;
  }
  Workspace& ws = workspace();
  const std::int64_t k_blocks = (k + KC_MAX - 1) / KC_MAX;
  const std::int64_t kc_nominal = (k + k_blocks - 1) / k_blocks;
  std::int64_t nc_max = std::max<std::int64_t>(NR, (B_BLOCK_FLOATS / kc_nominal) / NR * NR);
  // Balance column blocks so the last one is not a sliver.
  const std::int64_t width = n_end - n_begin;
  const std::int64_t n_blocks = (width + nc_max - 1) / nc_max;
  nc_max = ((width + n_blocks - 1) / n_blocks + NR - 1) / NR * NR;
  float* bp = ws.b_buffer(static_cast<std::size_t>(kc_nominal * nc_max));
  if (bp == nullptr) std::abort();
  float* ap = ws.a_pack;
  float* tile = ws.tile;

  for (std::int64_t p0 = 0; p0 < k; p0 += kc_nominal) {
    const std::int64_t kc = std::min(kc_nominal, k - p0);
    const bool accumulate = p0 > 0;
    for (std::int64_t j0 = n_begin; j0 < n_end; j0 += nc_max) {
      const std::int64_t nc = std::min(nc_max, n_end - j0);
      pack_b(s, b, p0, kc, j0, nc, bp);
      for (std::int64_t i0 = 0; i0 < m; i0 += MR) {
        const std::int64_t mr = std::min<std::int64_t>(MR, m - i0);
        const bool direct = !s.trans_a && mr == MR;
        if (!direct) pack_a(s, a, i0, mr, p0, kc, ap);
        const float* a_panel = direct ? a + i0 * k + p0 : ap;
        float* c_rows = c + i0 * n;
        for (std::int64_t jq = 0; jq < nc; jq += NR) {
          const std::int64_t nr = std::min<std::int64_t>(NR, nc - jq);
          const float* b_panel = bp + jq * kc;
          float* c_tile = c_rows + j0 + jq;
          if (mr == MR && nr == NR) {
            if (direct)
              kernel_6x16<false>(kc, a_panel, k, b_panel, c_tile, n, accumulate);
            else
              kernel_6x16<true>(kc, a_panel, 0, b_panel, c_tile, n, accumulate);
          } else {
            if (direct)
              kernel_6x16<false>(kc, a_panel, k, b_panel, tile, NR, false);
            else
              kernel_6x16<true>(kc, a_panel, 0, b_panel, tile, NR, false);
            for (std::int64_t r = 0; r < mr; ++r) {
              float* row = c_tile + r * n;
              const float* t = tile + r * NR;
              if (accumulate)
                for (std::int64_t q = 0; q < nr; ++q) row[q] += t[q];
              else
                for (std::int64_t q = 0; q < nr; ++q) row[q] = t[q];
            }
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// A single helper thread. The calling thread runs one half of the work, the helper the other.

class Helper {
 public:
  static Helper& instance() {
    static Helper h;
    return h;
  }

  // Runs job(1) on the helper and job(0) here; returns when both are done. Returns false without running
  // anything when another thread (a worker_threads isolate) is using the helper right now.
  template <typename Job>
  bool run_pair(Job& job) {
    std::unique_lock<std::mutex> owner(busy_, std::try_to_lock);
    if (!owner.owns_lock()) return false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = [](void* ctx) { (*static_cast<Job*>(ctx))(1); };
      ctx_ = &job;
      pending_ = true;
      done_ = false;
    }
    cv_.notify_one();
    job(0);
    // The helper usually finishes within microseconds of us: spin briefly before sleeping.
    for (int spin = 0; spin < 20000; ++spin) {
      if (done_flag_.load(std::memory_order_acquire)) break;
      _mm_pause();
    }
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return done_; });
    done_flag_.store(false, std::memory_order_relaxed);
    return true;
  }

  ~Helper() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  Helper() : thread_([this] { loop(); }) {}

  void loop() {
    for (;;) {
      void (*job)(void*) = nullptr;
      void* ctx = nullptr;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return pending_ || stop_; });
        if (stop_) return;
        pending_ = false;
        job = job_;
        ctx = ctx_;
      }
      job(ctx);
      {
        std::lock_guard<std::mutex> lock(mu_);
        done_ = true;
      }
      done_flag_.store(true, std::memory_order_release);
      done_cv_.notify_one();
    }
  }

  std::mutex busy_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  void (*job_)(void*) = nullptr;
  void* ctx_ = nullptr;
  bool pending_ = false;
  bool done_ = false;
  bool stop_ = false;
  std::atomic<bool> done_flag_{false};
  std::thread thread_;
};

}  // namespace

void sgemm(const GemmShape& s, const float* a, const float* b, float* c) {
  sgemm_columns(s, a, b, c, 0, s.n);
}

void sgemm_batched(const GemmShape& s, std::int64_t batch, const float* a, std::int64_t stride_a,
                   const float* b, std::int64_t stride_b, float* c, int threads) {
  if (batch <= 0 || s.m <= 0 || s.n <= 0) return;
  const std::int64_t stride_c = s.m * s.n;
  const double flops = 2.0 * static_cast<double>(batch) * s.m * s.n * std::max<std::int64_t>(s.k, 1);
  // Below ~4 MFLOP the hand-off to the helper costs more than it saves.
  if (threads <= 1 || flops < 4e6) {
    for (std::int64_t i = 0; i < batch; ++i) sgemm(s, a + i * stride_a, b + i * stride_b, c + i * stride_c);
    return;
  }
  if (batch >= 2) {
    const std::int64_t half = (batch + 1) / 2;
    auto job = [&](int part) {
      const std::int64_t lo = part == 0 ? 0 : half;
      const std::int64_t hi = part == 0 ? half : batch;
      for (std::int64_t i = lo; i < hi; ++i) sgemm(s, a + i * stride_a, b + i * stride_b, c + i * stride_c);
    };
    if (!Helper::instance().run_pair(job)) {
      job(0);
      job(1);
    }
    return;
  }
  if (s.n < 2 * NR) {
    sgemm(s, a, b, c);
    return;
  }
  const std::int64_t split = (s.n / 2 + NR - 1) / NR * NR;
  auto job = [&](int part) {
    if (part == 0)
      sgemm_columns(s, a, b, c, 0, split);
    else
      sgemm_columns(s, a, b, c, split, s.n);
  };
  if (!Helper::instance().run_pair(job)) sgemm(s, a, b, c);
}

void run_two_parts(int threads, void (*part)(void* ctx, int index), void* ctx) {
  auto job = [part, ctx](int index) { part(ctx, index); };
  if (threads >= 2 && Helper::instance().run_pair(job)) return;
  job(0);
  job(1);
}

int max_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw >= 2 ? 2 : 1;
}

}  // namespace peftjs
