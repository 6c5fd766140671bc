// `rocmforge drain --server HOST:PORT [--deadline S]`: asks a worker to drain
// (stop taking new requests; health turns NOT_SERVING) and waits until its
// in-flight streams have finished or the deadline passes. Kubernetes runs it as
// the worker's preStop hook.
#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/command.h"
#include "cli/flags.h"
#include "grpcpp/grpcpp.h"
#include "rocmforge/v1/worker_control.grpc.pb.h"

namespace rocmforge::cli {
namespace {

int RunDrain(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, {"server", "deadline"}, {});
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  const std::string server = flags->GetOr("server", "127.0.0.1:50061");
  auto deadline_s = flags->GetDouble("deadline", 120);
  if (!deadline_s.ok()) return Fail(std::string(deadline_s.status().message()));

  auto channel = grpc::CreateChannel(server, grpc::InsecureChannelCredentials());
  auto stub = v1::WorkerControl::NewStub(channel);
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(*deadline_s * 1000));
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::DrainRequest req;
    req.set_deadline_seconds(*deadline_s);
    v1::DrainResponse resp;
    grpc::Status s = stub->Drain(&ctx, req, &resp);
    if (!s.ok()) return Fail("drain " + server + ": " + s.error_message());
    std::fprintf(stderr, "draining %s: %d streams in flight\n", server.c_str(), resp.in_flight());
  }
  // Poll the load report until nothing runs or waits.
  while (std::chrono::steady_clock::now() < until) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::LoadReport load;
    grpc::Status s = stub->GetLoad(&ctx, v1::LoadRequest(), &load);
    if (!s.ok()) {  // the worker already exited: drained
      std::fprintf(stderr, "worker %s is gone: drained\n", server.c_str());
      return 0;
    }
    if (load.running() + load.waiting() == 0) {
      std::fprintf(stderr, "worker %s drained\n", server.c_str());
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  std::fprintf(stderr, "worker %s: drain deadline reached with streams in flight\n", server.c_str());
  return 0;  // the worker cancels what is left when it gets SIGTERM
}

}  // namespace

RF_REGISTER_COMMAND(drain, "drain", "drain --server HOST:PORT [--deadline SECONDS]", RunDrain);

}  // namespace rocmforge::cli
