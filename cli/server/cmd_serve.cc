// `rocmforge serve --model M [--port 50051] [--metrics-port 9090] [--workers N]
// [--device cpu|gpu] [--host H]`: one machine, one command. Starts N worker
// child processes (`rocmforge worker`, on free loopback ports, metrics on
// the router's metrics port + 1 + i; with --device gpu and N > 1 child i sees only GPU i) and a router in
// this process in front of them. Prints "rocmforge serving on HOST:PORT" once
// a worker is healthy. A worker that exits is restarted on its port. SIGTERM
// or SIGINT: the router stops taking calls and finishes open streams, then the
// workers get SIGTERM (they drain) and, past the deadline, SIGKILL.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/flags.h"
#include "cli/server/router_flags.h"
#include "router/router_server.h"

namespace rocmforge::cli {
namespace {

constexpr char kUsage[] =
    "serve --model M.gguf [--port 50051] [--metrics-port 9090] [--workers N] [--device cpu|gpu] "
    "[--host 0.0.0.0] [--threads N] [--ctx N] [--kv-blocks N] [--kv-memory-mb N] "
    "[--max-batch-tokens N] [--max-running N] [--max-prefill-with-decodes N] [router front-door flags]";

// Worker flags passed through unchanged when given.
const char* const kWorkerPassThrough[] = {"threads",          "ctx",         "kv-blocks",
                                          "kv-memory-mb",     "max-batch-tokens", "max-running",
                                          "max-prefill-with-decodes"};

// A loopback TCP port that was free a moment ago (the kernel picks it).
int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

struct Child {
  std::vector<std::string> argv;
  std::string gpu;  // "" = leave the visible devices alone
  pid_t pid = -1;
  std::chrono::steady_clock::time_point started;
};

pid_t SpawnWorker(const Child& c) {
  // Everything the child needs is prepared before fork(): after it, in a
  // process with threads, the child only makes async-signal-safe calls.
  std::vector<char*> argv;
  for (const std::string& a : c.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  if (!c.gpu.empty()) {
    env_strings.push_back("HIP_VISIBLE_DEVICES=" + c.gpu);
    env_strings.push_back("CUDA_VISIBLE_DEVICES=" + c.gpu);
  }
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);  // first definition wins
  envp.push_back(nullptr);
  const pid_t pid = fork();
  if (pid != 0) return pid;  // parent (or -1)
  // Child: die with the parent, take default signal handling, run the worker.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_UNBLOCK, &all, nullptr);
  execve("/proc/self/exe", argv.data(), envp.data());
  static const char kMsg[] = "rocmforge serve: cannot start a worker: exec failed\n";
  (void)!write(2, kMsg, sizeof kMsg - 1);
  _exit(127);
}

// Reaps exited children; restarts each (at most once a second) unless stopping.
void ReapAndRestart(std::vector<Child>& children, bool restart) {
  for (Child& c : children) {
    if (c.pid <= 0) continue;
    int status = 0;
    if (waitpid(c.pid, &status, WNOHANG) != c.pid) continue;
    std::fprintf(stderr, "rocmforge serve: worker %s exited (%s %d)%s\n", c.argv[5].c_str(),
                 WIFSIGNALED(status) ? "signal" : "code",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                 restart ? ", restarting it" : "");
    c.pid = -1;
    if (restart) {
      const auto since = std::chrono::steady_clock::now() - c.started;
      if (since < std::chrono::seconds(1)) std::this_thread::sleep_for(std::chrono::seconds(1) - since);
      c.started = std::chrono::steady_clock::now();
      c.pid = SpawnWorker(c);
    }
  }
}

int RunServe(const std::vector<std::string>& args) {
  std::set<std::string> value_flags = RouterValueFlags();
  value_flags.insert({"model", "workers", "device"});
  for (const char* f : kWorkerPassThrough) value_flags.insert(f);
  auto flags = Flags::Parse(args, value_flags, {});
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  const std::string model = flags->GetOr("model", "");
  if (model.empty()) return Fail("serve needs --model M.gguf");
  if (access(model.c_str(), R_OK) != 0) return Fail(absl::StrCat("cannot read model '", model, "'"));
  auto n = flags->GetInt("workers", 1);
  if (!n.ok()) return Fail(std::string(n.status().message()));
  if (*n < 1 || *n > 64) return Fail("--workers must be in 1..64");
  const std::string device = flags->GetOr("device", "cpu");
  if (device != "cpu" && device != "gpu") return Fail("--device must be cpu or gpu");

  // serve's workers are plaintext loopback children (--tls-cert/--tls-key here
  // are the router's front door); a router dialing them with TLS would never
  // see one healthy, so refuse the flags instead of hanging.
  for (const char* f : {"worker-ca", "worker-cert", "worker-key"}) {
    if (flags->Has(f)) {
      return Fail(absl::StrCat("serve: --", f, " is for `rocmforge router` in front of TLS workers; "
                               "serve's workers are plaintext loopback children"));
    }
  }
  router::RouterOptions o;
  if (absl::Status s = ApplyRouterFlags(*flags, &o); !s.ok()) return Fail(std::string(s.message()));
  o.health_interval = std::chrono::milliseconds(250);  // notice the first ready worker quickly

  // Workers first: fork before this process starts any threads.
  BlockTerminationSignals();
  std::vector<Child> children(static_cast<size_t>(*n));
  for (int i = 0; i < *n; ++i) {
    const int port = FreeLoopbackPort();
    if (port <= 0) return Fail("cannot find a free loopback port for a worker");
    // Worker i exports metrics next to the router's (9091, 9092, ... by default).
    const int metrics_port = o.metrics_port > 0 ? o.metrics_port + 1 + i : -1;
    Child& c = children[i];
    c.argv = {"rocmforge",      "worker", "--model",        model,
              "--port",         std::to_string(port), "--metrics-port", std::to_string(metrics_port),
              "--host",         "127.0.0.1", "--device", device};
    for (const char* f : kWorkerPassThrough) {
      if (flags->Has(f)) {
        c.argv.push_back(absl::StrCat("--", f));
        c.argv.push_back(flags->GetOr(f, ""));
      }
    }
    if (device == "gpu" && *n > 1) c.gpu = std::to_string(i);
    c.started = std::chrono::steady_clock::now();
    c.pid = SpawnWorker(c);
    if (c.pid < 0) return Fail("cannot fork a worker process");
    o.workers.push_back(absl::StrCat("127.0.0.1:", port));
  }

  auto stop_children = [&](std::chrono::seconds grace) {
    for (Child& c : children)
      if (c.pid > 0) kill(c.pid, SIGTERM);  // the worker drains on SIGTERM
    const auto end = std::chrono::steady_clock::now() + grace;
    for (Child& c : children) {
      while (c.pid > 0) {
        if (waitpid(c.pid, nullptr, WNOHANG) == c.pid) {
          c.pid = -1;
        } else if (std::chrono::steady_clock::now() > end) {
          kill(c.pid, SIGKILL);
          waitpid(c.pid, nullptr, 0);
          c.pid = -1;
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
      }
    }
  };

  auto r = router::Router::Start(o);
  if (!r.ok()) {
    stop_children(std::chrono::seconds(5));
    return Fail(absl::StrCat("serve: ", r.status().message()));
  }

  // Wait for a worker to be ready, a signal, or every worker to fail at start.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGINT);
  sigaddset(&term, SIGTERM);
  const timespec tick{0, 200 * 1000 * 1000};
  bool announced = false;
  int sig = -1;
  while (sig < 0) {
    if (!announced && !(*r)->pool().Usable().empty()) {
      std::printf("rocmforge serving on %s:%d\n", o.host.c_str(), (*r)->port());
      std::fflush(stdout);
      announced = true;
    }
    if (!announced) {  // a worker that cannot start (bad model, port) fails the command
      for (Child& c : children) {
        int status = 0;
        if (c.pid > 0 && waitpid(c.pid, &status, WNOHANG) == c.pid) {
          c.pid = -1;
          (*r)->Shutdown(std::chrono::system_clock::now());
          stop_children(std::chrono::seconds(5));
          return Fail(absl::StrCat("serve: a worker exited before becoming ready (",
                                   WIFSIGNALED(status) ? "signal " : "code ",
                                   WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                                   "); see its messages above"));
        }
      }
    } else {
      ReapAndRestart(children, /*restart=*/true);
    }
    const int got = sigtimedwait(&term, nullptr, &tick);
    if (got == SIGINT || got == SIGTERM) sig = got;
  }
  std::fprintf(stderr, "rocmforge serve: %s, finishing open streams, then stopping workers\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*r)->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(30));
  stop_children(std::chrono::seconds(30));
  return 0;
}

}  // namespace

RF_REGISTER_COMMAND(serve, "serve", kUsage, RunServe);

}  // namespace rocmforge::cli
