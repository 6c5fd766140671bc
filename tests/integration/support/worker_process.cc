#include "tests/integration/support/worker_process.h"

namespace rocmforge::testing {

ServerProcess StartWorker(const std::string& model_file, const std::vector<std::string>& extra_args,
                          std::chrono::milliseconds timeout) {
  ServerProcess s;
  s.port = FreePort();
  s.metrics_port = FreePort();
  s.address = "127.0.0.1:" + std::to_string(s.port);
  std::vector<std::string> args = {"worker", "--model", ModelPath(model_file), "--port",
                                   std::to_string(s.port), "--metrics-port",
                                   std::to_string(s.metrics_port)};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  s.process = ChildProcess::SpawnCli(args);
  if (s.process.pid() <= 0) {
    s.error = "cannot start " + CliPath();
    return s;
  }
  if (!s.process.WaitForOutput("listening on", timeout) || !WaitServing(s.address, std::chrono::seconds(10))) {
    s.error = "worker did not become SERVING; its output:\n" + s.process.Output();
  }
  return s;
}

}  // namespace rocmforge::testing
