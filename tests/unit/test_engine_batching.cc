// The Engine on the bundled tiny models: continuous batching, chunked
// prefill, prefix reuse and preemption must never change what a request
// produces; cancellation frees blocks; bad requests are rejected clearly;
// resume after failover continues a stream exactly.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "gtest/gtest.h"
#include "test_engine_util.h"

namespace rocmforge {
namespace {

using testing::EngineReference;
using testing::MakeEngine;
using testing::Outcome;
using testing::RunAll;
using testing::RunOne;
using testing::WaitForStats;

struct ModelCase {
  const char* file;
  const char* reference;
};

class EngineBatching : public ::testing::TestWithParam<ModelCase> {
 protected:
  std::vector<TokenId> RandomPrompt(std::mt19937& rng, int n, int32_t vocab) {
    std::vector<TokenId> p(n);
    for (auto& t : p) t = 3 + static_cast<TokenId>(rng() % (vocab - 3));
    return p;
  }
  static GenerationRequest Greedy(std::vector<TokenId> prompt, int32_t max_tokens) {
    GenerationRequest r;
    r.prompt = std::move(prompt);
    r.sampling.temperature = 0;
    r.stopping.max_tokens = max_tokens;
    r.stopping.ignore_eos = true;
    return r;
  }
  static GenerationRequest Sampled(std::vector<TokenId> prompt, int32_t max_tokens, uint64_t seed) {
    GenerationRequest r = Greedy(std::move(prompt), max_tokens);
    r.sampling.temperature = 0.9f;
    r.sampling.top_k = 50;
    r.sampling.top_p = 0.95f;
    r.sampling.seed = seed;
    return r;
  }
  static void ExpectSame(const Outcome& solo, const Outcome& batched, const std::string& what) {
    EXPECT_EQ(batched.tokens, solo.tokens) << what;
    EXPECT_EQ(batched.text, solo.text) << what;
    EXPECT_EQ(batched.reason, solo.reason) << what;
    EXPECT_EQ(batched.finished_events, 1) << what;
    EXPECT_TRUE(batched.error.empty()) << what << ": " << batched.error;
  }
};

TEST_P(EngineBatching, ConcurrentGreedyRequestsProduceTheirSoloTokens) {
  EngineOptions opt;
  opt.max_batch_tokens = 48;  // forces chunked prefill of the longer prompts
  opt.prefix_cache = false;   // batching alone; prefix reuse has its own test
  testing::CountingObserver obs;
  auto engine = MakeEngine(GetParam().file, opt, &obs);
  ASSERT_NE(engine, nullptr);
  const auto ref = EngineReference(GetParam().reference);
  const int32_t vocab = engine->model_config().n_vocab;
  std::mt19937 rng(2024);
  std::vector<GenerationRequest> reqs;
  for (const auto& g : ref["generations"]) {
    reqs.push_back(Greedy(g["prompt_ids"].get<std::vector<TokenId>>(), 16));
  }
  const size_t n_ref = reqs.size();
  for (int i = 0; i < 12; ++i) {
    reqs.push_back(Greedy(RandomPrompt(rng, 1 + static_cast<int>(rng() % 50), vocab),
                          3 + static_cast<int32_t>(rng() % 6)));
  }
  std::vector<Outcome> solo;
  for (const auto& r : reqs) solo.push_back(RunOne(*engine, r));
  // The solo runs reproduce the float32 reference (sanity of the whole path).
  for (size_t i = 0; i < n_ref; ++i) {
    const auto want = ref["generations"][i]["greedy_ids"].get<std::vector<TokenId>>();
    ASSERT_EQ(solo[i].tokens, std::vector<TokenId>(want.begin(), want.begin() + 16)) << "prompt " << i;
  }
  int solo_steps = 0;
  {
    std::lock_guard<std::mutex> lock(obs.mu_);
    solo_steps = obs.steps;
  }
  const auto batched = RunAll(*engine, reqs);
  ASSERT_EQ(batched.size(), reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) ExpectSame(solo[i], batched[i], "request " + std::to_string(i));
  {
    std::lock_guard<std::mutex> lock(obs.mu_);
    EXPECT_GE(obs.max_batch_sequences, 10) << "requests were meant to run together";
    EXPECT_LE(obs.max_batch_tokens, 48);
    EXPECT_LT(obs.steps - solo_steps, solo_steps / 3) << "batching should need far fewer steps";
    EXPECT_EQ(obs.finishes, static_cast<int>(2 * reqs.size()));
    EXPECT_EQ(obs.first_tokens, static_cast<int>(2 * reqs.size()));
    EXPECT_EQ(obs.lookups, static_cast<int>(2 * reqs.size()));
    int tokens = 0;
    for (const auto& o : solo) tokens += static_cast<int>(o.tokens.size());
    EXPECT_EQ(obs.first_tokens + obs.later_tokens, 2 * tokens);
  }
  EXPECT_TRUE(WaitForStats(*engine, [](const EngineStats& s) {
    return s.running == 0 && s.waiting == 0 && s.free_kv_blocks == s.total_kv_blocks;
  }));
}

TEST_P(EngineBatching, SeededSamplingIsTheSameAloneAndInABatch) {
  auto engine = MakeEngine(GetParam().file);
  ASSERT_NE(engine, nullptr);
  const int32_t vocab = engine->model_config().n_vocab;
  std::mt19937 rng(7);
  const GenerationRequest probe = Sampled(RandomPrompt(rng, 9, vocab), 16, 1234567);
  const Outcome alone = RunOne(*engine, probe);
  ASSERT_EQ(alone.tokens.size(), 16u);
  EXPECT_EQ(alone.usage.seed, 1234567u);
  std::vector<GenerationRequest> reqs;
  for (int i = 0; i < 10; ++i) {
    const auto p = RandomPrompt(rng, 2 + static_cast<int>(rng() % 30), vocab);
    reqs.push_back(i % 2 ? Greedy(p, 12) : Sampled(p, 12, 1000 + i));
  }
  reqs.insert(reqs.begin() + 4, probe);
  const auto batched = RunAll(*engine, reqs);
  ASSERT_EQ(batched.size(), reqs.size());
  ExpectSame(alone, batched[4], "seeded request in a batch");
  // Same prompt and seed again: still the same; another seed: a different draw.
  EXPECT_EQ(RunOne(*engine, probe).tokens, alone.tokens);
  GenerationRequest other = probe;
  other.sampling.seed = 7654321;
  EXPECT_NE(RunOne(*engine, other).tokens, alone.tokens) << "the seed should matter";
}

TEST_P(EngineBatching, RepeatedLongPromptIsServedFromThePrefixCache) {
  EngineOptions opt;
  opt.kv_block_size = 16;
  auto engine = MakeEngine(GetParam().file, opt);
  ASSERT_NE(engine, nullptr);
  const int32_t vocab = engine->model_config().n_vocab;
  std::mt19937 rng(9);
  const auto prompt = RandomPrompt(rng, 75, vocab);
  const Outcome first = RunOne(*engine, Greedy(prompt, 8));
  EXPECT_EQ(first.usage.cached_prompt_tokens, 0);
  EXPECT_EQ(first.usage.prompt_tokens, 75);
  const Outcome second = RunOne(*engine, Greedy(prompt, 8));
  EXPECT_EQ(second.usage.cached_prompt_tokens, 64);  // 4 full blocks; the rest computed
  ExpectSame(first, second, "prefix-cached rerun");
  // A prompt sharing only the first 40 tokens reuses 2 blocks.
  auto branch = prompt;
  branch.resize(40);
  const auto tail = RandomPrompt(rng, 20, vocab);
  branch.insert(branch.end(), tail.begin(), tail.end());
  EngineOptions cold = opt;
  cold.prefix_cache = false;
  auto reference_engine = MakeEngine(GetParam().file, cold);
  const Outcome branch_cold = RunOne(*reference_engine, Greedy(branch, 8));
  const Outcome branch_warm = RunOne(*engine, Greedy(branch, 8));
  EXPECT_EQ(branch_warm.usage.cached_prompt_tokens, 32);
  ExpectSame(branch_cold, branch_warm, "partially cached prompt");
  EXPECT_GE(engine->Stats().prefix_hit_tokens, 96u);
  EXPECT_EQ(engine->Stats().prompt_tokens, 75u + 75u + 60u);
}

// Records each step's sequences and tokens (called on the engine thread).
class StepRecorder : public EngineObserver {
 public:
  void OnStep(int32_t seqs, int32_t tokens, double) override {
    std::lock_guard<std::mutex> lock(mu_);
    steps_.emplace_back(seqs, tokens);
  }
  std::vector<std::pair<int32_t, int32_t>> steps() {
    std::lock_guard<std::mutex> lock(mu_);
    return steps_;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<int32_t, int32_t>> steps_;
};

// A long prompt that arrives while another stream decodes is prefilled in
// chunks of at most the prefill cap per step; -1 (the worker's default) takes
// the backend's cap (Backend::DefaultPrefillCapWithDecodes: 64 on the CPU,
// which has no step sizes to fill), 0 none.
TEST_P(EngineBatching, PrefillCapWhileDecodingDefaultsToTheBackends) {
  for (const int32_t cap : {-1, 0}) {
    EngineOptions opt;
    opt.max_prefill_tokens_with_decodes = cap;
    StepRecorder rec;
    auto engine = MakeEngine(GetParam().file, opt, &rec);
    ASSERT_NE(engine, nullptr);
    const int32_t vocab = engine->model_config().n_vocab;
    std::mt19937 rng(21);
    testing::Collector c;
    std::atomic<bool> decoding{false};
    ASSERT_TRUE(engine->Submit(Greedy(RandomPrompt(rng, 4, vocab), 150),
                               c.Sink(0, [&](size_t, const TokenEvent&) { decoding = true; }))
                    .ok());
    ASSERT_TRUE(WaitForStats(*engine, [&](const EngineStats&) { return decoding.load(); }));
    const int32_t long_prompt = 200;
    ASSERT_TRUE(engine->Submit(Greedy(RandomPrompt(rng, long_prompt, vocab), 2), c.Sink(1)).ok());
    ASSERT_TRUE(c.WaitFor(2));
    const auto outcomes = c.outcomes();
    ASSERT_EQ(outcomes[0].tokens.size(), 150u) << outcomes[0].error;
    ASSERT_EQ(outcomes[1].tokens.size(), 2u) << outcomes[1].error;
    // Steps that carried the first stream's decode and a prefill chunk.
    int32_t largest = 0;
    for (const auto& [seqs, tokens] : rec.steps()) {
      if (seqs == 2 && tokens > 2) largest = std::max(largest, tokens);
    }
    if (cap == -1) {
      EXPECT_EQ(largest, 1 + 64) << "the CPU backend's default cap";
    } else {
      EXPECT_EQ(largest, 1 + long_prompt) << "no cap: the whole prompt in one step";
    }
  }
}

TEST_P(EngineBatching, TinyKvPoolPreemptsAndStillMatchesSoloOutputs) {
  EngineOptions opt;
  opt.kv_block_size = 16;
  opt.kv_blocks = 6;  // 96 token slots; each request needs up to 50
  opt.max_batch_tokens = 64;
  auto engine = MakeEngine(GetParam().file, opt);
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->context_length(), 96) << "the context shrinks to what the pool holds";
  const int32_t vocab = engine->model_config().n_vocab;
  std::mt19937 rng(11);
  std::vector<GenerationRequest> reqs;
  for (int i = 0; i < 10; ++i) {
    reqs.push_back(Greedy(RandomPrompt(rng, 5 + static_cast<int>(rng() % 25), vocab), 20));
  }
  reqs[3] = Sampled(reqs[3].prompt, 20, 99);
  std::vector<Outcome> solo;
  for (const auto& r : reqs) solo.push_back(RunOne(*engine, r));
  ASSERT_EQ(engine->Stats().preemptions, 0u) << "one request alone always fits";
  const auto batched = RunAll(*engine, reqs);
  ASSERT_EQ(batched.size(), reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    ExpectSame(solo[i], batched[i], "request " + std::to_string(i));
    EXPECT_EQ(batched[i].tokens.size(), 20u);
  }
  EXPECT_GT(engine->Stats().preemptions, 0u) << "the pool was meant to force preemption";
  EXPECT_TRUE(WaitForStats(*engine, [](const EngineStats& s) {
    return s.running == 0 && s.free_kv_blocks == s.total_kv_blocks;
  }));
}

TEST_P(EngineBatching, CancelMidStreamFreesBlocksAndFinishesOnce) {
  EngineOptions opt;
  opt.max_running = 1;  // so a second request stays queued
  auto engine = MakeEngine(GetParam().file, opt);
  ASSERT_NE(engine, nullptr);
  const int32_t vocab = engine->model_config().n_vocab;
  std::mt19937 rng(13);
  testing::Collector c;
  std::atomic<int> tokens_seen{0};
  auto running = engine->Submit(Greedy(RandomPrompt(rng, 40, vocab), 400),
                                c.Sink(0, [&](size_t, const TokenEvent& ev) {
                                  tokens_seen += static_cast<int>(ev.token_ids.size());
                                }));
  ASSERT_TRUE(running.ok()) << running.status();
  auto queued = engine->Submit(Greedy(RandomPrompt(rng, 10, vocab), 5), c.Sink(1));
  ASSERT_TRUE(queued.ok());
  for (int i = 0; i < 4000 && tokens_seen < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_GE(tokens_seen.load(), 3);
  EXPECT_GT(engine->Stats().total_kv_blocks - engine->Stats().free_kv_blocks, 0);
  engine->Cancel(*queued);
  engine->Cancel(*running);
  engine->Cancel(987654321);  // unknown: ignored
  ASSERT_TRUE(c.WaitFor(2));
  const auto out = c.outcomes();
  EXPECT_EQ(out[0].reason, FinishReason::kCancelled);
  EXPECT_LT(out[0].tokens.size(), 400u);
  EXPECT_EQ(out[0].finished_events, 1);
  EXPECT_EQ(out[1].reason, FinishReason::kCancelled);
  EXPECT_TRUE(out[1].tokens.empty());
  EXPECT_TRUE(WaitForStats(*engine, [](const EngineStats& s) {
    return s.running == 0 && s.waiting == 0 && s.free_kv_blocks == s.total_kv_blocks;
  })) << "cancelled requests must free their blocks";
  // A cancel after the finish changes nothing.
  engine->Cancel(*running);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(c.outcomes()[0].finished_events, 1);
}

TEST_P(EngineBatching, InvalidRequestsAreRejectedWithClearMessages) {
  EngineOptions opt;
  opt.context_length = 64;
  auto engine = MakeEngine(GetParam().file, opt);
  ASSERT_NE(engine, nullptr);
  const int32_t vocab = engine->model_config().n_vocab;
  auto expect_bad = [&](GenerationRequest r, const std::string& needle) {
    testing::Collector c;
    const auto id = engine->Submit(std::move(r), c.Sink(0));
    ASSERT_FALSE(id.ok()) << "accepted a request that should fail with '" << needle << "'";
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(id.status().message().find(needle), std::string::npos) << id.status();
  };
  const GenerationRequest ok = Greedy({5, 6, 7}, 4);
  auto r = ok;
  r.prompt.clear();
  expect_bad(r, "prompt is empty");
  r = ok;
  r.prompt.assign(64, 5);
  expect_bad(r, "context is 64");
  r = ok;
  r.prompt[1] = vocab;
  expect_bad(r, "outside the vocabulary");
  r = ok;
  r.prompt[2] = -1;
  expect_bad(r, "prompt token 2");
  r = ok;
  r.sampling.temperature = -1;
  expect_bad(r, "temperature");
  r = ok;
  r.sampling.top_p = 0;
  expect_bad(r, "top_p");
  r = ok;
  r.stopping.max_tokens = 0;
  expect_bad(r, "max_tokens");
  r = ok;
  r.stopping.max_tokens = 65;
  expect_bad(r, "max_tokens");
  r = ok;
  r.resume_generated = 3;
  expect_bad(r, "resume_generated");
  r = ok;
  r.resume_generated = 2;
  r.stopping.max_tokens = 2;
  expect_bad(r, "resume_generated");
  // A valid one still works after all that.
  const Outcome o = RunOne(*engine, ok);
  EXPECT_EQ(o.tokens.size(), 4u);
  EXPECT_EQ(o.reason, FinishReason::kLength);
}

TEST_P(EngineBatching, ResumeContinuesGreedyAndSeededStreamsExactly) {
  auto engine = MakeEngine(GetParam().file);
  ASSERT_NE(engine, nullptr);
  const int32_t vocab = engine->model_config().n_vocab;
  std::mt19937 rng(17);
  const auto prompt = RandomPrompt(rng, 12, vocab);
  for (const GenerationRequest& full_req : {Greedy(prompt, 14), Sampled(prompt, 14, 4242)}) {
    const Outcome full = RunOne(*engine, full_req);
    ASSERT_EQ(full.tokens.size(), 14u);
    for (int k : {1, 6, 13}) {
      GenerationRequest resumed = full_req;
      resumed.prompt.insert(resumed.prompt.end(), full.tokens.begin(), full.tokens.begin() + k);
      resumed.resume_generated = k;
      const Outcome rest = RunOne(*engine, resumed);
      EXPECT_EQ(rest.tokens, std::vector<TokenId>(full.tokens.begin() + k, full.tokens.end()))
          << "resume at " << k << (full_req.sampling.greedy() ? " (greedy)" : " (seeded)");
      std::string sent;
      for (int i = 0; i < k; ++i) sent += full.pieces[i];
      EXPECT_EQ(sent + rest.text, full.text) << "text must continue seamlessly at " << k;
      EXPECT_EQ(rest.usage.generated_tokens, 14);
      EXPECT_EQ(rest.usage.prompt_tokens, 12);
      EXPECT_EQ(rest.reason, FinishReason::kLength);
    }
  }
}

TEST_P(EngineBatching, StopStringEndsTheStreamWithoutTheStopText) {
  auto engine = MakeEngine(GetParam().file);
  ASSERT_NE(engine, nullptr);
  const auto ref = EngineReference(GetParam().reference);
  const auto prompt = ref["generations"][0]["prompt_ids"].get<std::vector<TokenId>>();
  const Outcome full = RunOne(*engine, Greedy(prompt, 24));
  ASSERT_GT(full.text.size(), 12u);
  // A stop string from the middle of the greedy text.
  const std::string stop = full.text.substr(full.text.size() / 2, 3);
  GenerationRequest r = Greedy(prompt, 24);
  r.stopping.stop_strings = {stop};
  const Outcome stopped = RunOne(*engine, r);
  EXPECT_EQ(stopped.reason, FinishReason::kStop);
  EXPECT_EQ(stopped.text, full.text.substr(0, full.text.find(stop)));
  EXPECT_LE(stopped.tokens.size(), full.tokens.size());
  // A stop token id ends it at that token.
  r.stopping.stop_strings.clear();
  r.stopping.stop_token_ids = {full.tokens[5]};
  const Outcome by_id = RunOne(*engine, r);
  EXPECT_EQ(by_id.reason, FinishReason::kStop);
  const size_t first = std::find(full.tokens.begin(), full.tokens.end(), full.tokens[5]) - full.tokens.begin();
  EXPECT_EQ(by_id.tokens, std::vector<TokenId>(full.tokens.begin(), full.tokens.begin() + first + 1));
}

TEST_P(EngineBatching, ShutdownCancelsPendingRequests) {
  EngineOptions opt;
  opt.max_running = 1;
  auto engine = MakeEngine(GetParam().file, opt);
  ASSERT_NE(engine, nullptr);
  testing::Collector c;
  std::mt19937 rng(19);
  const int32_t vocab = engine->model_config().n_vocab;
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(engine->Submit(Greedy(RandomPrompt(rng, 8, vocab), 500), c.Sink(i)).ok());
  }
  engine->Shutdown();
  ASSERT_TRUE(c.WaitFor(3));
  for (const Outcome& o : c.outcomes()) {
    EXPECT_EQ(o.reason, FinishReason::kCancelled);
    EXPECT_EQ(o.finished_events, 1);
  }
  const auto late = engine->Submit(Greedy({5, 6}, 2), c.Sink(3));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kUnavailable);
  engine->Shutdown();  // idempotent
}

INSTANTIATE_TEST_SUITE_P(TinyModels, EngineBatching,
                         ::testing::Values(ModelCase{"tiny-llama-spm-f16.gguf", "tiny-llama-spm"},
                                           ModelCase{"tiny-qwen2-bpe-f16.gguf", "tiny-qwen2-bpe"}),
                         [](const auto& info) {
                           return std::string(info.param.reference).substr(5, 5) == "llama"
                                      ? std::string("Llama")
                                      : std::string("Qwen2");
                         });

}  // namespace
}  // namespace rocmforge
