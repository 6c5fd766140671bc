#include "router/router_server.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "router/worker_addresses.h"

namespace rocmforge::router {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, ": cannot read '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const RouterOptions& o) {
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (o.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  absl::StatusOr<std::string> cert = ReadFile(o.tls_cert_file, "--tls-cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile(o.tls_key_file, "--tls-key");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(ssl);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> WorkerCredentials(
    const RouterOptions& o) {
  if (o.worker_ca_file.empty() && o.worker_cert_file.empty() && o.worker_key_file.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  if (o.worker_cert_file.empty() != o.worker_key_file.empty()) {
    return absl::InvalidArgumentError("--worker-cert and --worker-key go together");
  }
  grpc::SslCredentialsOptions ssl;
  if (!o.worker_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadFile(o.worker_ca_file, "--worker-ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
  }
  if (!o.worker_cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadFile(o.worker_cert_file, "--worker-cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile(o.worker_key_file, "--worker-key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Router>> Router::Start(const RouterOptions& o) {
  std::unique_ptr<Router> r(new Router());
  if (o.load_epsilon < 0) return absl::InvalidArgumentError("--load-epsilon must be >= 0");
  if (o.max_request_bytes <= 0) return absl::InvalidArgumentError("--max-request-bytes must be > 0");
  if (o.unhealthy_after < 1) return absl::InvalidArgumentError("--unhealthy-after must be >= 1");
  if (o.max_concurrency_per_key < 0) {
    return absl::InvalidArgumentError("--max-concurrency-per-key must be >= 0");
  }

  // Where the workers are.
  Resolver resolver = o.resolver;
  std::string tls_target_name;
  if (!resolver && !o.workers_dns.empty()) {
    absl::StatusOr<DnsTarget> target = ParseDnsTarget(o.workers_dns);
    if (!target.ok()) return target.status();
    tls_target_name = target->name;  // worker certificates name the service, not pod IPs
    resolver = [t = *target] { return ResolveWorkers(t); };
  }
  if (!resolver) {
    if (o.workers.empty()) return absl::InvalidArgumentError("give --workers or --workers-dns");
    resolver = [w = o.workers]() -> absl::StatusOr<std::vector<std::string>> { return w; };
  }

  ApiKeys keys;
  if (!o.api_keys_file.empty()) {
    absl::StatusOr<ApiKeys> k = ApiKeys::FromFile(o.api_keys_file);
    if (!k.ok()) return k.status();
    keys = *std::move(k);
  }
  if (!o.api_keys.empty()) keys = keys.WithKeys(o.api_keys);

  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> server_creds = ServerCredentials(o);
  if (!server_creds.ok()) return server_creds.status();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> worker_creds = WorkerCredentials(o);
  if (!worker_creds.ok()) return worker_creds.status();

  r->metrics_ = std::make_unique<RouterMetrics>();
  if (absl::Status s = r->metrics_->Serve(o.host, o.metrics_port); !s.ok()) return s;

  WorkerPoolOptions pool_options;
  pool_options.credentials = *worker_creds;
  if (!o.worker_ca_file.empty()) pool_options.tls_target_name = tls_target_name;
  pool_options.poll_interval = o.health_interval;
  pool_options.unhealthy_after = o.unhealthy_after;
  pool_options.check_timeout = std::min(o.health_interval, std::chrono::milliseconds(1000));
  if (pool_options.check_timeout < std::chrono::milliseconds(200))
    pool_options.check_timeout = std::chrono::milliseconds(200);
  Router* self = r.get();
  pool_options.on_usable_change = [self](bool any) { self->OnUsableChange(any); };
  r->pool_ = std::make_unique<WorkerPool>(pool_options, r->metrics_.get());
  r->limiter_ = std::make_unique<ConcurrencyLimiter>(o.max_concurrency_per_key);

  r->core_ = std::make_unique<RouterCore>();
  r->core_->pool = r->pool_.get();
  r->core_->metrics = r->metrics_.get();
  r->core_->keys = std::move(keys);
  r->core_->limiter = r->limiter_.get();
  r->core_->load_epsilon = o.load_epsilon;
  r->core_->max_attempts = o.max_attempts;
  r->service_ = std::make_unique<InferenceService>(r->core_.get());

  r->discovery_ = std::make_unique<Discovery>(resolver, o.dns_refresh, r->pool_.get());
  if (absl::Status s = r->discovery_->Start(); !s.ok()) {
    // Not fatal: DNS may come up later (pods still starting). Say so once.
    std::fprintf(stderr, "router: worker discovery: %s (will retry)\n",
                 std::string(s.message()).c_str());
  }
  r->pool_->Start();

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat(o.host, ":", o.port), *server_creds, &r->port_);
  builder.SetMaxReceiveMessageSize(o.max_request_bytes);
  builder.RegisterService(r->service_.get());
  r->server_ = builder.BuildAndStart();
  if (!r->server_ || r->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", o.host, ":", o.port, " (is the port taken?)"));
  }
  {
    std::lock_guard<std::mutex> lock(r->health_mu_);
    r->health_ = r->server_->GetHealthCheckService();
    if (r->health_ != nullptr) r->health_->SetServingStatus(kReadyService, r->any_usable_);
  }
  return r;
}

void Router::OnUsableChange(bool any_usable) {
  std::lock_guard<std::mutex> lock(health_mu_);
  any_usable_ = any_usable;
  if (health_ != nullptr && !health_closed_) health_->SetServingStatus(kReadyService, any_usable);
}

void Router::Shutdown(std::chrono::system_clock::time_point deadline) {
  if (shut_down_) return;
  shut_down_ = true;
  {
    std::lock_guard<std::mutex> lock(health_mu_);
    health_closed_ = true;
    if (health_ != nullptr) health_->SetServingStatus(false);  // every service name
  }
  if (server_) server_->Shutdown(deadline);
  // Client calls are over; their upstream calls end right after (cancelled).
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (core_ && core_->live_relays.load() > 0 && std::chrono::steady_clock::now() < limit) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (discovery_) discovery_->Stop();
  if (pool_) pool_->Stop();
}

void Router::Wait() {
  if (server_) server_->Wait();
}

Router::~Router() { Shutdown(std::chrono::system_clock::now()); }

}  // namespace rocmforge::router
