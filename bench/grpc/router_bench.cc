// Router benchmark: what the router adds per token and how many tokens/s one
// router core relays, measured against a fake worker that produces tokens as
// fast as gRPC carries them (router/fake_worker.h), so the worker is never
// the bottleneck.
//
// Three processes, forked before any gRPC use: the fake workers, the router
// (pinned to one CPU with sched_setaffinity: "one router core"), and this
// client. Reports
//   1. per-token latency of one paced stream (worker send time stamped in the
//      message, received time taken by the client; CLOCK_MONOTONIC is shared
//      by all processes) direct to the worker and through the router: the
//      difference is the router's added latency per token;
//   2. relayed tokens/s through the router with C concurrent streams, and the
//      router's CPU time per token (from /proc/PID/stat), i.e. tokens per
//      router-core-second.
// Usage: router_bench [--tokens N] [--streams C] [--router-cpu K]
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "rocmforge/v1/inference.grpc.pb.h"
#include "router/fake_worker.h"
#include "router/router_server.h"

namespace {

using Clock = std::chrono::steady_clock;

// Set before fork(); the children read them.
int g_fast_port = 0, g_paced_port = 0, g_router_cpu = 0;
constexpr char kFast[] = "fast", kPaced[] = "paced";
constexpr auto kPace = std::chrono::microseconds(2000);

// Runs `body` in a child process that reports its port through a pipe and
// then serves until killed.
pid_t ForkServer(long long* port_out, long long (*body)()) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    const long long port = body();
    (void)!write(fds[1], &port, sizeof port);
    close(fds[1]);
    if (port <= 0) _exit(1);
    pause();
    _exit(0);
  }
  close(fds[1]);
  long long port = 0;
  if (read(fds[0], &port, sizeof port) != sizeof port) port = 0;
  close(fds[0]);
  *port_out = port;
  return pid;
}

// Two fake workers in one process: "fast" (tokens as fast as gRPC takes them)
// and "paced" (one token every kPace, each stamped with its send time).
long long RunFakeWorkers() {
  rocmforge::router::testing::FakeWorkerOptions fast;
  fast.model = kFast;
  auto f = rocmforge::router::testing::FakeWorker::Start(fast);
  rocmforge::router::testing::FakeWorkerOptions paced;
  paced.model = kPaced;
  paced.token_delay = kPace;
  paced.stamp_send_time = true;
  auto p = rocmforge::router::testing::FakeWorker::Start(paced);
  if (!f.ok() || !p.ok()) return 0;
  const long long ports = (*f)->port() * 65536LL + (*p)->port();
  f->release();  // both live until the process is killed
  p->release();
  return ports;
}

