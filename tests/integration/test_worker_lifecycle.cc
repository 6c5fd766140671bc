// The real `rocmforge worker` binary: preemption with a deliberately small KV
// pool (every stream completes and equals its solo run), SIGTERM drain
// (in-flight streams finish, health NOT_SERVING, new requests refused, exit
// 0), and a drain deadline that cancels streams still running.
#include <signal.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/support/child_process.h"
#include "tests/integration/support/grpc_client.h"
#include "tests/integration/support/worker_process.h"

namespace rocmforge {
namespace {

using testing::CollectGenerate;
using testing::RunConcurrently;
using testing::StreamResult;
using testing::TextRequest;

const char* const kPrompts[] = {
    "In the beginning God created the heaven",
    "And God said, Let there be light:",
    "The LORD is my shepherd; I shall not want.",
    "A soft answer turneth away wrath:",
    "He that is slow to anger is better than",
    "For everything there is a season,",
    "Love is patient, love is kind.",
    "Do not judge, or you too",
};

v1::LoadReport GetLoad(const std::string& address) {
  auto stub = v1::WorkerControl::NewStub(testing::Connect(address));
  grpc::ClientContext ctx;
  v1::LoadReport load;
  stub->GetLoad(&ctx, v1::LoadRequest(), &load);
  return load;
}

TEST(WorkerLifecycle, SmallKvPoolPreemptsAndEveryStreamStillMatchesItsSoloRun) {
  // 12 blocks of 16 tokens: one stream needs at most 4 (prompt ~12 + 40
  // generated), eight at once need ~32, so the engine must preempt.
  testing::ServerProcess w =
      testing::StartWorker("tiny-llama-spm-f16.gguf", {"--kv-blocks", "12", "--threads", "2"});
  ASSERT_TRUE(w.ok()) << w.error;
  std::vector<v1::GenerateRequest> requests;
  for (int i = 0; i < 8; ++i) requests.push_back(TextRequest(kPrompts[i], 40, 0));
  auto stub = v1::Inference::NewStub(testing::Connect(w.address));
  std::vector<StreamResult> solo;
  for (const auto& r : requests) {
    solo.push_back(CollectGenerate(*stub, r));
    ASSERT_TRUE(solo.back().status.ok()) << solo.back().status.error_message();
  }
  const std::vector<StreamResult> batched = RunConcurrently(w.address, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(batched[i].status.ok()) << i << ": " << batched[i].status.error_message();
    EXPECT_EQ(batched[i].finish_reason, v1::FINISH_REASON_LENGTH) << i;
    EXPECT_EQ(batched[i].token_ids, solo[i].token_ids) << "stream " << i;
    EXPECT_EQ(batched[i].text, solo[i].text) << "stream " << i;
  }
  const std::string metrics = testing::HttpGet(w.metrics_port);
  EXPECT_GE(testing::MetricValue(metrics, "rocmforge_preemptions_total").value_or(0), 1.0)
      << "the pool was meant to be too small for all eight streams";
  // A stream's last message can reach the client a moment before the engine
  // frees its blocks (same step, after the sink ran): poll briefly.
  v1::LoadReport load = GetLoad(w.address);
  for (int i = 0; i < 200 && load.free_kv_blocks() != 12; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    load = GetLoad(w.address);
  }
  EXPECT_EQ(load.total_kv_blocks(), 12);
  EXPECT_EQ(load.free_kv_blocks(), 12);
}

TEST(WorkerLifecycle, SigtermDrainsInFlightStreamsRefusesNewOnesAndExitsZero) {
  // The TSan stage runs this beside the other server tests on two cores,
  // where 4 x 200 tokens once took over 60 s (CI, session 21). The drain
  // deadline stays above the clients' (CollectOptions::timeout) so a slow run
  // fails by the clients' clock, never by the drain cancelling the streams
  // this test says must finish.
  testing::ServerProcess w =
      testing::StartWorker("tiny-llama-spm-f16.gguf", {"--threads", "2", "--drain-timeout", "300"});
  ASSERT_TRUE(w.ok()) << w.error;
  // Long enough streams that they are still running while we probe (a release
  // build finishes 4 x 128 tokens in well under a second: the probes take ms).
  constexpr size_t kTokens = 128;
  std::vector<v1::GenerateRequest> requests;
  for (int i = 0; i < 4; ++i) requests.push_back(TextRequest(kPrompts[i], kTokens, 0));
  std::vector<StreamResult> results;
  std::thread clients([&] { results = RunConcurrently(w.address, requests); });
  const auto admitted_by = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (GetLoad(w.address).running() < 4 && std::chrono::steady_clock::now() < admitted_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  w.process.Signal(SIGTERM);
  bool not_serving = false;
  for (int i = 0; i < 100 && !not_serving; ++i) {
    not_serving = testing::HealthStatus(w.address) == "NOT_SERVING";
    if (!not_serving) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(not_serving);
  auto stub = v1::Inference::NewStub(testing::Connect(w.address));
  const StreamResult late = CollectGenerate(*stub, TextRequest("too late", 5));
  EXPECT_EQ(late.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(late.status.error_message(), "worker is draining");
  EXPECT_TRUE(w.process.running()) << "must wait for the in-flight streams";

  clients.join();
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i].status.ok()) << i << ": " << results[i].status.error_message();
    EXPECT_EQ(results[i].finish_reason, v1::FINISH_REASON_LENGTH) << i;
    EXPECT_EQ(results[i].token_ids.size(), kTokens) << i;
  }
  const std::optional<int> code = w.process.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(code.has_value()) << w.process.Output();
  EXPECT_EQ(*code, 0) << w.process.Output();
}

TEST(WorkerLifecycle, DrainDeadlineCancelsStreamsThatRunTooLong) {
  testing::ServerProcess w =
      testing::StartWorker("tiny-llama-spm-f16.gguf", {"--threads", "2", "--ctx", "4096", "--drain-timeout", "0.5"});
  ASSERT_TRUE(w.ok()) << w.error;
  StreamResult r;
  std::thread client([&] {
    auto stub = v1::Inference::NewStub(testing::Connect(w.address));
    r = CollectGenerate(*stub, TextRequest(kPrompts[0], 4000, 0));
  });
  for (int i = 0; i < 400 && GetLoad(w.address).running() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  w.process.Signal(SIGTERM);
  client.join();
  EXPECT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.finish_reason, v1::FINISH_REASON_CANCELLED);
  EXPECT_LT(r.token_ids.size(), 4000u);
  const std::optional<int> code = w.process.Wait(std::chrono::seconds(20));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << w.process.Output();
}

TEST(WorkerLifecycle, ChatMessagesUseTheModelsChatTemplate) {
  // The qwen2 model carries a ChatML template: `messages` must generate exactly
  // what the hand-written ChatML prompt generates.
  testing::ServerProcess w = testing::StartWorker("tiny-qwen2-bpe-f16.gguf", {"--threads", "2"});
  ASSERT_TRUE(w.ok()) << w.error;
  auto stub = v1::Inference::NewStub(testing::Connect(w.address));
  v1::GenerateRequest chat = TextRequest("", 12, 0);
  chat.clear_prompt();
  auto* m = chat.add_messages();
  m->set_role("user");
  m->set_content("Tell me a fortune.");
  const StreamResult a = CollectGenerate(*stub, chat);
  ASSERT_TRUE(a.status.ok()) << a.status.error_message();
  const StreamResult b = CollectGenerate(
      *stub, TextRequest("<|im_start|>user\nTell me a fortune.<|im_end|>\n<|im_start|>assistant\n", 12, 0));
  ASSERT_TRUE(b.status.ok()) << b.status.error_message();
  EXPECT_EQ(a.usage.prompt_tokens(), b.usage.prompt_tokens());
  EXPECT_EQ(a.token_ids, b.token_ids);
  EXPECT_FALSE(a.token_ids.empty());
}

}  // namespace
}  // namespace rocmforge
