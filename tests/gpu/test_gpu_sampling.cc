// The GPU sampler against the CPU sampler (engine/sampling/sampler.h, the
// reference) on equal logits: the same picks for greedy, temperature, top-k,
// top-p, min-p and repetition penalty, the same Philox draws, and logprobs;
// plain greedy rows (the many-blocks argmax) exactly, ties and non-finite logits included.
#include "engine/sampling/sampler.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

struct Mode {
  const char* name;
  SamplingParams p;
};

std::vector<Mode> Modes() {
  std::vector<Mode> m;
  SamplingParams p;
  p.temperature = 0.0f;
  m.push_back({"greedy", p});
  p = SamplingParams{};
  p.temperature = 0.8f;
  m.push_back({"temperature", p});
  p.top_k = 40;
  m.push_back({"top_k", p});
  p.top_k = 0;
  p.top_p = 0.9f;
  m.push_back({"top_p", p});
  p.top_p = 1.0f;
  p.min_p = 0.05f;
  m.push_back({"min_p", p});
  p = SamplingParams{};
  p.temperature = 1.3f;
  p.top_k = 100;
  p.top_p = 0.7f;
  p.min_p = 0.02f;
  p.repetition_penalty = 1.3f;
  p.repetition_window = 16;
  p.logprobs = 5;
  m.push_back({"all_filters_penalty_logprobs", p});
  return m;
}

TEST(GpuSampling, PicksEqualCpuSampler) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  for (int vocab : {1031, 128256}) {
    const int rows = 24;
    // Peaked logits (like a model's) so filters matter, plus deliberate ties.
    std::vector<float> logits = RandomVec(rng, size_t(rows) * vocab, 3.0f);
    for (int r = 0; r < rows; ++r) {
      logits[size_t(r) * vocab + 5] = logits[size_t(r) * vocab + 7];
    }
    Buf lg(gpu.get(), logits);
    for (const Mode& mode : Modes()) {
      std::vector<SampleRequest> req(rows);
      for (int r = 0; r < rows; ++r) {
        req[r].params = mode.p;
        req[r].params.seed = rng();
        req[r].step = rng() % 1000;
        for (int i = 0; i < 40; ++i) req[r].recent.push_back(static_cast<int32_t>(rng() % vocab));
      }
      std::vector<SampleResult> got(rows);
      ASSERT_TRUE(gpu->Sample(lg.p, rows, vocab, req.data(), got.data()).ok());
      int same = 0;
      for (int r = 0; r < rows; ++r) {
        const SampledToken want = SampleToken(logits.data() + size_t(r) * vocab, vocab, req[r].params,
                                              req[r].step, req[r].recent.data(), req[r].recent.size());
        same += got[r].token == want.token;
        if (got[r].token == want.token) {
          EXPECT_NEAR(got[r].logprob, want.logprob, 1e-3) << mode.name;
        }
        ASSERT_EQ(got[r].top_logprobs.size(), want.top_logprobs.size());
        for (size_t k = 0; k < want.top_logprobs.size(); ++k) {
          EXPECT_EQ(got[r].top_logprobs[k].first, want.top_logprobs[k].first) << mode.name;
          EXPECT_NEAR(got[r].top_logprobs[k].second, want.top_logprobs[k].second, 1e-3);
        }
      }
      // Float sums in another order may move a pick that sits within ~1e-7 of a
      // boundary; anything beyond one such row is a bug.
      EXPECT_GE(same, rows - 1) << mode.name << " vocab " << vocab;
    }
  }
}

TEST(GpuSampling, SameSeedAndStepSamePick) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  const int vocab = 5000;
  std::vector<float> logits = RandomVec(rng, vocab, 1.0f);
  Buf lg(gpu.get(), logits);
  SampleRequest req;
  req.params.temperature = 1.0f;
  req.params.seed = 1234;
  std::vector<int32_t> picks;
  for (uint64_t step = 0; step < 64; ++step) {
    req.step = step;
    SampleResult a, b;
    ASSERT_TRUE(gpu->Sample(lg.p, 1, vocab, &req, &a).ok());
    ASSERT_TRUE(gpu->Sample(lg.p, 1, vocab, &req, &b).ok());
    EXPECT_EQ(a.token, b.token);
    picks.push_back(a.token);
  }
  std::sort(picks.begin(), picks.end());
  EXPECT_GT(std::unique(picks.begin(), picks.end()) - picks.begin(), 10) << "draws do not vary with step";
}

// Plain greedy rows take the many-blocks argmax: exact picks against the CPU
// sampler, ties to the lowest id, non-finite logits skipped, an all-non-finite
// row gives token 0.
TEST(GpuSampling, GreedyManyBlockArgmaxMatchesCpu) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  for (int vocab : {1, 7, 2049, 128256}) {
    for (int rows : {1, 3, 8}) {
      std::vector<float> logits = RandomVec(rng, size_t(rows) * vocab, 3.0f);
      for (int r = 0; r < rows; ++r) {
        float* l = logits.data() + size_t(r) * vocab;
        if (vocab > 1 && r % 3 == 0) {  // a tie at the maximum, far apart
          const int a = static_cast<int>(rng() % vocab), c = static_cast<int>(rng() % vocab);
          l[a] = l[c] = 50.0f;
        }
        if (vocab > 2 && r % 3 == 1) {
          l[rng() % vocab] = NAN;
          l[rng() % vocab] = INFINITY;
        }
        if (r == 2) std::fill(l, l + vocab, -INFINITY);
      }
      Buf lg(gpu.get(), logits);
      std::vector<SampleRequest> req(rows);
      for (auto& q : req) q.params.temperature = 0.0f;
      std::vector<SampleResult> got(rows);
      ASSERT_TRUE(gpu->Sample(lg.p, rows, vocab, req.data(), got.data()).ok());
      for (int r = 0; r < rows; ++r) {
        const SampledToken want =
            SampleToken(logits.data() + size_t(r) * vocab, vocab, req[r].params, 0, nullptr, 0);
        EXPECT_EQ(got[r].token, want.token) << "vocab " << vocab << " row " << r;
        if (std::isinf(want.logprob)) {  // the all-non-finite row
          EXPECT_EQ(got[r].logprob, want.logprob) << "vocab " << vocab << " row " << r;
        } else {
          EXPECT_NEAR(got[r].logprob, want.logprob, 1e-3) << "vocab " << vocab << " row " << r;
        }
      }
    }
  }
}

}  // namespace
}  // namespace rocmforge::gputest
