// Keeps the worker pool's address list current: resolves on start and then
// every `refresh` on a background thread. A failed resolution keeps the last
// good list (a DNS hiccup must not drop every worker; health checks still
// catch dead ones).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "router/worker_pool.h"

namespace rocmforge::router {

using Resolver = std::function<absl::StatusOr<std::vector<std::string>>()>;

class Discovery {
 public:
  Discovery(Resolver resolver, std::chrono::milliseconds refresh, WorkerPool* pool);
  ~Discovery();  // stops the thread

  // Resolves once (synchronously) and starts the refresh thread. The first
  // resolution's error is returned, but the thread keeps trying.
  absl::Status Start();
  void Stop();

 private:
  absl::Status RefreshOnce();

  Resolver resolver_;
  std::chrono::milliseconds refresh_;
  WorkerPool* pool_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace rocmforge::router
