// The set of workers the router knows, their channels and their health.
//
// Discovery calls SetWorkers() with the current address list: new workers are
// added (not yet usable), vanished ones dropped; streams already open to a
// dropped worker keep their WorkerHandle alive and finish normally.
// A poller checks every worker each `poll_interval`: grpc.health.v1 Check must
// say SERVING and WorkerControl.GetLoad must answer with draining = false, or
// the worker gets no new requests. An answer of NOT_SERVING or draining takes
// effect at once; a check that gets no answer (deadline, connection) counts
// only from the `unhealthy_after`-th in a row, so one slow check on a busy
// worker does not take it (or, on a loaded cluster, every worker) out of
// placement. A stream that fails on a worker marks it unusable at once
// (MarkFailed) until its next successful check.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "rocmforge/v1/inference.grpc.pb.h"
#include "rocmforge/v1/worker_control.grpc.pb.h"

namespace rocmforge::router {

class RouterMetrics;

struct Worker {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Inference::Stub> inference;
  std::unique_ptr<v1::WorkerControl::Stub> control;
  std::unique_ptr<grpc::GenericStub> generic;  // grpc.health.v1 (no generated stub needed)

  std::atomic<bool> serving{false};     // last health check said SERVING
  std::atomic<bool> draining{false};    // last load report said draining
  std::atomic<bool> failed{false};      // a stream failed since the last good check
  std::atomic<int> reported_load{0};    // running + waiting
  std::atomic<int> in_flight{0};        // streams this router has open to it
  std::atomic<int> in_flight_at_report{0};  // in_flight when that report was asked for
  std::atomic<bool> poll_pending{false};
  std::atomic<int> unanswered_checks{0};  // in a row
  std::atomic<uint64_t> fail_epoch{0};  // bumped by MarkFailed
  std::mutex model_mu;
  std::string model;                    // from the load report; "" = unknown

  bool Usable() const { return serving.load() && !draining.load() && !failed.load(); }
  // Each open stream counted once, however stale the report: the report
  // already holds this router's streams that were open when it was asked for,
  // so only the change since then is added (never below what this router
  // alone has open). Adding in_flight whole would count a stream twice once
  // reported and once before, so placement would lean on the poll's timing.
  double Load() const {
    const int mine = in_flight.load();
    return std::max(mine, reported_load.load() + mine - in_flight_at_report.load());
  }
  std::string Model() {
    std::lock_guard<std::mutex> lock(model_mu);
    return model;
  }
};
using WorkerHandle = std::shared_ptr<Worker>;

struct WorkerPoolOptions {
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // null = insecure
  std::string tls_target_name;  // SSL target name override ("" = the address)
  std::chrono::milliseconds poll_interval{1000};
  std::chrono::milliseconds check_timeout{1000};
  int unhealthy_after = 3;  // unanswered checks in a row that make a worker not serving (>= 1)
  // Called with whether any worker is usable, whenever that answer may have
  // changed (after a check, a failure mark or a discovery update). Runs on the
  // poller's or a gRPC callback thread; calls for one pool never overlap and
  // arrive in order. Must not call back into the pool.
  std::function<void(bool any_usable)> on_usable_change;
};

class WorkerPool {
 public:
  WorkerPool(WorkerPoolOptions options, RouterMetrics* metrics);
  ~WorkerPool();  // stops the poller

  void SetWorkers(const std::vector<std::string>& addresses);
  void Start();  // starts the poller thread (polls at once)
  void Stop();

  // Usable workers, sorted by address.
  std::vector<WorkerHandle> Usable() const;
  std::vector<WorkerHandle> All() const;
  void MarkFailed(const WorkerHandle& w);

  // Fires one round of checks without waiting for answers (the poller does this).
  void PollOnce();

  // Streams open to `w` (keeps the in-flight gauge current).
  void StreamOpened(const WorkerHandle& w);
  void StreamClosed(const WorkerHandle& w);

 private:
  WorkerHandle MakeWorker(const std::string& address) const;
  void Check(const WorkerHandle& w);
  void PublishHealth(const WorkerHandle& w);
  // Tells on_usable_change the current answer if it differs from the last one told.
  void PublishAnyUsable();

  WorkerPoolOptions options_;
  RouterMetrics* metrics_;
  mutable std::mutex mu_;
  std::map<std::string, WorkerHandle> workers_;
  std::mutex poll_mu_;
  std::condition_variable poll_cv_;
  bool stop_ = false;
  std::thread poller_;
  // In-flight async checks; Stop() waits for them (their callbacks touch metrics_).
  std::atomic<int> checks_outstanding_{0};
  std::mutex usable_mu_;  // orders on_usable_change calls
  int last_any_usable_ = -1;  // -1: not told yet
};

}  // namespace rocmforge::router
