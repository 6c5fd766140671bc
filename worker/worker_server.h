// A worker process's server: gRPC (Inference, WorkerControl, grpc.health.v1,
// reflection) on one port and Prometheus /metrics on another, around one
// engine. Lifecycle:
//   Start()       ports open, health NOT_SERVING, Generate answers UNAVAILABLE
//   LoadEngine()  builds the engine (metrics observe it), health SERVING
//   Drain()       health NOT_SERVING, new Generate refused, in-flight streams
//                 finish; after the deadline the rest are cancelled
//   Shutdown()    stops gRPC, then the engine (also done by the destructor)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "worker/request_builder.h"

namespace prometheus {
class Exposer;
}

namespace rocmforge::worker {

class WorkerCore;
class WorkerMetrics;
class InferenceService;
class WorkerControlService;

struct WorkerOptions {
  std::string host = "127.0.0.1";
  int32_t port = 50061;          // 0 = pick a free port (see port())
  int32_t metrics_port = 9091;   // 0 = pick a free port; -1 = no /metrics endpoint
  std::string worker_id;         // empty: "host:port"
  RequestLimits limits;
  // TLS on the gRPC port (the metrics port stays plain HTTP). Cert and key
  // (PEM files) go together; empty = plaintext. With tls_client_ca_file the
  // port also requires a client certificate signed by that CA (mTLS: only
  // routers holding such a certificate get in).
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
};

// Makes the engine; gets the metrics observer to pass to Engine::Create.
using EngineFactory = std::function<absl::StatusOr<std::unique_ptr<Engine>>(EngineObserver*)>;

class WorkerServer {
 public:
  static absl::StatusOr<std::unique_ptr<WorkerServer>> Start(const WorkerOptions& options);
  ~WorkerServer();

  // Builds the engine and turns health SERVING. The model name served is
  // model_config().name, or `fallback_model_name` when that is empty.
  absl::Status LoadEngine(const EngineFactory& factory, const std::string& fallback_model_name);

  int32_t port() const { return port_; }
  int32_t metrics_port() const { return metrics_port_; }  // -1 when disabled
  std::string address() const;                            // "host:port"

  // See WorkerCore::StartDrain. Returns the streams in flight.
  int32_t Drain(double deadline_seconds);
  // True once no stream is in flight (within `timeout`).
  bool WaitIdle(absl::Duration timeout);
  int32_t InFlight() const;

  // Stops gRPC (open calls get `grace` to end), then the engine. Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(5));

  WorkerMetrics& metrics() { return *metrics_; }
  Engine* engine() { return engine_.get(); }

 private:
  WorkerServer() = default;
  void SetHealth(bool serving);

  WorkerOptions options_;
  int32_t port_ = 0;
  int32_t metrics_port_ = -1;
  std::unique_ptr<WorkerMetrics> metrics_;
  std::unique_ptr<WorkerCore> core_;
  std::unique_ptr<InferenceService> inference_;
  std::unique_ptr<WorkerControlService> control_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<Engine> engine_;
  bool shut_down_ = false;
};

}  // namespace rocmforge::worker
