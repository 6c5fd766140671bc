// Test support: run a `rocmforge` (or any) child process, find a free port,
// wait for a gRPC server to report SERVING, scrape /metrics. Shared by the
// worker and router integration tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace rocmforge::testing {

// Path of the `rocmforge` binary under test.
std::string CliPath();
// Path of a file in models/.
std::string ModelPath(const std::string& file);

// A child process with stdout+stderr captured in a log file. The destructor
// kills (SIGKILL) and reaps it if still running.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  // Starts args[0] with args; on failure pid() is -1.
  static ChildProcess Spawn(std::vector<std::string> args);
  // Spawn(CliPath() + args).
  static ChildProcess SpawnCli(std::vector<std::string> args);

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);
  // Waits for exit; returns the exit code (128+signal if killed), or nullopt
  // on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // SIGKILL + reap.
  void Kill();
  // Everything the child printed so far.
  std::string Output() const;
  // Waits until Output() contains `text`; false on timeout or child exit.
  bool WaitForOutput(const std::string& text, std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// Polls grpc.health.v1 Check("") on `address` ("host:port") until SERVING.
bool WaitServing(const std::string& address, std::chrono::milliseconds timeout);
// The current health status: "SERVING", "NOT_SERVING", ... or "UNREACHABLE".
std::string HealthStatus(const std::string& address, const std::string& service = "");

// GET http://127.0.0.1:port/path; empty string on failure.
std::string HttpGet(int port, const std::string& path = "/metrics");
// Value of one sample in Prometheus text format, e.g.
// MetricValue(text, "rocmforge_kv_cache_blocks", "state=\"free\""); nullopt if absent.
std::optional<double> MetricValue(const std::string& text, const std::string& name,
                                  const std::string& labels = "");

}  // namespace rocmforge::testing
