// The worker's gRPC service in-process, driven by a real gRPC client over
// loopback, with a FakeEngine (deterministic tokens, no weights) behind it:
// validation and status codes, streaming and coalescing, cancel, health,
// drain, load report and the metric names of docs/metrics.md.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "engine/tokenizer/utf8.h"
#include "tests/integration/support/child_process.h"
#include "tests/integration/support/fake_engine.h"
#include "tests/integration/support/grpc_client.h"
#include "worker/worker_metrics.h"
#include "worker/worker_server.h"

namespace rocmforge {
namespace {

using testing::CollectGenerate;
using testing::CollectOptions;
using testing::FakeEngine;
using testing::TextRequest;

class WorkerServiceTest : public ::testing::Test {
 public:
  void Restart(bool metrics) {
    server_.reset();
    Start(FakeEngine::Options{}, true, metrics);
  }

 protected:
  // Tests that scrape /metrics ask for it: the HTTP server takes ~2 s to stop.
  void SetUp() override { Start(FakeEngine::Options{}, /*load=*/true, /*metrics=*/false); }

  void Start(FakeEngine::Options fake_options, bool load, bool metrics) {
    worker::WorkerOptions options;
    options.port = 0;
    options.metrics_port = metrics ? 0 : -1;
    auto server = worker::WorkerServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = testing::Connect(server_->address());
    stub_ = v1::Inference::NewStub(channel_);
    control_ = v1::WorkerControl::NewStub(channel_);
    fake_options_ = fake_options;
    fake_options_.tokenizer_gguf = testing::ModelPath("tiny-llama-spm-f16.gguf");
    if (load) Load();
  }

  void Load() {
    absl::Status st = server_->LoadEngine(
        [&](EngineObserver* observer) -> absl::StatusOr<std::unique_ptr<Engine>> {
          auto e = FakeEngine::Create(fake_options_, observer);
          if (!e.ok()) return e.status();
          fake_ = e->get();
          return std::unique_ptr<Engine>(std::move(*e));
        },
        "fallback");
    ASSERT_TRUE(st.ok()) << st;
  }

  // The text the fake engine produces for `req` (independent of the server).
  std::string ExpectedText(const std::string& prompt, int n) {
    const Tokenizer& tok = fake_->tokenizer();
    const std::vector<TokenId> ids = tok.Encode(prompt, tok.vocab().add_bos);
    std::vector<TokenId> out;
    for (int i = 0; i < n; ++i) out.push_back(fake_->TokenAt(ids, i));
    return tok.Decode(out);
  }

  grpc::StatusCode CodeOf(const v1::GenerateRequest& req, std::string* message = nullptr) {
    testing::StreamResult r = CollectGenerate(*stub_, req);
    if (message) *message = r.status.error_message();
    return r.status.error_code();
  }

