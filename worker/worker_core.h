// State shared by the worker's services: the engine (absent while loading),
// the set of in-flight streams, and drain. Thread-safe.
//
// Drain: once started, BeginStream() refuses new streams and health reports
// NOT_SERVING. In-flight streams run on; when the drain deadline passes, the
// ones still open are cancelled (their sequences finish with "cancelled" and
// free their KV blocks). WaitIdle() lets the process wait for the last one.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "engine/engine.h"
#include "worker/request_builder.h"
#include "worker/worker_metrics.h"

namespace rocmforge::worker {

class WorkerCore {
 public:
  WorkerCore(WorkerMetrics* metrics, RequestLimits limits, std::string worker_id);
  ~WorkerCore();  // joins the drain timer; the engine must outlive nothing here

  // Called once the engine is loaded; `model_name` is what requests may name.
  void SetEngine(Engine* engine, std::string model_name);
  Engine* engine() const;                // null while loading
  const std::string& model_name() const;  // valid once engine() is set
  ServedModel served_model() const;       // valid once engine() is set
  WorkerMetrics* metrics() const { return metrics_; }
  const RequestLimits& limits() const { return limits_; }
  std::string worker_id() const;
  void SetWorkerId(std::string id);
  uint64_t DrawSeed();

  // Health hook: called with false when draining starts.
  void SetHealthHook(std::function<void(bool serving)> hook);

  // Stream registry. BeginStream is false while draining (refuse the call).
  bool BeginStream();
  // Records the engine id of an open stream so a drain deadline can cancel it.
  void SetStreamRequestId(uint64_t engine_request_id);
  void EndStream(uint64_t engine_request_id, bool had_id);
  int32_t InFlight() const;

  // Starts draining (idempotent); a later call may shorten the deadline.
  // deadline_seconds <= 0: no deadline. Returns the streams in flight.
  int32_t StartDrain(double deadline_seconds);
  bool draining() const;
  // Blocks until no stream is in flight or `timeout` passes; true if idle.
  bool WaitIdle(absl::Duration timeout);
  // Cancels every stream still in flight (their sinks get "cancelled").
  void CancelAll();
  // Stops the drain deadline timer (before the engine goes away).
  void StopDrainTimer();

 private:
  void DrainTimerLoop();

  WorkerMetrics* const metrics_;
  const RequestLimits limits_;
  std::string worker_id_;  // guarded by mu_

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Engine* engine_ = nullptr;
  std::string model_name_;
  std::function<void(bool)> health_hook_;
  std::mt19937_64 seed_rng_;
  int32_t in_flight_ = 0;
  std::multiset<uint64_t> request_ids_;
  bool draining_ = false;
  bool has_deadline_ = false;
  absl::Time deadline_;
  bool stopping_ = false;
  std::thread drain_timer_;
};

}  // namespace rocmforge::worker
