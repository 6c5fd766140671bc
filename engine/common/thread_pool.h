// A fixed pool of worker threads for data-parallel loops (the CPU backend).
//
// Contract: ParallelFor(n, fn) calls fn(begin, end) on disjoint ranges that
// together cover [0, n) exactly once, using the calling thread plus the pool's
// workers, and returns when all of them are done. Calls from one thread at a
// time (the backend's single stream); fn must not call ParallelFor itself.
// Decode calls this ~10 times per layer, so hand-off is cheap: workers spin
// briefly after each job before falling back to a condition variable, and the
// caller never waits for a worker that has not started: chunks are claimed
// dynamically, so on an oversubscribed machine (a descheduled worker) the
// caller simply does the work itself.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace rocmforge {

class ThreadPool {
 public:
  // threads: total threads including the caller; 0 = hardware_concurrency.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Threads that run work, the caller included (>= 1).
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Splits [0, n) into at most `size() * 4` chunks of at least `min_chunk`
  // items each, handed out dynamically (a busy core on a shared machine does
  // not hold back the whole loop).
  template <class Fn>
  void ParallelFor(int64_t n, Fn&& fn, int64_t min_chunk = 1) {
    Run(n, min_chunk, &fn, [](void* ctx, int64_t b, int64_t e) { (*static_cast<Fn*>(ctx))(b, e); });
  }

 private:
  using Trampoline = void (*)(void* ctx, int64_t begin, int64_t end);
  void Run(int64_t n, int64_t min_chunk, void* ctx, Trampoline fn);
  void WorkerLoop();
  void RunChunks();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  std::atomic<int> sleepers_{0};           // workers blocked on cv_
  // Id of the job open for workers to join; 0 while none is. A worker joins
  // by incrementing active_ and then re-checking the id, and the caller
  // closes a job (id = 0) before waiting for active_ to drain, so no worker
  // ever reads the job fields while the caller rewrites them.
  std::atomic<uint64_t> open_job_{0};
  std::atomic<int> active_{0};
  uint64_t last_job_ = 0;                  // caller side: ids handed out
  // The current job (written by the caller before opening it).
  void* ctx_ = nullptr;
  Trampoline fn_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 1;
  int64_t n_chunks_ = 0;
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<int64_t> done_chunks_{0};
};

}  // namespace rocmforge
