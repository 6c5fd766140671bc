#include "router/discovery.h"

#include <cstdio>
#include <string>

namespace rocmforge::router {

Discovery::Discovery(Resolver resolver, std::chrono::milliseconds refresh, WorkerPool* pool)
    : resolver_(std::move(resolver)), refresh_(refresh), pool_(pool) {}

Discovery::~Discovery() { Stop(); }

absl::Status Discovery::RefreshOnce() {
  absl::StatusOr<std::vector<std::string>> addresses = resolver_();
  if (!addresses.ok()) return addresses.status();
  pool_->SetWorkers(*addresses);
  return absl::OkStatus();
}

absl::Status Discovery::Start() {
  absl::Status first = RefreshOnce();
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, refresh_, [this] { return stop_; })) {
      lock.unlock();
      absl::Status s = RefreshOnce();
      if (!s.ok()) {
        std::fprintf(stderr, "router: worker discovery: %s (keeping the last list)\n",
                     std::string(s.message()).c_str());
      }
      lock.lock();
    }
  });
  return first;
}

void Discovery::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace rocmforge::router