  FakeEngine::Options fake_options_;
  std::unique_ptr<worker::WorkerServer> server_;
  FakeEngine* fake_ = nullptr;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Inference::Stub> stub_;
  std::unique_ptr<v1::WorkerControl::Stub> control_;
};

TEST_F(WorkerServiceTest, StreamsEveryTokenAndFinishesWithUsage) {
  const int n = 37;
  testing::StreamResult r = CollectGenerate(*stub_, TextRequest("In the beginning", n, 0, 7));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.finish_reason, v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(static_cast<int>(r.token_ids.size()), n);
  EXPECT_EQ(r.usage.generated_tokens(), n);
  EXPECT_EQ(r.usage.seed(), 7u);
  const Tokenizer& tok = fake_->tokenizer();
  EXPECT_EQ(r.usage.prompt_tokens(), static_cast<int>(tok.Encode("In the beginning", true).size()));
  EXPECT_EQ(r.text, ExpectedText("In the beginning", n));
}

TEST_F(WorkerServiceTest, UnsetSeedIsDrawnAndReported) {
  v1::GenerateRequest req = TextRequest("seed", 2);
  req.mutable_sampling()->clear_seed();
  testing::StreamResult a = CollectGenerate(*stub_, req);
  testing::StreamResult b = CollectGenerate(*stub_, req);
  ASSERT_TRUE(a.status.ok() && b.status.ok());
  EXPECT_NE(a.usage.seed(), b.usage.seed());  // 2^-64 chance of a false failure
}

TEST_F(WorkerServiceTest, BadInputsGetInvalidArgumentWithAMessage) {
  Restart(/*metrics=*/true);
  std::vector<std::pair<std::string, v1::GenerateRequest>> cases;
  cases.push_back({"no prompt", v1::GenerateRequest()});
  {
    v1::GenerateRequest r = TextRequest("x", 4);
    r.add_prompt_ids(5);
    cases.push_back({"two sources", r});
  }
  {
    v1::GenerateRequest r = TextRequest("x", 4);
    r.set_model("some-other-model");
    cases.push_back({"wrong model", r});
  }
  {
    v1::GenerateRequest r = TextRequest("x", 4);
    r.set_logprobs(21);
    cases.push_back({"logprobs 21", r});
  }
  {
    v1::GenerateRequest r = TextRequest("x", 4);
    r.mutable_sampling()->set_temperature(-1);
    cases.push_back({"negative temperature", r});
  }
  {
    v1::GenerateRequest r = TextRequest("x", 4);
    r.mutable_sampling()->set_top_p(1.5f);
    cases.push_back({"top_p 1.5", r});
  }
  cases.push_back({"max_tokens 0", TextRequest("x", 0)});
  cases.push_back({"max_tokens over context", TextRequest("x", 100000)});
  {
    v1::GenerateRequest r;
    r.add_prompt_ids(1);
    r.add_prompt_ids(999999);
    cases.push_back({"unknown token id", r});
  }
  {
    v1::GenerateRequest r;
    r.add_prompt_ids(-3);
    cases.push_back({"negative token id", r});
  }
  {
    std::string long_prompt;
    for (int i = 0; i < 300; ++i) long_prompt += "and the earth was without form ";
    cases.push_back({"prompt over context", TextRequest(long_prompt, 4)});
  }
  cases.push_back({"prompt over byte limit", TextRequest(std::string(2 << 20, 'a'), 4)});
  {
    v1::GenerateRequest r = TextRequest("x", 4);
    r.mutable_stopping()->add_stop("");
    cases.push_back({"empty stop string", r});
  }
  {
    v1::GenerateRequest r;
    auto* m = r.add_messages();
    m->set_role("wizard");
    m->set_content("hi");
    cases.push_back({"bad role", r});
  }
  for (const auto& [name, req] : cases) {
    std::string message;
    EXPECT_EQ(CodeOf(req, &message), grpc::StatusCode::INVALID_ARGUMENT) << name;
    EXPECT_FALSE(message.empty()) << name;
  }
  EXPECT_EQ(fake_->submitted(), 0);  // nothing reached the engine
  const std::string metrics = testing::HttpGet(server_->metrics_port());
  EXPECT_EQ(testing::MetricValue(metrics, "rocmforge_request_rejected_total", "reason=\"invalid_argument\""),
            static_cast<double>(cases.size()));
}

TEST_F(WorkerServiceTest, PromptOverContextSaysHowLongItIs) {
  std::string long_prompt;
  for (int i = 0; i < 300; ++i) long_prompt += "and the earth ";
  std::string message;
  EXPECT_EQ(CodeOf(TextRequest(long_prompt, 4), &message), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(message.find("context window is 128"), std::string::npos) << message;
}

TEST_F(WorkerServiceTest, SlowClientGetsEveryTokenCoalesced) {
  // The fake emits one token per 0.5 ms; this client has a tiny receive
  // window and reads one message per 2 ms, so the server's writes back up
  // and queued tokens must merge into fewer, larger messages.
  server_.reset();
  FakeEngine::Options long_context;
  long_context.context_length = 4096;
  Start(long_context, /*load=*/true, /*metrics=*/false);
  auto channel = testing::Connect(server_->address(), /*receive_window_bytes=*/1024);
  auto stub = v1::Inference::NewStub(channel);
  const int n = 1500;
  CollectOptions slow;
  slow.delay_per_message = std::chrono::milliseconds(2);
  testing::StreamResult r = CollectGenerate(*stub, TextRequest("slow reader", n), slow);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(static_cast<int>(r.token_ids.size()), n);
  EXPECT_LT(r.messages, n / 2);  // several tokens per message
  EXPECT_EQ(r.text, ExpectedText("slow reader", n));
}

TEST_F(WorkerServiceTest, ClientCancelCancelsTheEngineRequest) {
  // Slow tokens, so the stream is still running when the cancel arrives even
  // on a loaded machine or under ThreadSanitizer.
  FakeEngine::Options slow_tokens;
  slow_tokens.token_interval = std::chrono::milliseconds(20);
  Start(slow_tokens, /*load=*/true, /*metrics=*/false);
  CollectOptions opt;
  opt.cancel_after_tokens = 3;
  testing::StreamResult r = CollectGenerate(*stub_, TextRequest("cancel me", 100), opt);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::CANCELLED);
  for (int i = 0; i < 200 && (fake_->cancels() == 0 || server_->InFlight() != 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(fake_->cancels(), 1);
  EXPECT_EQ(server_->InFlight(), 0);
  // The worker keeps serving.
  testing::StreamResult ok = CollectGenerate(*stub_, TextRequest("after", 5));
  EXPECT_TRUE(ok.status.ok());
  EXPECT_EQ(ok.token_ids.size(), 5u);
}

TEST_F(WorkerServiceTest, ManyConcurrentStreamsEachGetTheirOwnTokens) {
  constexpr int kStreams = 32;
  std::vector<testing::StreamResult> results(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      results[i] = CollectGenerate(*stub_, TextRequest("stream " + std::to_string(i), 10 + i));
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(results[i].status.ok()) << i;
    EXPECT_EQ(results[i].text, ExpectedText("stream " + std::to_string(i), 10 + i)) << i;
  }
}

TEST_F(WorkerServiceTest, TokenizeDetokenizeModelInfo) {
  grpc::ClientContext c1;
  v1::TokenizeRequest treq;
  treq.set_text("Let there be light");
  treq.set_add_special(true);
  v1::TokenizeResponse tresp;
  ASSERT_TRUE(stub_->Tokenize(&c1, treq, &tresp).ok());
  const Tokenizer& tok = fake_->tokenizer();
  const std::vector<TokenId> want = tok.Encode("Let there be light", true);
  ASSERT_EQ(tresp.token_ids_size(), static_cast<int>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(tresp.token_ids(static_cast<int>(i)), want[i]);
  EXPECT_EQ(tresp.pieces_size(), tresp.token_ids_size());

  grpc::ClientContext c2;
  v1::DetokenizeRequest dreq;
  *dreq.mutable_token_ids() = tresp.token_ids();
  v1::DetokenizeResponse dresp;
  ASSERT_TRUE(stub_->Detokenize(&c2, dreq, &dresp).ok());
  EXPECT_EQ(dresp.text(), "Let there be light");

  grpc::ClientContext c3;
  dreq.add_token_ids(tok.vocab_size());
  EXPECT_EQ(stub_->Detokenize(&c3, dreq, &dresp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  grpc::ClientContext c4;
  v1::ModelInfoResponse info;
  ASSERT_TRUE(stub_->ModelInfo(&c4, v1::ModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.model(), "fake");
  EXPECT_EQ(info.vocab_size(), tok.vocab_size());
  EXPECT_EQ(info.context_length(), 128);
  EXPECT_EQ(info.bos_token_id(), tok.vocab().bos);
}

TEST_F(WorkerServiceTest, DrainRefusesNewStreamsAndLetsInFlightOnesFinish) {
  Restart(/*metrics=*/true);
  fake_->SetPaused(true);
  std::vector<testing::StreamResult> results(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] { results[i] = CollectGenerate(*stub_, TextRequest("drain " + std::to_string(i), 6)); });
  }
  for (int i = 0; i < 500 && fake_->submitted() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(fake_->submitted(), 3);
  EXPECT_EQ(testing::HealthStatus(server_->address()), "SERVING");

  grpc::ClientContext dc;
  v1::DrainRequest dreq;
  v1::DrainResponse dresp;
  ASSERT_TRUE(control_->Drain(&dc, dreq, &dresp).ok());
  EXPECT_EQ(dresp.in_flight(), 3);
  EXPECT_EQ(testing::HealthStatus(server_->address()), "NOT_SERVING");

  std::string message;
  EXPECT_EQ(CodeOf(TextRequest("late", 3), &message), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(message, "worker is draining");

  grpc::ClientContext lc;
  v1::LoadReport load;
  ASSERT_TRUE(control_->GetLoad(&lc, v1::LoadRequest(), &load).ok());
  EXPECT_TRUE(load.draining());
  EXPECT_EQ(load.waiting(), 3);
  EXPECT_EQ(load.total_kv_blocks(), 64);

  fake_->SetPaused(false);
  for (auto& t : threads) t.join();
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(results[i].status.ok()) << i;
    EXPECT_EQ(results[i].finish_reason, v1::FINISH_REASON_LENGTH);
    EXPECT_EQ(results[i].text, ExpectedText("drain " + std::to_string(i), 6));
  }
  EXPECT_TRUE(server_->WaitIdle(absl::Seconds(5)));
  const std::string metrics = testing::HttpGet(server_->metrics_port());
  EXPECT_EQ(testing::MetricValue(metrics, "rocmforge_worker_draining"), 1.0);
  EXPECT_EQ(testing::MetricValue(metrics, "rocmforge_request_rejected_total", "reason=\"draining\""), 1.0);
}

TEST_F(WorkerServiceTest, DrainDeadlineCancelsStreamsStillRunning) {
  fake_->SetPaused(true);
  testing::StreamResult r;
  std::thread t([&] { r = CollectGenerate(*stub_, TextRequest("stuck", 6)); });
  for (int i = 0; i < 500 && fake_->submitted() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(server_->Drain(0.2), 1);
  t.join();
  EXPECT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.finish_reason, v1::FINISH_REASON_CANCELLED);
  EXPECT_TRUE(server_->WaitIdle(absl::Seconds(5)));
}

TEST(WorkerServiceLifecycle, NotServingWhileLoadingThenServing) {
  worker::WorkerOptions options;
  options.port = 0;
  options.metrics_port = -1;
  auto server = worker::WorkerServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string addr = (*server)->address();
  EXPECT_EQ(testing::HealthStatus(addr), "NOT_SERVING");
  auto channel = testing::Connect(addr);
  auto stub = v1::Inference::NewStub(channel);
  EXPECT_EQ(CollectGenerate(*stub, TextRequest("early", 3)).status.error_code(), grpc::StatusCode::UNAVAILABLE);

  FakeEngine::Options fo;
  fo.tokenizer_gguf = testing::ModelPath("tiny-llama-spm-f16.gguf");
  ASSERT_TRUE((*server)
                  ->LoadEngine([&](EngineObserver* obs) -> absl::StatusOr<std::unique_ptr<Engine>> {
                    auto e = FakeEngine::Create(fo, obs);
                    if (!e.ok()) return e.status();
                    return std::unique_ptr<Engine>(std::move(*e));
                  }, "x")
                  .ok());
  EXPECT_EQ(testing::HealthStatus(addr), "SERVING");
  EXPECT_EQ(testing::HealthStatus(addr, "rocmforge.v1.Inference"), "SERVING");
  EXPECT_TRUE(CollectGenerate(*stub, TextRequest("now", 3)).status.ok());
  (*server)->Shutdown();
}

TEST_F(WorkerServiceTest, MetricsExposeEveryDocumentedName) {
  Restart(/*metrics=*/true);
  ASSERT_TRUE(CollectGenerate(*stub_, TextRequest("metrics", 8)).status.ok());
  const std::string text = testing::HttpGet(server_->metrics_port());
  ASSERT_FALSE(text.empty());
  // The worker table of docs/metrics.md, read from the document itself.
  std::ifstream doc(std::string(ROCMFORGE_MODELS_DIR) + "/../docs/metrics.md");
  std::string line, section;
  std::vector<std::string> names;
  const std::regex row(R"(^\| `(rocmforge_[a-z_]+)` \|)");
  while (std::getline(doc, line)) {
    if (line.rfind("## ", 0) == 0) section = line;
    std::smatch m;
    if (section.find("Worker") != std::string::npos && std::regex_search(line, m, row)) names.push_back(m[1]);
  }
  ASSERT_GE(names.size(), 20u);
  for (const std::string& name : names) {
    EXPECT_NE(text.find("# TYPE " + name + " "), std::string::npos) << name;
  }
  EXPECT_EQ(testing::MetricValue(text, "rocmforge_generation_tokens_total"), 8.0);
  EXPECT_EQ(testing::MetricValue(text, "rocmforge_requests_total", "finish_reason=\"length\""), 1.0);
  EXPECT_EQ(testing::MetricValue(text, "rocmforge_kv_cache_blocks", "state=\"total\""), 64.0);
  EXPECT_EQ(testing::MetricValue(text, "rocmforge_time_to_first_token_seconds_count"), 1.0);
  EXPECT_EQ(testing::MetricValue(text, "rocmforge_inter_token_latency_seconds_count"), 7.0);
  EXPECT_NE(text.find("rocmforge_batch_size_bucket{le=\"512\"}"), std::string::npos);
  EXPECT_NE(text.find("rocmforge_model_info{"), std::string::npos);
}

// The worker cleans text for proto3 `string` fields with the engine's
// utf8::ReplaceEachInvalidByte (one U+FFFD per bad byte).
TEST(WorkerUtf8, SanitizeKeepsValidTextAndReplacesEachBadByte) {
  const std::string valid = "plain, caf\xC3\xA9, \xE2\x82\xAC, \xF0\x9F\x98\x80, \xF4\x8F\xBF\xBF";
  EXPECT_TRUE(utf8::IsValid(valid));
  EXPECT_EQ(utf8::ReplaceEachInvalidByte(valid), valid);
  const std::string fffd = "\xEF\xBF\xBD";
  const std::pair<std::string, std::string> bad[] = {
      {"a\xE2\x82", "a" + fffd + fffd},          // truncated 3-byte sequence
      {"\xC0\xAF", fffd + fffd},                 // overlong '/'
      {"\xED\xA0\x80x", fffd + fffd + fffd + "x"},  // UTF-16 surrogate
      {"\xF4\x90\x80\x80", fffd + fffd + fffd + fffd},  // above U+10FFFF
      {"\x80z", fffd + "z"},                      // stray continuation byte
  };
  for (const auto& [in, want] : bad) {
    EXPECT_FALSE(utf8::IsValid(in));
    EXPECT_EQ(utf8::ReplaceEachInvalidByte(in), want);
    EXPECT_TRUE(utf8::IsValid(utf8::ReplaceEachInvalidByte(in)));
  }
}

}  // namespace
}  // namespace rocmforge
