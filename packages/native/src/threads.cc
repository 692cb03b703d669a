// The helper thread behind run_two_parts (see threads.h).

#include "threads.h"

#include <immintrin.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace peftjs {
namespace {

class Helper {
 public:
  static Helper& instance() {
    static Helper h;
    return h;
  }

  // Runs part(ctx, 1) on the helper and part(ctx, 0) here; returns when both are done. Returns false without
  // running anything when another thread (a worker_threads isolate) is using the helper right now.
  bool run_pair(void (*part)(void*, int), void* ctx) {
    std::unique_lock<std::mutex> owner(busy_, std::try_to_lock);
    if (!owner.owns_lock()) return false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      part_ = part;
      ctx_ = ctx;
      pending_ = true;
      done_ = false;
    }
    cv_.notify_one();
    part(ctx, 0);
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
      void (*part)(void*, int) = nullptr;
      void* ctx = nullptr;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return pending_ || stop_; });
        if (stop_) return;
        pending_ = false;
        part = part_;
        ctx = ctx_;
      }
      part(ctx, 1);
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
  void (*part_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
  bool pending_ = false;
  bool done_ = false;
  bool stop_ = false;
  std::atomic<bool> done_flag_{false};
  std::thread thread_;
};

}  // namespace

void run_two_parts(int threads, void (*part)(void* ctx, int index), void* ctx) {
  if (threads >= 2 && Helper::instance().run_pair(part, ctx)) return;
  part(ctx, 0);
  part(ctx, 1);
}

int max_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw >= 2 ? 2 : 1;
}

}  // namespace peftjs
