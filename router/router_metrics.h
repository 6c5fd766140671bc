// The router's Prometheus metrics, named exactly as docs/metrics.md lists them
// (dashboards and alert rules query these names).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/support/status.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace rocmforge::router {

// The `outcome` label value for a status the client saw.
const char* OutcomeLabel(grpc::StatusCode code);

class RouterMetrics {
 public:
  RouterMetrics();
  ~RouterMetrics();

  // Serves /metrics on host:port (port 0 = do not serve). Error if the port is taken.
  absl::Status Serve(const std::string& host, int port);

  void CountRequest(grpc::StatusCode code);
  void ObserveTimeToFirstToken(double seconds);
  void ObserveRequestDuration(double seconds);
  void CountPlacement(const std::string& decision);  // affinity, spill, least_loaded, retry, resume
  void CountRelayedTokens(int n);

  // Per-worker gauges; RemoveWorker drops the worker's label set.
  void SetWorkerInFlight(const std::string& worker, int n);
  void SetWorkerHealthy(const std::string& worker, bool healthy);
  void SetWorkerLoad(const std::string& worker, int load);
  void RemoveWorker(const std::string& worker);

  prometheus::Registry& registry() { return *registry_; }

 private:
  struct WorkerGauges {
    prometheus::Gauge* in_flight;
    prometheus::Gauge* healthy;
    prometheus::Gauge* load;
  };
  WorkerGauges& Gauges(const std::string& worker);  // mu_ held

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Counter>* placements_;
  prometheus::Histogram* ttft_;
  prometheus::Histogram* duration_;
  prometheus::Counter* relayed_tokens_;
  prometheus::Family<prometheus::Gauge>* in_flight_;
  prometheus::Family<prometheus::Gauge>* healthy_;
  prometheus::Family<prometheus::Gauge>* load_;
  std::mutex mu_;
  std::map<std::string, WorkerGauges> workers_;
};

}  // namespace rocmforge::router
