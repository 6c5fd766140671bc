// The router process in one object: front door (gRPC server with TLS, API
// keys, limits), discovery, health polling, placement and metrics.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "router/discovery.h"
#include "router/front_door.h"
#include "router/inference_service.h"
#include "router/router_core.h"
#include "router/router_metrics.h"
#include "router/worker_pool.h"

namespace rocmforge::router {

struct RouterOptions {
  std::string host = "0.0.0.0";
  int port = 50051;          // 0 = pick a free port (see Router::port())
  int metrics_port = 9090;   // 0 = no /metrics

  // Workers: a static list, a DNS name ("NAME:PORT") or, for tests, any resolver.
  std::vector<std::string> workers;
  std::string workers_dns;
  Resolver resolver;
  std::chrono::milliseconds dns_refresh{10000};
  std::chrono::milliseconds health_interval{1000};
  // Health checks in a row that get no answer (deadline, connection) before a
  // worker leaves placement; an answer of NOT_SERVING or draining acts at once.
  int unhealthy_after = 3;

  // Front door.
  std::string tls_cert_file, tls_key_file;  // both or neither
  std::string api_keys_file;                // "" = no authentication
  std::vector<std::string> api_keys;        // in addition to the file (tests)
  int max_concurrency_per_key = 0;          // 0 = unlimited
  int max_request_bytes = 4 << 20;

  // mTLS to the workers: CA to verify them, our client certificate and key.
  std::string worker_ca_file, worker_cert_file, worker_key_file;

  double load_epsilon = 0.25;
  int max_attempts = 4;
};

class Router {
 public:
  // Builds and starts everything; errors name the flag or file at fault.
  static absl::StatusOr<std::unique_ptr<Router>> Start(const RouterOptions& options);
  ~Router();  // Shutdown() if not done

  int port() const { return port_; }
  WorkerPool& pool() { return *pool_; }
  RouterMetrics& metrics() { return *metrics_; }

  // Stops accepting calls; in-flight streams get until `deadline` to finish,
  // then are cancelled.
  void Shutdown(std::chrono::system_clock::time_point deadline);
  void Wait();

  // grpc.health.v1 service name that is SERVING only while at least one worker
  // is usable (the readiness probe asks for it); the overall "" service is
  // SERVING from start until Shutdown (liveness).
  static constexpr char kReadyService[] = "rocmforge.v1.Inference";

 private:
  Router() = default;
  // From the pool: whether any worker is usable (publishes kReadyService).
  void OnUsableChange(bool any_usable);

  std::unique_ptr<RouterMetrics> metrics_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<ConcurrencyLimiter> limiter_;
  std::unique_ptr<RouterCore> core_;
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<Discovery> discovery_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
  std::mutex health_mu_;  // guards the three below
  grpc::HealthCheckServiceInterface* health_ = nullptr;  // set once the server runs
  bool any_usable_ = false;
  bool health_closed_ = false;  // after Shutdown: no more updates
};

}  // namespace rocmforge::router
