#include "router/router_metrics.h"

#include <exception>

#include "absl/strings/str_cat.h"

namespace rocmforge::router {
namespace {

prometheus::Histogram::BucketBoundaries TtftBuckets() {  // 0.005 ... 60 s, as the worker's
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}
prometheus::Histogram::BucketBoundaries DurationBuckets() {  // 0.05 ... 600 s
  return {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
}

}  // namespace

const char* OutcomeLabel(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "ok";
    case grpc::StatusCode::CANCELLED: return "cancelled";
    case grpc::StatusCode::INVALID_ARGUMENT: return "invalid_argument";
    case grpc::StatusCode::UNAUTHENTICATED: return "unauthenticated";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "resource_exhausted";
    case grpc::StatusCode::UNAVAILABLE: return "unavailable";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "deadline_exceeded";
    default: return "error";
  }
}

RouterMetrics::RouterMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  requests_ = &prometheus::BuildCounter()
                   .Name("rocmforge_router_requests_total")
                   .Help("Requests by the outcome the client saw")
                   .Register(*registry_);
  for (const char* o : {"ok", "cancelled", "invalid_argument", "unauthenticated",
                        "resource_exhausted", "unavailable", "deadline_exceeded", "error"}) {
    requests_->Add({{"outcome", o}});  // present from the start, so rates work at zero
  }
  ttft_ = &prometheus::BuildHistogram()
               .Name("rocmforge_router_time_to_first_token_seconds")
               .Help("Request arrival to first relayed token, as the client sees it")
               .Register(*registry_)
               .Add({}, TtftBuckets());
  duration_ = &prometheus::BuildHistogram()
                   .Name("rocmforge_router_request_duration_seconds")
                   .Help("Request arrival to end of stream, as the client sees it")
                   .Register(*registry_)
                   .Add({}, DurationBuckets());
  placements_ = &prometheus::BuildCounter()
                     .Name("rocmforge_router_placements_total")
                     .Help("Placement decisions")
                     .Register(*registry_);
  for (const char* d : {"affinity", "spill", "least_loaded", "retry", "resume"}) {
    placements_->Add({{"decision", d}});
  }
  relayed_tokens_ = &prometheus::BuildCounter()
                         .Name("rocmforge_router_relayed_tokens_total")
                         .Help("Tokens relayed to clients")
                         .Register(*registry_)
                         .Add({});
  in_flight_ = &prometheus::BuildGauge()
                    .Name("rocmforge_router_worker_in_flight")
                    .Help("Streams open to each worker")
                    .Register(*registry_);
  healthy_ = &prometheus::BuildGauge()
                  .Name("rocmforge_router_worker_healthy")
                  .Help("1 if the worker is serving and not draining")
                  .Register(*registry_);
  load_ = &prometheus::BuildGauge()
               .Name("rocmforge_router_worker_load")
               .Help("running + waiting from the worker's load report")
               .Register(*registry_);
}

RouterMetrics::~RouterMetrics() = default;

absl::Status RouterMetrics::Serve(const std::string& host, int port) {
  if (port <= 0) return absl::OkStatus();
  const std::string bind = absl::StrCat(host, ":", port);
  try {  // prometheus-cpp reports a taken port by throwing; keep it inside this module
    exposer_ = std::make_unique<prometheus::Exposer>(bind);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", bind, ": ", e.what(), " (is the port taken?)"));
  }
  exposer_->RegisterCollectable(registry_);
  return absl::OkStatus();
}

void RouterMetrics::CountRequest(grpc::StatusCode code) {
  requests_->Add({{"outcome", OutcomeLabel(code)}}).Increment();
}
void RouterMetrics::ObserveTimeToFirstToken(double s) { ttft_->Observe(s); }
void RouterMetrics::ObserveRequestDuration(double s) { duration_->Observe(s); }
void RouterMetrics::CountPlacement(const std::string& decision) {
  placements_->Add({{"decision", decision}}).Increment();
}
void RouterMetrics::CountRelayedTokens(int n) {
  if (n > 0) relayed_tokens_->Increment(n);
}

RouterMetrics::WorkerGauges& RouterMetrics::Gauges(const std::string& worker) {
  auto it = workers_.find(worker);
  if (it == workers_.end()) {
    WorkerGauges g{&in_flight_->Add({{"worker", worker}}), &healthy_->Add({{"worker", worker}}),
                   &load_->Add({{"worker", worker}})};
    it = workers_.emplace(worker, g).first;
  }
  return it->second;
}

void RouterMetrics::SetWorkerInFlight(const std::string& worker, int n) {
  std::lock_guard<std::mutex> lock(mu_);
  Gauges(worker).in_flight->Set(n);
}
void RouterMetrics::SetWorkerHealthy(const std::string& worker, bool healthy) {
  std::lock_guard<std::mutex> lock(mu_);
  Gauges(worker).healthy->Set(healthy ? 1 : 0);
}
void RouterMetrics::SetWorkerLoad(const std::string& worker, int load) {
  std::lock_guard<std::mutex> lock(mu_);
  Gauges(worker).load->Set(load);
}
void RouterMetrics::RemoveWorker(const std::string& worker) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(worker);
  if (it == workers_.end()) return;
  in_flight_->Remove(it->second.in_flight);
  healthy_->Remove(it->second.healthy);
  load_->Remove(it->second.load);
  workers_.erase(it);
}

}  // namespace rocmforge::router
