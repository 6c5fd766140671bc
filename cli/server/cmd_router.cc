// `rocmforge router (--workers H:P,H:P | --workers-dns NAME:PORT) [--port 50051]
// [--metrics-port 9090] [--host 0.0.0.0] [front-door and placement flags]`:
// the stateless router in front of many workers (router/).
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/flags.h"
#include "cli/server/router_flags.h"
#include "router/router_server.h"
#include "router/worker_addresses.h"

namespace rocmforge::cli {
namespace {

constexpr char kUsage[] =
    "router (--workers H:P,H:P | --workers-dns NAME:PORT) [--port 50051] [--metrics-port 9090] "
    "[--host 0.0.0.0] [--tls-cert F --tls-key F] [--api-keys-file F] [--max-concurrency-per-key N] "
    "[--worker-ca F --worker-cert F --worker-key F] [--dns-refresh-seconds S] [--load-epsilon E] "
    "[--max-request-bytes N] [--health-interval-ms N] [--unhealthy-after N]";

int RunRouter(const std::vector<std::string>& args) {
  std::set<std::string> value_flags = RouterValueFlags();
  value_flags.insert({"workers", "workers-dns"});
  auto flags = Flags::Parse(args, value_flags, {});
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  if (!flags->positional().empty()) return Fail("router takes no positional arguments");
  router::RouterOptions o;
  if (absl::Status s = ApplyRouterFlags(*flags, &o); !s.ok()) return Fail(std::string(s.message()));
  if (flags->Has("workers") == flags->Has("workers-dns")) {
    return Fail("router needs exactly one of --workers H:P,H:P or --workers-dns NAME:PORT");
  }
  if (flags->Has("workers")) {
    auto list = router::ParseWorkerList(flags->GetOr("workers", ""));
    if (!list.ok()) return Fail(std::string(list.status().message()));
    o.workers = *list;
  } else {
    o.workers_dns = flags->GetOr("workers-dns", "");
  }

  BlockTerminationSignals();
  auto r = router::Router::Start(o);
  if (!r.ok()) return Fail(absl::StrCat("router: ", r.status().message()));
  if (o.metrics_port > 0) std::fprintf(stderr, "metrics on %s:%d/metrics\n", o.host.c_str(), o.metrics_port);
  std::fprintf(stderr, "listening on %s:%d\n", o.host.c_str(), (*r)->port());
  std::fflush(stderr);

  const int sig = WaitForTerminationSignal();
  std::fprintf(stderr, "rocmforge router: %s, finishing open streams (up to 30 s)\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*r)->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return 0;
}

}  // namespace

RF_REGISTER_COMMAND(router, "router", kUsage, RunRouter);

}  // namespace rocmforge::cli
