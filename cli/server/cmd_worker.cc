// `rocmforge worker`: serves one model over gRPC until SIGTERM/SIGINT, then
// drains (finishes in-flight streams up to --drain-timeout) and exits 0.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "cli/flags.h"
#include "engine/engine.h"
#include "worker/worker_server.h"

namespace rocmforge::cli {
namespace {

// Prefill tokens a step may carry while streams are decoding: every running
// stream waits for the whole step, so this bounds inter-token latency (see
// bench/RESULTS.md, worker load on the H100); an idle worker still prefills
// with the whole --max-batch-tokens budget. Not given (-1): the backend's
// choice (Backend::DefaultPrefillCapWithDecodes: 64 on the CPU, 480 on a GPU
// whose prefill runs the Hopper dense GEMM).
constexpr int64_t kDefaultPrefillWithDecodes = -1;

constexpr char kUsage[] =
    "worker --model M.gguf [--port 50061] [--metrics-port 9091] [--device cpu|gpu] "
    "[--host 127.0.0.1|0.0.0.0] [--threads N] [--ctx N] [--kv-blocks N] [--kv-memory-mb N] "
    "[--max-batch-tokens N] [--max-running N] [--max-prefill-with-decodes N] [--no-fill-step-sizes] [--no-trim-step-sizes] [--no-f16-weight-cache] "
    "[--drain-timeout S] [--tls-cert F --tls-key F [--tls-client-ca F]]";

struct Parsed {
  worker::WorkerOptions worker;
  EngineOptions engine;
  double drain_timeout = 30;
};

absl::StatusOr<Parsed> ParseArgs(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args,
                            {"model", "port", "metrics-port", "device", "host", "threads", "ctx",
                             "kv-blocks", "kv-memory-mb", "max-batch-tokens", "max-running", "max-prefill-with-decodes",
                             "drain-timeout",
                             "tls-cert", "tls-key", "tls-client-ca"},
                            {"no-fill-step-sizes", "no-trim-step-sizes", "no-f16-weight-cache"});
  if (!flags.ok()) return flags.status();
  if (!flags->positional().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", flags->positional()[0], "'"));
  }
  Parsed p;
  p.engine.model_path = flags->GetOr("model", "");
  if (p.engine.model_path.empty()) return absl::InvalidArgumentError("--model M.gguf is required");
  p.engine.device = flags->GetOr("device", "cpu");
  if (p.engine.device != "cpu" && p.engine.device != "gpu") {
    return absl::InvalidArgumentError("--device must be cpu or gpu");
  }
  p.worker.host = flags->GetOr("host", "127.0.0.1");
  // TLS on the gRPC port; --tls-client-ca makes it require router client
  // certificates (mTLS). WorkerServer::Start checks the files.
  p.worker.tls_cert_file = flags->GetOr("tls-cert", "");
  p.worker.tls_key_file = flags->GetOr("tls-key", "");
  p.worker.tls_client_ca_file = flags->GetOr("tls-client-ca", "");
  struct IntFlag {
    const char* name;
    int64_t dflt, lo, hi;
    int64_t* out;
  };
  int64_t port, metrics_port, threads, ctx, kv_blocks, kv_mb, batch, running, prefill_cap;
  const IntFlag ints[] = {
      {"port", 50061, 0, 65535, &port},          {"metrics-port", 9091, -1, 65535, &metrics_port},
      {"threads", 0, 0, 1024, &threads},         {"ctx", 0, 0, 1 << 20, &ctx},
      {"kv-blocks", 0, 0, 1 << 24, &kv_blocks},  {"kv-memory-mb", 0, 0, int64_t{1} << 30, &kv_mb},
      {"max-batch-tokens", 512, 1, 1 << 20, &batch},
      {"max-running", 64, 1, 1 << 16, &running},
      {"max-prefill-with-decodes", kDefaultPrefillWithDecodes, -1, 1 << 20, &prefill_cap},
  };
  for (const IntFlag& f : ints) {
    auto v = flags->GetInt(f.name, f.dflt);
    if (!v.ok()) return v.status();
    if (*v < f.lo || *v > f.hi) {
      return absl::InvalidArgumentError(absl::StrCat("--", f.name, " must be in [", f.lo, ", ", f.hi, "], got ", *v));
    }
    *f.out = *v;
  }
  p.worker.port = static_cast<int32_t>(port);
  p.worker.metrics_port = static_cast<int32_t>(metrics_port);
  p.engine.threads = static_cast<int32_t>(threads);
  p.engine.context_length = static_cast<int32_t>(ctx);
  p.engine.kv_blocks = static_cast<int32_t>(kv_blocks);
  p.engine.kv_memory_cap_bytes = kv_mb * 1024 * 1024;
  p.engine.max_batch_tokens = static_cast<int32_t>(batch);
  p.engine.max_running = static_cast<int32_t>(running);
  p.engine.max_prefill_tokens_with_decodes = static_cast<int32_t>(prefill_cap);
  // Off: the prefill cap is exact even where a bigger chunk would cost the same step time.
  p.engine.fill_step_sizes = !flags->Has("no-fill-step-sizes");
  // Off: a step that ends just past a step size is not cut back to it.
  p.engine.trim_step_sizes = !flags->Has("no-trim-step-sizes");
  // Off: no f16 weight copies in the memory the KV pool leaves (slower prefill).
  p.engine.use_spare_memory = !flags->Has("no-f16-weight-cache");
  auto drain = flags->GetDouble("drain-timeout", 30);
  if (!drain.ok()) return drain.status();
  if (!(*drain >= 0)) return absl::InvalidArgumentError("--drain-timeout must be >= 0 seconds");
  p.drain_timeout = *drain;
  return p;
}

int RunWorker(const std::vector<std::string>& args) {
  absl::StatusOr<Parsed> parsed = ParseArgs(args);
  if (!parsed.ok()) return Fail(absl::StrCat(parsed.status().message(), " (usage: rocmforge ", kUsage, ")"));

  // Signals are taken synchronously by sigwait below; block them before any
  // thread starts so every gRPC/engine thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = worker::WorkerServer::Start(parsed->worker);
  if (!server.ok()) return Fail(std::string(server.status().message()));
  std::fprintf(stderr, "rocmforge worker: loading %s on %s (health NOT_SERVING until ready)\n",
               parsed->engine.model_path.c_str(), parsed->engine.device.c_str());
  const EngineOptions engine_options = parsed->engine;
  absl::Status loaded = (*server)->LoadEngine(
      [&](EngineObserver* observer) { return Engine::Create(engine_options, observer); },
      std::filesystem::path(engine_options.model_path).stem().string());
  if (!loaded.ok()) return Fail(absl::StrCat("cannot load model: ", loaded.message()));
  if ((*server)->metrics_port() >= 0) {
    std::fprintf(stderr, "metrics on %s:%d/metrics\n", parsed->worker.host.c_str(), (*server)->metrics_port());
  }
  std::fprintf(stderr, "listening on %s\n", (*server)->address().c_str());
  std::fflush(stderr);

  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "rocmforge worker: %s, draining %d stream(s) (deadline %gs)\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", (*server)->Drain(parsed->drain_timeout),
               parsed->drain_timeout);
  // Past the deadline the rest are cancelled; cancelled streams end within a
  // step, the extra seconds only guard against a stuck client.
  const absl::Duration wait =
      parsed->drain_timeout > 0 ? absl::Seconds(parsed->drain_timeout + 10) : absl::InfiniteDuration();
  if (!(*server)->WaitIdle(wait)) {
    std::fprintf(stderr, "rocmforge worker: %d stream(s) still open, closing them\n", (*server)->InFlight());
  }
  (*server)->Shutdown(absl::Seconds(2));
  std::fprintf(stderr, "rocmforge worker: drained, exiting\n");
  return 0;
}

}  // namespace

RF_REGISTER_COMMAND(worker, "worker", kUsage, RunWorker);

}  // namespace rocmforge::cli
