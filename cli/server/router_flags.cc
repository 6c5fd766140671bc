#include "cli/server/router_flags.h"

#include <csignal>

#include "absl/strings/str_cat.h"

namespace rocmforge::cli {

const std::set<std::string>& RouterValueFlags() {
  static const std::set<std::string> flags = {
      "port",          "metrics-port",  "host",          "tls-cert",
      "tls-key",       "api-keys-file", "max-concurrency-per-key",
      "worker-ca",     "worker-cert",   "worker-key",    "dns-refresh-seconds",
      "load-epsilon",  "max-request-bytes", "health-interval-ms", "unhealthy-after"};
  return flags;
}

absl::Status ApplyRouterFlags(const Flags& flags, router::RouterOptions* o) {
  auto port = flags.GetInt("port", 50051);
  if (!port.ok()) return port.status();
  auto metrics_port = flags.GetInt("metrics-port", 9090);
  if (!metrics_port.ok()) return metrics_port.status();
  auto limit = flags.GetInt("max-concurrency-per-key", 0);
  if (!limit.ok()) return limit.status();
  auto refresh = flags.GetDouble("dns-refresh-seconds", 10);
  if (!refresh.ok()) return refresh.status();
  auto eps = flags.GetDouble("load-epsilon", 0.25);
  if (!eps.ok()) return eps.status();
  auto max_bytes = flags.GetInt("max-request-bytes", 4 << 20);
  if (!max_bytes.ok()) return max_bytes.status();
  auto health_ms = flags.GetInt("health-interval-ms", 1000);
  if (!health_ms.ok()) return health_ms.status();
  auto unhealthy_after = flags.GetInt("unhealthy-after", 3);
  if (!unhealthy_after.ok()) return unhealthy_after.status();
  if (*port < 0 || *port > 65535) return absl::InvalidArgumentError("--port must be in 0..65535");
  if (*metrics_port < 0 || *metrics_port > 65535) {
    return absl::InvalidArgumentError("--metrics-port must be in 0..65535 (0 = off)");
  }
  if (*refresh <= 0) return absl::InvalidArgumentError("--dns-refresh-seconds must be > 0");
  if (*health_ms < 10) return absl::InvalidArgumentError("--health-interval-ms must be >= 10");
  if (*unhealthy_after < 1 || *unhealthy_after > 100) {
    return absl::InvalidArgumentError("--unhealthy-after must be in 1..100");
  }
  if (*max_bytes <= 0 || *max_bytes > (1 << 30)) {
    return absl::InvalidArgumentError("--max-request-bytes must be in 1..1073741824");
  }
  o->host = flags.GetOr("host", "0.0.0.0");
  o->port = static_cast<int>(*port);
  o->metrics_port = static_cast<int>(*metrics_port);
  o->tls_cert_file = flags.GetOr("tls-cert", "");
  o->tls_key_file = flags.GetOr("tls-key", "");
  o->api_keys_file = flags.GetOr("api-keys-file", "");
  o->max_concurrency_per_key = static_cast<int>(*limit);
  o->worker_ca_file = flags.GetOr("worker-ca", "");
  o->worker_cert_file = flags.GetOr("worker-cert", "");
  o->worker_key_file = flags.GetOr("worker-key", "");
  o->dns_refresh = std::chrono::milliseconds(static_cast<int64_t>(*refresh * 1000));
  o->health_interval = std::chrono::milliseconds(*health_ms);
  o->unhealthy_after = static_cast<int>(*unhealthy_after);
  o->load_epsilon = *eps;
  o->max_request_bytes = static_cast<int>(*max_bytes);
  return absl::OkStatus();
}

namespace {
sigset_t TerminationSignals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  return s;
}
}  // namespace

void BlockTerminationSignals() {
  sigset_t s = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
}

int WaitForTerminationSignal() {
  sigset_t s = TerminationSignals();
  int sig = 0;
  sigwait(&s, &sig);
  return sig;
}

}  // namespace rocmforge::cli
