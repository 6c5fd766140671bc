// Test support: a `rocmforge worker` child on free loopback ports, ready
// (health SERVING) when StartWorker returns.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "tests/integration/support/child_process.h"

namespace rocmforge::testing {

struct ServerProcess {
  ChildProcess process;
  int port = 0;
  int metrics_port = 0;
  std::string address;  // "127.0.0.1:port"
  std::string error;    // why it did not start (empty when serving)
  bool ok() const { return error.empty(); }
};

// `rocmforge worker --model models/<model_file> --port P --metrics-port M
// <extra_args...>`; waits up to `timeout` for SERVING.
ServerProcess StartWorker(const std::string& model_file, const std::vector<std::string>& extra_args,
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace rocmforge::testing
