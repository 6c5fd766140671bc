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
    stop_.store(true);
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
    done_chunks_.fetch_add(1, std::memory_order_release);
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
  const int64_t chunk = std::max(min_chunk, (n + max_chunks - 1) / max_chunks);
  ctx_ = ctx;
  fn_ = fn;
  n_ = n;
  chunk_ = chunk;
  n_chunks_ = (n + chunk - 1) / chunk;
  next_chunk_.store(0, std::memory_order_relaxed);
  done_chunks_.store(0, std::memory_order_relaxed);
  open_job_.store(++last_job_);  // seq_cst: publishes the fields above
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(mu_); }
    cv_.notify_all();
  }
  RunChunks();
  // Every chunk was claimed; wait for those still running on workers.
  for (int spins = 0; done_chunks_.load(std::memory_order_acquire) != n_chunks_; ++spins) {
    if (spins < kSpinIterations) {
      RF_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
  }
  // Close the job, then wait for workers that joined it to leave.
  open_job_.store(0);
  for (int spins = 0; active_.load() != 0; ++spins) {
    if (spins < kSpinIterations) {
      RF_CPU_RELAX();
    } else {
      std::this_thread::yield();  // a joined worker was descheduled
    }
  }
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  auto has_job = [&] {
    const uint64_t id = open_job_.load();
    return id != 0 && id != seen;
  };
  for (;;) {
    for (int spins = 0; !has_job() && spins < kSpinIterations && !stop_.load(std::memory_order_relaxed); ++spins) {
      RF_CPU_RELAX();
    }
    if (!has_job()) {
      std::unique_lock<std::mutex> lock(mu_);
      sleepers_.fetch_add(1);
      cv_.wait(lock, [&] { return stop_.load() || has_job(); });
      sleepers_.fetch_sub(1);
    }
    if (stop_.load()) return;
    const uint64_t id = open_job_.load();
    if (id == 0 || id == seen) continue;
    active_.fetch_add(1);
    if (open_job_.load() == id) RunChunks();  // still open: the fields are this job's
    active_.fetch_sub(1);
    seen = id;
  }
}

}  // namespace rocmforge
