// The real `rocmforge worker` binary on 127.0.0.1 with the tiny llama model,
// driven over gRPC: batching must not change results (32 concurrent greedy
// and seeded streams equal their solo runs), cancel frees KV blocks, a
// repeated ~2000-token prompt is served from the prefix cache, bad inputs get
// the right status codes, and a client that vanishes mid-stream does not
// disturb the others.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

#include "tests/integration/support/child_process.h"
#include "tests/integration/support/grpc_client.h"
#include "tests/integration/support/worker_process.h"

namespace rocmforge {
namespace {

using testing::CollectGenerate;
using testing::StreamResult;
using testing::TextRequest;

const char* const kPrompts[] = {
    "In the beginning God created",
    "And the earth was without form, and void;",
    "Blessed are the meek:",
    "A fool and his money",
    "The LORD is my shepherd;",
    "Never put off till tomorrow",
    "And he said unto them,",
    "Q: What is the meaning of life?\nA:",
};
constexpr int kNumPrompts = sizeof(kPrompts) / sizeof(kPrompts[0]);

class WorkerE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // --ctx 4096: the model was trained with 2048; the prefix test needs room
    // for a ~2000-token prompt plus output either way.
    worker_ = new testing::ServerProcess(testing::StartWorker(
        "tiny-llama-spm-f16.gguf", {"--ctx", "4096", "--threads", "2", "--drain-timeout", "2"}));
  }
  static void TearDownTestSuite() {
    delete worker_;
    worker_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(worker_->ok()) << worker_->error;
    channel_ = testing::Connect(worker_->address);
    stub_ = v1::Inference::NewStub(channel_);
    control_ = v1::WorkerControl::NewStub(channel_);
  }

  v1::LoadReport Load() {
    grpc::ClientContext ctx;
    v1::LoadReport load;
    EXPECT_TRUE(control_->GetLoad(&ctx, v1::LoadRequest(), &load).ok());
    return load;
  }

  void ExpectBatchedEqualsSolo(float temperature) {
    // One solo run per distinct request, then 32 streams at once (each
    // distinct request four times).
    std::vector<v1::GenerateRequest> distinct;
    for (int i = 0; i < kNumPrompts; ++i) {
      v1::GenerateRequest r = TextRequest(kPrompts[i], 16 + 2 * i, temperature, 1000 + i);
      if (temperature > 0) r.mutable_sampling()->set_top_k(40);
      distinct.push_back(r);
    }
    std::vector<StreamResult> solo;
    for (const auto& r : distinct) {
      solo.push_back(CollectGenerate(*stub_, r));
      ASSERT_TRUE(solo.back().status.ok()) << solo.back().status.error_message();
      ASSERT_EQ(solo.back().token_ids.size(), static_cast<size_t>(r.stopping().max_tokens()));
    }
    std::vector<v1::GenerateRequest> batch;
    for (int k = 0; k < 32; ++k) batch.push_back(distinct[k % kNumPrompts]);
    std::vector<StreamResult> batched = testing::RunConcurrently(worker_->address, batch);
    for (int k = 0; k < 32; ++k) {
      const StreamResult& want = solo[k % kNumPrompts];
      ASSERT_TRUE(batched[k].status.ok()) << k << ": " << batched[k].status.error_message();
      EXPECT_EQ(batched[k].token_ids, want.token_ids) << "stream " << k;
      EXPECT_EQ(batched[k].text, want.text) << "stream " << k;
      EXPECT_EQ(batched[k].finish_reason, v1::FINISH_REASON_LENGTH);
    }
  }

  static testing::ServerProcess* worker_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Inference::Stub> stub_;
  std::unique_ptr<v1::WorkerControl::Stub> control_;
};
testing::ServerProcess* WorkerE2eTest::worker_ = nullptr;

TEST_F(WorkerE2eTest, ThirtyTwoConcurrentGreedyStreamsEqualTheirSoloRuns) { ExpectBatchedEqualsSolo(0); }

TEST_F(WorkerE2eTest, ThirtyTwoConcurrentSeededStreamsEqualTheirSoloRuns) { ExpectBatchedEqualsSolo(0.9f); }