long long RunRouter() {
  if (g_router_cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(g_router_cpu, &set);
    sched_setaffinity(0, sizeof set, &set);  // threads created from here on inherit it
  }
  rocmforge::router::RouterOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.metrics_port = 0;
  o.workers = {"127.0.0.1:" + std::to_string(g_fast_port), "127.0.0.1:" + std::to_string(g_paced_port)};
  auto r = rocmforge::router::Router::Start(o);
  if (!r.ok()) return 0;
  const auto end = Clock::now() + std::chrono::seconds(10);
  while ((*r)->pool().Usable().size() < 2 && Clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const int port = (*r)->port();
  r->release();
  return port;
}

double CpuSeconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t close_paren = s.rfind(')');
  if (close_paren == std::string::npos) return 0;
  std::istringstream in(s.substr(close_paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

rocmforge::v1::GenerateRequest Request(const char* model, int tokens, int i) {
  rocmforge::v1::GenerateRequest r;
  r.set_model(model);
  r.add_prompt_ids(1);
  r.add_prompt_ids(10 + i);
  r.mutable_stopping()->set_max_tokens(tokens);
  r.mutable_sampling()->set_seed(static_cast<uint64_t>(i));
  return r;
}

struct StreamStats {
  int tokens = 0;
  std::vector<double> latency_us;  // send (worker) to receive (client), paced worker only
};

StreamStats OneStream(rocmforge::v1::Inference::Stub& stub, const char* model, int tokens, int i) {
  StreamStats s;
  grpc::ClientContext ctx;
  auto reader = stub.Generate(&ctx, Request(model, tokens, i));
  rocmforge::v1::GenerateResponse m;
  const bool stamped = std::strcmp(model, kPaced) == 0;
  while (reader->Read(&m)) {
    if (stamped) {
      const long long now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                Clock::now().time_since_epoch()).count();
      s.latency_us.push_back(static_cast<double>(now - std::stoll(m.text())) / 1000.0);
    }
    s.tokens += m.token_ids_size();
  }
  if (!reader->Finish().ok()) s.tokens = -1;
  return s;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

double Mean(const std::vector<double>& v) {
  double t = 0;
  for (double x : v) t += x;
  return v.empty() ? 0 : t / static_cast<double>(v.size());
}

}  // namespace

int main(int argc, char** argv) {
  int tokens = 4000, streams = 32, router_cpu = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--tokens")) tokens = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--streams")) streams = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--router-cpu")) router_cpu = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: router_bench [--tokens N] [--streams C] [--router-cpu K|-1]\n");
      return 2;
    }
  }
  g_router_cpu = router_cpu;
  long long ports = 0, router_port = 0;
  const pid_t worker = ForkServer(&ports, RunFakeWorkers);
  g_fast_port = static_cast<int>(ports / 65536);
  g_paced_port = static_cast<int>(ports % 65536);
  const pid_t router = ports > 0 ? ForkServer(&router_port, RunRouter) : -1;
  if (ports <= 0 || router_port <= 0) {
    std::fprintf(stderr, "router_bench: could not start the fake workers or the router\n");
    if (worker > 0) kill(worker, SIGKILL);
    if (router > 0) kill(router, SIGKILL);
    return 1;
  }
  auto direct = rocmforge::v1::Inference::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(g_paced_port), grpc::InsecureChannelCredentials()));
  auto via = rocmforge::v1::Inference::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(router_port), grpc::InsecureChannelCredentials()));

  // 1. One paced stream (a token every 2 ms, so nothing queues): latency from
  // the worker's send to the client's receive, direct and through the router.
  const int paced_tokens = std::min(tokens, 1000);
  OneStream(*direct, kPaced, 50, 0);
  OneStream(*via, kPaced, 50, 0);
  StreamStats d = OneStream(*direct, kPaced, paced_tokens, 1);
  StreamStats r = OneStream(*via, kPaced, paced_tokens, 1);
  if (d.tokens != paced_tokens || r.tokens != paced_tokens) {
    std::fprintf(stderr, "router_bench: a paced stream failed\n");
    kill(worker, SIGKILL);
    kill(router, SIGKILL);
    return 1;
  }
  std::printf("one stream, %d tokens paced at %lld us: worker send -> client receive, microseconds\n",
              paced_tokens, static_cast<long long>(kPace.count()));
  std::printf("| path | mean | p50 | p99 |\n|---|---|---|---|\n");
  std::printf("| direct to worker | %.1f | %.1f | %.1f |\n", Mean(d.latency_us),
              Percentile(d.latency_us, 0.5), Percentile(d.latency_us, 0.99));
  std::printf("| through router | %.1f | %.1f | %.1f |\n", Mean(r.latency_us),
              Percentile(r.latency_us, 0.5), Percentile(r.latency_us, 0.99));
  std::printf("router added latency per token: %.1f us (p50), %.1f us (mean)\n\n",
              Percentile(r.latency_us, 0.5) - Percentile(d.latency_us, 0.5),
              Mean(r.latency_us) - Mean(d.latency_us));

  // 2. Many streams: relayed tokens/s and router CPU per token.
  std::atomic<long> relayed{0};
  std::atomic<bool> failed{false};
  const double cpu0 = CpuSeconds(router);
  const Clock::time_point t0 = Clock::now();
  std::vector<std::thread> clients;
  for (int i = 0; i < streams; ++i) {
    clients.emplace_back([&, i] {
      StreamStats s = OneStream(*via, kFast, tokens, 100 + i);
      if (s.tokens < 0) failed = true;
      else relayed += s.tokens;
    });
  }
  for (auto& t : clients) t.join();
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu = CpuSeconds(router) - cpu0;
  std::printf("%d concurrent streams x %d tokens through the router (router pinned to cpu %d)\n",
              streams, tokens, router_cpu);
  std::printf("| relayed tokens | wall s | tokens/s | router cpu s | tokens per router-cpu-second |\n");
  std::printf("|---|---|---|---|---|\n");
  std::printf("| %ld | %.2f | %.0f | %.2f | %.0f |\n", relayed.load(), wall, relayed / wall, cpu,
              cpu > 0 ? relayed / cpu : 0.0);
  kill(worker, SIGKILL);
  kill(router, SIGKILL);
  waitpid(worker, nullptr, 0);
  waitpid(router, nullptr, 0);
  return failed ? 1 : 0;
}
