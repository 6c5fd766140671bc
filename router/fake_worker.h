// A fake worker for router tests and the router benchmark: serves Inference,
// WorkerControl and grpc.health.v1 in-process like `rocmforge worker`, with no
// model. Its "model" is a fixed pseudo-random function, so results are
// checkable without an engine:
//   Tokenize(text, add_special) = [1 if add_special] + (byte + 3 for each byte)
//   next token = 3 + Mix(seed, every id so far) % (vocab - 3)
//   text piece of id = " w<id>"
// Generate honours resume_generated as the proto defines it (the last
// resume_generated prompt ids were already generated; max_tokens counts them),
// so a stream resumed elsewhere continues exactly as it would have.
// Not part of the production router; a static library member that only tests
// and benchmarks pull in.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "rocmforge/v1/inference.grpc.pb.h"
#include "rocmforge/v1/worker_control.grpc.pb.h"

namespace rocmforge::router::testing {

struct FakeWorkerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0 = a free port
  std::string model = "fake-model";
  int vocab = 1000;
  std::chrono::microseconds token_delay{0};  // between tokens (the first comes at once)
  // Benchmarks: each message's text is the steady_clock time (ns since its
  // epoch, CLOCK_MONOTONIC: comparable across processes) at which it was sent.
  bool stamp_send_time = false;
  std::shared_ptr<grpc::ServerCredentials> credentials;  // null = insecure
};

class FakeWorker {
 public:
  static absl::StatusOr<std::unique_ptr<FakeWorker>> Start(const FakeWorkerOptions& options);
  ~FakeWorker();

  int port() const { return port_; }
  std::string address() const;

  // Behaviour switches (take effect for calls that start afterwards).
  void SetServing(bool serving);                 // grpc.health.v1 status
  void SetDraining(bool draining);               // refuse new Generate, report draining
  void SetFailAfterTokens(int n);                // abort streams with UNAVAILABLE after n tokens (-1 off)
  void SetTokenDelay(std::chrono::microseconds d);
  // GetLoad fails with this code (as an overloaded worker's check that runs
  // past its deadline looks to the router); OK = answer normally.
  void SetLoadReportError(grpc::StatusCode code);
  // Ends every call at once and stops listening (as a crash looks to clients).
  void Kill();

  int generate_calls() const { return generate_calls_.load(); }
  int in_flight() const { return in_flight_.load(); }
  v1::GenerateRequest last_request() const;

  // The reference model, for tests.
  static std::vector<int32_t> TokenizeText(const std::string& text, bool add_special);
  static int32_t NextToken(uint64_t seed, const std::vector<int32_t>& ids_so_far, int vocab);
  static std::string Piece(int32_t id);

  class Service;
  class Control;
  class Stream;

 private:
  FakeWorker() = default;
  friend class Service;
  friend class Control;
  friend class Stream;

  FakeWorkerOptions options_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<Control> control_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<bool> draining_{false};
  std::atomic<int> fail_after_{-1};
  std::atomic<int64_t> token_delay_us_{0};
  std::atomic<int> load_report_error_{grpc::StatusCode::OK};
  std::atomic<int> generate_calls_{0};
  std::atomic<int> in_flight_{0};
  mutable std::mutex mu_;
  v1::GenerateRequest last_request_;
  bool killed_ = false;
};

}  // namespace rocmforge::router::testing
