// Test support: a blocking client for rocmforge.v1 that collects a whole
// Generate stream, optionally cancelling it after some tokens.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "rocmforge/v1/inference.grpc.pb.h"
#include "rocmforge/v1/worker_control.grpc.pb.h"

namespace rocmforge::testing {

struct StreamResult {
  grpc::Status status;
  std::string text;                       // all text pieces joined
  std::vector<int32_t> token_ids;         // all token ids in order
  int messages = 0;
  v1::FinishReason finish_reason = v1::FINISH_REASON_UNSPECIFIED;
  v1::Usage usage;                        // from the last message
  std::string error;
  std::vector<double> arrival_seconds;    // per message, since the call started
};

struct CollectOptions {
  int cancel_after_tokens = -1;           // >= 0: TryCancel once this many tokens arrived
  // Generous: under TSan on a busy two-core CI machine a 4 x 200-token batch
  // took over 60 s. A hung stream still fails well inside ctest's 300 s.
  std::chrono::milliseconds timeout{180000};
  std::chrono::milliseconds delay_per_message{0};  // simulate a slow reader
  // Wait for the channel to connect instead of failing fast on a transient
  // connect error (many fresh connections at once on a loaded machine).
  bool wait_for_ready = false;
};

// receive_window_bytes > 0 shrinks the client's HTTP/2 receive window, so a
// slow reader pushes back on the server quickly (backpressure tests).
std::shared_ptr<grpc::Channel> Connect(const std::string& address, int receive_window_bytes = 0);

StreamResult CollectGenerate(v1::Inference::Stub& stub, const v1::GenerateRequest& request,
                             const CollectOptions& options = {});

// Runs all `requests` at once, each on its own thread and channel to
// `address`, and returns their results in request order.
std::vector<StreamResult> RunConcurrently(const std::string& address,
                                          const std::vector<v1::GenerateRequest>& requests);

// Convenience: a greedy (or seeded) text request.
v1::GenerateRequest TextRequest(const std::string& prompt, int max_tokens, float temperature = 0,
                                uint64_t seed = 0, bool ignore_eos = true);

}  // namespace rocmforge::testing
