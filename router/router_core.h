// What every call handler of the router shares: the worker pool, the metrics,
// the front door and the placement policy over the currently usable workers.
#pragma once

#include <atomic>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "router/front_door.h"
#include "router/router_metrics.h"
#include "router/worker_pool.h"

namespace rocmforge::router {

struct Chosen {
  WorkerHandle worker;
  std::string decision;  // placements_total label: affinity, spill, least_loaded
};

struct RouterCore {
  WorkerPool* pool = nullptr;
  RouterMetrics* metrics = nullptr;
  ApiKeys keys;
  ConcurrencyLimiter* limiter = nullptr;
  double load_epsilon = 0.25;
  int max_attempts = 4;  // upstream Generate calls per client request (first + failovers)
  // Generate relays alive (their upstream calls may outlive the client call);
  // shutdown waits for zero before tearing down what they use.
  mutable std::atomic<int> live_relays{0};

  // A usable worker not in `exclude` (addresses) that serves `model` ("" =
  // any): bounded-load rendezvous on `session_id`, least loaded of two without.
  // UNAVAILABLE when none is usable; INVALID_ARGUMENT when workers are up but
  // none serves `model`.
  absl::StatusOr<Chosen> Choose(const std::string& session_id, const std::string& model,
                                const std::set<std::string>& exclude) const;
};

// absl::Status -> grpc::Status with the same code and message.
grpc::Status ToGrpc(const absl::Status& s);

}  // namespace rocmforge::router