TEST_F(WorkerE2eTest, CancelMidStreamFreesItsKvBlocks) {
  const v1::LoadReport before = Load();
  ASSERT_GT(before.total_kv_blocks(), 0);
  testing::CollectOptions opt;
  opt.cancel_after_tokens = 3;
  StreamResult r = CollectGenerate(*stub_, TextRequest(kPrompts[0], 1000), opt);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::CANCELLED) << r.status.error_message();
  EXPECT_LT(r.token_ids.size(), 1000u);
  // Blocks come back within a step or so; poll the load report and /metrics.
  v1::LoadReport after;
  std::optional<double> free_metric, total_metric;
  for (int i = 0; i < 200; ++i) {
    after = Load();
    const std::string metrics = testing::HttpGet(worker_->metrics_port);
    free_metric = testing::MetricValue(metrics, "rocmforge_kv_cache_blocks", "state=\"free\"");
    total_metric = testing::MetricValue(metrics, "rocmforge_kv_cache_blocks", "state=\"total\"");
    if (after.running() == 0 && after.free_kv_blocks() == after.total_kv_blocks() && free_metric == total_metric) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_EQ(after.running(), 0);
  EXPECT_EQ(after.free_kv_blocks(), after.total_kv_blocks());
  ASSERT_TRUE(free_metric.has_value() && total_metric.has_value());
  EXPECT_EQ(*free_metric, *total_metric);
  EXPECT_GE(testing::MetricValue(testing::HttpGet(worker_->metrics_port), "rocmforge_requests_total",
                                 "finish_reason=\"cancelled\"").value_or(0), 1.0);
}

TEST_F(WorkerE2eTest, RepeatedLongPromptIsServedFromThePrefixCache) {
  // ~2000 tokens of text; exact length measured through Tokenize.
  std::string prompt;
  for (int i = 0; prompt.size() < 5800; ++i) {
    absl::StrAppend(&prompt, kPrompts[i % kNumPrompts], " ", i, " ");
  }
  grpc::ClientContext tctx;
  v1::TokenizeRequest treq;
  treq.set_text(prompt);
  treq.set_add_special(true);
  v1::TokenizeResponse tresp;
  ASSERT_TRUE(stub_->Tokenize(&tctx, treq, &tresp).ok());
  ASSERT_GE(tresp.token_ids_size(), 1950);
  ASSERT_LE(tresp.token_ids_size(), 2600);

  testing::CollectOptions long_wait;
  long_wait.timeout = std::chrono::seconds(120);
  StreamResult first = CollectGenerate(*stub_, TextRequest(prompt, 4), long_wait);
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  EXPECT_EQ(first.usage.prompt_tokens(), tresp.token_ids_size());
  StreamResult second = CollectGenerate(*stub_, TextRequest(prompt, 4), long_wait);
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  EXPECT_GE(second.usage.cached_prompt_tokens(), 1900);
  EXPECT_EQ(second.token_ids, first.token_ids);
  const std::string metrics = testing::HttpGet(worker_->metrics_port);
  EXPECT_GE(testing::MetricValue(metrics, "rocmforge_prefix_cache_hit_tokens_total").value_or(0), 1900);
}

TEST_F(WorkerE2eTest, BadInputsGetTheRightStatusCodes) {
  const auto code = [&](const v1::GenerateRequest& r) { return CollectGenerate(*stub_, r).status.error_code(); };
  EXPECT_EQ(code(v1::GenerateRequest()), grpc::StatusCode::INVALID_ARGUMENT);
  v1::GenerateRequest unknown_id;
  unknown_id.add_prompt_ids(1);
  unknown_id.add_prompt_ids(4096);
  EXPECT_EQ(code(unknown_id), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code(TextRequest("x", 0)), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code(TextRequest("x", 5000)), grpc::StatusCode::INVALID_ARGUMENT);
  v1::GenerateRequest too_long;
  too_long.mutable_prompt_ids()->Resize(4096, 100);
  EXPECT_EQ(code(too_long), grpc::StatusCode::INVALID_ARGUMENT);
  v1::GenerateRequest bad_sampling = TextRequest("x", 4, 0.5f);
  bad_sampling.mutable_sampling()->set_min_p(2);
  EXPECT_EQ(code(bad_sampling), grpc::StatusCode::INVALID_ARGUMENT);
  v1::GenerateRequest wrong_model = TextRequest("x", 4);
  wrong_model.set_model("llama-70b");
  EXPECT_EQ(code(wrong_model), grpc::StatusCode::INVALID_ARGUMENT);
  // The worker is still fine.
  EXPECT_EQ(testing::HealthStatus(worker_->address), "SERVING");
}

