#include "tests/integration/support/grpc_client.h"

#include <thread>

namespace rocmforge::testing {

std::shared_ptr<grpc::Channel> Connect(const std::string& address, int receive_window_bytes) {
  grpc::ChannelArguments args;
  if (receive_window_bytes > 0) {
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, receive_window_bytes);
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  }
  // Each test client gets its own connection (no sharing between channels).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

StreamResult CollectGenerate(v1::Inference::Stub& stub, const v1::GenerateRequest& request,
                             const CollectOptions& options) {
  StreamResult r;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + options.timeout);
  ctx.set_wait_for_ready(options.wait_for_ready);
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader = stub.Generate(&ctx, request);
  v1::GenerateResponse msg;
  bool cancelled = false;
  while (reader->Read(&msg)) {
    r.arrival_seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    ++r.messages;
    r.text += msg.text();
    r.token_ids.insert(r.token_ids.end(), msg.token_ids().begin(), msg.token_ids().end());
    if (msg.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
      r.finish_reason = msg.finish_reason();
      r.usage = msg.usage();
      r.error = msg.error();
    }
    if (!cancelled && options.cancel_after_tokens >= 0 &&
        static_cast<int>(r.token_ids.size()) >= options.cancel_after_tokens) {
      ctx.TryCancel();
      cancelled = true;
    }
    if (options.delay_per_message.count() > 0) std::this_thread::sleep_for(options.delay_per_message);
  }
  r.status = reader->Finish();
  return r;
}

v1::GenerateRequest TextRequest(const std::string& prompt, int max_tokens, float temperature,
                                uint64_t seed, bool ignore_eos) {
  v1::GenerateRequest req;
  req.set_prompt(prompt);
  req.mutable_sampling()->set_temperature(temperature);
  req.mutable_sampling()->set_seed(seed);
  req.mutable_stopping()->set_max_tokens(max_tokens);
  req.mutable_stopping()->set_ignore_eos(ignore_eos);
  return req;
}

std::vector<StreamResult> RunConcurrently(const std::string& address,
                                          const std::vector<v1::GenerateRequest>& requests) {
  std::vector<StreamResult> results(requests.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < requests.size(); ++i) {
    threads.emplace_back([&, i] {
      auto stub = v1::Inference::NewStub(Connect(address));
      CollectOptions options;
      options.wait_for_ready = true;  // these tests compare outputs, not connects
      results[i] = CollectGenerate(*stub, requests[i], options);
    });
  }
  for (auto& t : threads) t.join();
  return results;
}

}  // namespace rocmforge::testing
