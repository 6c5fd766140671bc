#include "worker/worker_core.h"

#include <utility>
#include <vector>

namespace rocmforge::worker {

WorkerCore::WorkerCore(WorkerMetrics* metrics, RequestLimits limits, std::string worker_id)
    : metrics_(metrics), limits_(limits), worker_id_(std::move(worker_id)),
      seed_rng_(std::random_device{}()) {}

WorkerCore::~WorkerCore() { StopDrainTimer(); }

void WorkerCore::StopDrainTimer() {
  std::thread timer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    timer = std::move(drain_timer_);
  }
  cv_.notify_all();
  if (timer.joinable()) timer.join();
}

void WorkerCore::SetEngine(Engine* engine, std::string model_name) {
  std::lock_guard<std::mutex> lock(mu_);
  engine_ = engine;
  model_name_ = std::move(model_name);
}

Engine* WorkerCore::engine() const {
  std::lock_guard<std::mutex> lock(mu_);
  return engine_;
}

const std::string& WorkerCore::model_name() const { return model_name_; }

ServedModel WorkerCore::served_model() const {
  Engine* e = engine();
  ServedModel m;
  m.tokenizer = &e->tokenizer();
  m.name = model_name_;
  m.context_length = e->context_length();
  return m;
}

std::string WorkerCore::worker_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return worker_id_;
}

void WorkerCore::SetWorkerId(std::string id) {
  std::lock_guard<std::mutex> lock(mu_);
  worker_id_ = std::move(id);
}

uint64_t WorkerCore::DrawSeed() {
  std::lock_guard<std::mutex> lock(mu_);
  return seed_rng_();
}

void WorkerCore::SetHealthHook(std::function<void(bool serving)> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  health_hook_ = std::move(hook);
}

bool WorkerCore::BeginStream() {
  std::lock_guard<std::mutex> lock(mu_);
  if (draining_) return false;
  ++in_flight_;
  return true;
}

void WorkerCore::SetStreamRequestId(uint64_t engine_request_id) {
  std::lock_guard<std::mutex> lock(mu_);
  request_ids_.insert(engine_request_id);
}

void WorkerCore::EndStream(uint64_t engine_request_id, bool had_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (had_id) {
    auto it = request_ids_.find(engine_request_id);
    if (it != request_ids_.end()) request_ids_.erase(it);
  }
  --in_flight_;
  cv_.notify_all();  // under the lock: a waiter may destroy *this once it wakes
}

int32_t WorkerCore::InFlight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

int32_t WorkerCore::StartDrain(double deadline_seconds) {
  std::function<void(bool)> hook;
  int32_t in_flight;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool first = !draining_;
    draining_ = true;
    if (deadline_seconds > 0) {
      const absl::Time d = absl::Now() + absl::Seconds(deadline_seconds);
      if (!has_deadline_ || d < deadline_) deadline_ = d;
      has_deadline_ = true;
      if (!drain_timer_.joinable() && !stopping_) drain_timer_ = std::thread([this] { DrainTimerLoop(); });
    }
    in_flight = in_flight_;
    if (first) hook = health_hook_;
  }
  cv_.notify_all();
  if (metrics_) metrics_->SetDraining(true);
  if (hook) hook(false);
  return in_flight;
}

bool WorkerCore::draining() const {
  std::lock_guard<std::mutex> lock(mu_);
  return draining_;
}

bool WorkerCore::WaitIdle(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (timeout == absl::InfiniteDuration()) {
    cv_.wait(lock, [this] { return in_flight_ == 0; });
    return true;
  }
  const auto until = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(timeout);
  return cv_.wait_until(lock, until, [this] { return in_flight_ == 0; });
}

void WorkerCore::CancelAll() {
  std::vector<uint64_t> ids;
  Engine* engine;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ids.assign(request_ids_.begin(), request_ids_.end());
    engine = engine_;
  }
  if (!engine) return;
  for (uint64_t id : ids) engine->Cancel(id);  // outside the lock: sinks may run inline
}

void WorkerCore::DrainTimerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (has_deadline_ && absl::Now() >= deadline_) {
      has_deadline_ = false;
      lock.unlock();
      CancelAll();
      lock.lock();
      continue;
    }
    if (has_deadline_) {
      const absl::Duration left = deadline_ - absl::Now();
      cv_.wait_for(lock, absl::ToChronoMilliseconds(left) + std::chrono::milliseconds(1));
    } else {
      cv_.wait(lock);
    }
  }
}

}  // namespace rocmforge::worker