TEST_F(WorkerE2eTest, ClientThatDisconnectsMidStreamLeavesOthersServed) {
  const v1::GenerateRequest steady = TextRequest(kPrompts[2], 40);
  const StreamResult solo = CollectGenerate(*stub_, steady);
  ASSERT_TRUE(solo.status.ok());
  StreamResult other;
  std::thread t([&] {
    auto stub = v1::Inference::NewStub(testing::Connect(worker_->address));
    other = CollectGenerate(*stub, steady);
  });
  {
    // A client on its own connection reads two tokens and goes away: the
    // channel and the call are torn down without reading the rest.
    auto channel = testing::Connect(worker_->address);
    auto stub = v1::Inference::NewStub(channel);
    auto ctx = std::make_unique<grpc::ClientContext>();
    auto reader = stub->Generate(ctx.get(), TextRequest(kPrompts[3], 1000));
    v1::GenerateResponse msg;
    int tokens = 0;
    while (tokens < 2 && reader->Read(&msg)) tokens += msg.token_ids_size();
    ctx->TryCancel();
    reader->Finish();
  }
  t.join();
  ASSERT_TRUE(other.status.ok()) << other.status.error_message();
  EXPECT_EQ(other.token_ids, solo.token_ids);
  for (int i = 0; i < 200 && Load().running() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  EXPECT_EQ(Load().running(), 0);
  EXPECT_EQ(testing::HealthStatus(worker_->address), "SERVING");
}

TEST_F(WorkerE2eTest, ModelInfoDescribesTheServedModel) {
  grpc::ClientContext ctx;
  v1::ModelInfoResponse info;
  ASSERT_TRUE(stub_->ModelInfo(&ctx, v1::ModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.architecture(), "llama");
  EXPECT_EQ(info.vocab_size(), 4096);
  EXPECT_EQ(info.context_length(), 4096);
  EXPECT_EQ(info.bos_token_id(), 1);
  EXPECT_EQ(info.device(), "cpu");
}

TEST_F(WorkerE2eTest, MetricsReflectTheTrafficServed) {
  const StreamResult r = CollectGenerate(*stub_, TextRequest(kPrompts[5], 12));
  ASSERT_TRUE(r.status.ok());
  const std::string m = testing::HttpGet(worker_->metrics_port);
  for (const char* name : {"rocmforge_time_to_first_token_seconds_count", "rocmforge_inter_token_latency_seconds_count",
                           "rocmforge_request_duration_seconds_count", "rocmforge_queue_time_seconds_count",
                           "rocmforge_step_duration_seconds_count", "rocmforge_batch_size_count",
                           "rocmforge_generation_tokens_total", "rocmforge_prompt_tokens_total"}) {
    EXPECT_GE(testing::MetricValue(m, name).value_or(0), 1.0) << name;
  }
  EXPECT_GE(testing::MetricValue(m, "rocmforge_requests_total", "finish_reason=\"length\"").value_or(0), 1.0);
  // Every step observes its token count; a step carries at least one token per
  // sequence, and the 12-token request alone put its prompt and 11 decodes in.
  EXPECT_EQ(testing::MetricValue(m, "rocmforge_batch_tokens_count"),
            testing::MetricValue(m, "rocmforge_step_duration_seconds_count"));
  EXPECT_GE(testing::MetricValue(m, "rocmforge_batch_tokens_sum").value_or(0),
            testing::MetricValue(m, "rocmforge_batch_size_sum").value_or(1e9));
  EXPECT_GE(testing::MetricValue(m, "rocmforge_batch_tokens_sum").value_or(0), 12.0);
  // The step phases partition the step time: they add up to its sum.
  double phases = 0;
  for (const std::string phase : {"plan", "forward", "sample", "stream"}) {
    const auto v = testing::MetricValue(m, "rocmforge_step_phase_seconds_total", "phase=\"" + phase + "\"");
    ASSERT_TRUE(v.has_value()) << phase;
    EXPECT_GE(*v, 0.0) << phase;
    phases += *v;
  }
  const double steps = testing::MetricValue(m, "rocmforge_step_duration_seconds_sum").value_or(-1);
  EXPECT_GT(testing::MetricValue(m, "rocmforge_step_phase_seconds_total", "phase=\"forward\"").value_or(0), 0.0);
  EXPECT_NEAR(phases, steps, 1e-6 + 1e-6 * steps);
  EXPECT_NE(m.find("rocmforge_model_info{device=\"cpu\",model=\"tiny-llama-spm\",quantization=\"F16\"} 1"),
            std::string::npos);
  // The CPU "device" memory: this process's resident set (the bundled model is
  // mapped and read, so at least its 13 MB) within the host's RAM.
  const double used = testing::MetricValue(m, "rocmforge_device_memory_used_bytes", "device=\"cpu\"").value_or(0);
  const double total = testing::MetricValue(m, "rocmforge_device_memory_total_bytes", "device=\"cpu\"").value_or(0);
  EXPECT_GT(used, 10e6);
  EXPECT_GT(total, used);
}

}  // namespace
}  // namespace rocmforge
