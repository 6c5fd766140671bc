#include "engine/common/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RF_CPU_RELAX() _mm_pause()
#else
#define RF_CPU_RELAX() std::this_thread::yield()
#endif

namespace rocmforge {
namespace {
// About 50-100 microseconds of polling: long enough to cover the gap between
// two ops of one forward pass, short enough not to burn a shared core.
constexpr int kSpinIterations = 20000;
}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  workers_.reserve(threads - 1);
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::RunChunks() {
  for (;;) {
    const int64_t c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (c >= n_chunks_) break;
    const int64_t begin = c * chunk_;
    const int64_t end = std::min(n_, begin + chunk_);
    fn_(ctx_, begin, end);
  }
}

void ThreadPool::Run(int64_t n, int64_t min_chunk, void* ctx, Trampoline fn) {
  if (n <= 0) return;
  min_chunk = std::max<int64_t>(1, min_chunk);
  if (workers_.empty() || n <= min_chunk) {
    fn(ctx, 0, n);
    return;
  }
  const int64_t max_chunks = static_cast<int64_t>(size()) * 4;
  int64_t chunk = std::max(min_chunk, (n + max_chunks - 1) / max_chunks);
  ctx_ = ctx;
  fn_ = fn;
  n_ = n;
  chunk_ = chunk;
  n_chunks_ = (n + chunk - 1) / chunk;
  next_chunk_.store(0, std::memory_order_relaxed);
  checked_in_.store(0, std::memory_order_relaxed);
  {
    // The lock orders the job fields before the generation bump for workers
    // that sleep on the condition variable; spinning workers see the release.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  RunChunks();
  // Every worker must check in before the job fields may be reused.
  const int want = static_cast<int>(workers_.size());
  for (int spins = 0; checked_in_.load(std::memory_order_acquire) != want; ++spins) {
    if (spins < kSpinIterations) {
      RF_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spins = 0; gen == seen && spins < kSpinIterations; ++spins) {
      RF_CPU_RELAX();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      gen = generation_.load(std::memory_order_acquire);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = gen;
    RunChunks();
    checked_in_.fetch_add(1, std::memory_order_acq_rel);
  }
}

}  // namespace rocmforge
