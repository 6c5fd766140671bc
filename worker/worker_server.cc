#include "worker/worker_server.h"

#include <exception>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"
#include "prometheus/exposer.h"
#include "worker/inference_service.h"
#include "worker/worker_control_service.h"
#include "worker/worker_core.h"
#include "worker/worker_metrics.h"

namespace rocmforge::worker {
namespace {

std::string HostPort(const std::string& host, int32_t port) {
  // IPv6 literals need brackets in "host:port".
  if (host.find(':') != std::string::npos && host.front() != '[') return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, ": cannot read '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": '", path, "' is not a PEM file"));
  }
  return ss.str();
}

// Plaintext, TLS, or TLS that requires and verifies a client certificate.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcCredentials(const WorkerOptions& o) {
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (o.tls_cert_file.empty()) {
    if (!o.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
    }
    return grpc::InsecureServerCredentials();
  }
  RF_ASSIGN_OR_RETURN(std::string cert, ReadPem(o.tls_cert_file, "--tls-cert"));
  RF_ASSIGN_OR_RETURN(std::string key, ReadPem(o.tls_key_file, "--tls-key"));
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  if (!o.tls_client_ca_file.empty()) {
    RF_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(o.tls_client_ca_file, "--tls-client-ca"));
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  ssl.pem_key_cert_pairs.push_back({std::move(key), std::move(cert)});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<WorkerServer>> WorkerServer::Start(const WorkerOptions& options) {
  // Bad TLS files fail before any port opens.
  RF_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials, GrpcCredentials(options));
  std::unique_ptr<WorkerServer> s(new WorkerServer());
  s->options_ = options;
  s->metrics_ = std::make_unique<WorkerMetrics>();
  s->metrics_->SetDraining(false);

  if (options.metrics_port >= 0) {
    // prometheus-cpp (CivetWeb) reports a busy port by throwing; keep that
    // inside this module and turn it into a status.
    try {
      s->exposer_ = std::make_unique<prometheus::Exposer>(HostPort(options.host, options.metrics_port), 2);
      s->exposer_->RegisterCollectable(s->metrics_->collectable());
      const std::vector<int> ports = s->exposer_->GetListeningPorts();
      s->metrics_port_ = ports.empty() ? options.metrics_port : ports.front();
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat("cannot serve metrics on ",
                                                 HostPort(options.host, options.metrics_port), ": ",
                                                 e.what(), " (is the port in use? try --metrics-port)"));
    }
  }

  s->core_ = std::make_unique<WorkerCore>(s->metrics_.get(), options.limits, options.worker_id);
  s->inference_ = std::make_unique<InferenceService>(s->core_.get());
  s->control_ = std::make_unique<WorkerControlService>(s->core_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int selected_port = 0;
  const std::string addr = HostPort(options.host, options.port);
  builder.AddListeningPort(addr, credentials, &selected_port);
  builder.RegisterService(s->inference_.get());
  builder.RegisterService(s->control_.get());
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || selected_port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", addr, " (is the port in use? try --port",
        options.tls_cert_file.empty() ? "" : "; or are --tls-cert/--tls-key not a matching PEM pair?",
        ")"));
  }
  s->port_ = selected_port;
  if (options.worker_id.empty()) s->core_->SetWorkerId(s->address());
  s->SetHealth(false);  // loading
  WorkerServer* self = s.get();
  s->core_->SetHealthHook([self](bool serving) { self->SetHealth(serving); });
  return s;
}

WorkerServer::~WorkerServer() { Shutdown(absl::ZeroDuration()); }

std::string WorkerServer::address() const { return HostPort(options_.host, port_); }

void WorkerServer::SetHealth(bool serving) {
  if (!server_) return;
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    // The overall status ("") and each service by name, as clients may ask either.
    health->SetServingStatus(serving);
    health->SetServingStatus(v1::Inference::service_full_name(), serving);
    health->SetServingStatus(v1::WorkerControl::service_full_name(), serving);
  }
}

absl::Status WorkerServer::LoadEngine(const EngineFactory& factory,
                                      const std::string& fallback_model_name) {
  if (engine_) return absl::FailedPreconditionError("the engine is already loaded");
  RF_ASSIGN_OR_RETURN(engine_, factory(metrics_.get()));
  std::string name = engine_->model_config().name;
  if (name.empty()) name = fallback_model_name;
  metrics_->SetModelInfo(name, engine_->quantization(), engine_->device_name());
  Engine* engine = engine_.get();
  metrics_->SetStatsSource([engine]() -> std::optional<EngineStats> { return engine->Stats(); });
  core_->SetEngine(engine, name);
  if (!core_->draining()) SetHealth(true);
  return absl::OkStatus();
}

int32_t WorkerServer::Drain(double deadline_seconds) { return core_->StartDrain(deadline_seconds); }

bool WorkerServer::WaitIdle(absl::Duration timeout) { return core_->WaitIdle(timeout); }

int32_t WorkerServer::InFlight() const { return core_->InFlight(); }

void WorkerServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  if (server_) {
    SetHealth(false);
    // Streams still open when the grace period ends are cancelled by gRPC;
    // their reactors cancel the engine requests, whose final events let
    // them finish. Shutdown returns once every call is done.
    server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace));
  }
  core_->StopDrainTimer();  // it may call into the engine
  if (engine_) {
    metrics_->SetStatsSource(nullptr);
    engine_->Shutdown();
  }
  exposer_.reset();
}

}  // namespace rocmforge::worker
