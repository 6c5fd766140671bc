// The GPU sampler against the CPU sampler (engine/sampling/sampler.h, the
// reference) on equal logits: the same picks for greedy, temperature, top-k,
// top-p, min-p and repetition penalty, the same Philox draws, and logprobs;
// plain greedy rows (the many-blocks argmax) exactly, ties and non-finite logits included;
// one and three rows at a 128k vocabulary, awkward vocabularies, and rows whose outcome
// needs more candidates than the sorted list holds (the single-block fallback).
#include <algorithm>
#include <cstdio>
#include <string>

#include "engine/sampling/sampler.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

struct Mode {
  const char* name;
  SamplingParams p;
};

std::vector<Mode> Modes() {
  return {
      {"greedy", {.temperature = 0.0f}},
      {"temperature", {.temperature = 0.8f}},
      {"top_k", {.temperature = 0.8f, .top_k = 40}},
      {"top_p", {.temperature = 0.8f, .top_p = 0.9f}},
      {"min_p", {.temperature = 0.8f, .min_p = 0.05f}},
      {"all_filters_penalty_logprobs",
       {.temperature = 1.3f, .top_k = 100, .top_p = 0.7f, .min_p = 0.02f, .repetition_penalty = 1.3f,
        .repetition_window = 16, .logprobs = 5}},
  };
}

// More modes for the few-rows and awkward-vocabulary tests: the bench's top-k + top-p,
// min-p alone at a high temperature, top-p with min-p, greedy with penalty and logprobs.
std::vector<Mode> MoreModes() {
  std::vector<Mode> m = Modes();
  const std::vector<Mode> more = {
      {"top_k_40_top_p", {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f}},
      {"min_p_hot", {.temperature = 1.7f, .min_p = 0.1f}},
      {"top_p_min_p_logprobs", {.temperature = 1.1f, .top_p = 0.5f, .min_p = 0.2f, .logprobs = 3}},
      {"greedy_penalty_logprobs",
       {.temperature = 0.0f, .repetition_penalty = 1.5f, .repetition_window = 8, .logprobs = 4}},
      {"top_k_1", {.temperature = 0.6f, .top_k = 1}},
  };
  m.insert(m.end(), more.begin(), more.end());
  return m;
}

// Samples `rows` rows of `logits` on the GPU with `mode` (fresh seed and step
// per row, recent tokens for the penalty) and compares with the CPU sampler.
// Returns the number of rows whose pick differs; logprobs of equal picks and
// top logprobs are checked here.
int CountMismatches(GpuBackend* gpu, std::mt19937& rng, const std::vector<float>& logits, int rows,
                    int vocab, const Mode& mode) {
  Buf lg(gpu, logits);
  std::vector<SampleRequest> req(rows);
  for (int r = 0; r < rows; ++r) {
    req[r].params = mode.p;
    req[r].params.seed = (uint64_t(rng()) << 32) | rng();
    req[r].step = rng() % 100000;
    for (int i = 0; i < 20; ++i) req[r].recent.push_back(static_cast<int32_t>(rng() % vocab));
  }
  std::vector<SampleResult> got(rows);
  const absl::Status st = gpu->Sample(lg.p, rows, vocab, req.data(), got.data());
  EXPECT_TRUE(st.ok()) << st;
  if (!st.ok()) return rows;
  int mismatches = 0;
  for (int r = 0; r < rows; ++r) {
    const SampledToken want = SampleToken(logits.data() + size_t(r) * vocab, vocab, req[r].params,
                                          req[r].step, req[r].recent.data(), req[r].recent.size());
    const std::string where = std::string(mode.name) + " vocab " + std::to_string(vocab) + " row " +
                              std::to_string(r) + " of " + std::to_string(rows);
    EXPECT_GE(got[r].token, 0) << where;
    EXPECT_LT(got[r].token, vocab) << where;
    if (got[r].token != want.token) {
      ++mismatches;
      std::printf("note (one allowed per test): GPU pick %d, CPU pick %d at %s\n", got[r].token,
                  want.token, where.c_str());
    } else if (std::isinf(want.logprob)) {
      EXPECT_EQ(got[r].logprob, want.logprob) << where;
    } else {
      EXPECT_NEAR(got[r].logprob, want.logprob, 1e-3) << where;
    }
    EXPECT_EQ(got[r].top_logprobs.size(), want.top_logprobs.size()) << where;
    for (size_t k = 0; k < std::min(want.top_logprobs.size(), got[r].top_logprobs.size()); ++k) {
      EXPECT_EQ(got[r].top_logprobs[k].first, want.top_logprobs[k].first) << where;
      if (std::isinf(want.top_logprobs[k].second)) {
        EXPECT_EQ(got[r].top_logprobs[k].second, want.top_logprobs[k].second) << where;
      } else {
        EXPECT_NEAR(got[r].top_logprobs[k].second, want.top_logprobs[k].second, 1e-3) << where;
      }
    }
  }
  return mismatches;
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


// One and three rows at a 128k vocabulary (the decode case the many-blocks
// pipeline is for): every mode against the CPU sampler, with ties at the top,
// NaN and +-inf logits in some rows.
TEST(GpuSampling, FewRowsAt128kMatchCpu) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  const int vocab = 128256;
  int mismatches = 0, cases = 0;
  for (int rows : {1, 3}) {
    for (const Mode& mode : MoreModes()) {
      std::vector<float> logits = RandomVec(rng, size_t(rows) * vocab, 3.0f);
      for (int r = 0; r < rows; ++r) {
        float* l = logits.data() + size_t(r) * vocab;
        const int best = static_cast<int>(std::max_element(l, l + vocab) - l);
        const int twin = static_cast<int>(rng() % vocab);
        l[twin] = l[best];  // a tie at the maximum
        l[rng() % vocab] = l[rng() % vocab];  // and somewhere else
        if (r % 2 == 1) {
          l[rng() % vocab] = NAN;
          l[rng() % vocab] = INFINITY;
          l[rng() % vocab] = -INFINITY;
        }
      }
      mismatches += CountMismatches(gpu.get(), rng, logits, rows, vocab, mode);
      cases += rows;
    }
  }
  // A draw within float rounding of a boundary may pick the neighbour (~1e-7 per row).
  EXPECT_LE(mismatches, 1) << "of " << cases << " rows";
}

// Awkward vocabularies (1, 7, 1000, 32001), three rows each: one row all
// non-finite, one with NaN / inf and ties, one of ties only (few distinct values).
TEST(GpuSampling, AwkwardVocabsMatchCpu) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  int mismatches = 0, cases = 0;
  for (int vocab : {1, 7, 1000, 32001}) {
    for (const Mode& mode : MoreModes()) {
      const int rows = 3;
      std::vector<float> logits = RandomVec(rng, size_t(rows) * vocab, 2.0f);
      float* l0 = logits.data();
      std::fill(l0, l0 + vocab, -INFINITY);
      if (vocab > 1) l0[vocab - 1] = NAN;
      float* l1 = logits.data() + vocab;
      l1[rng() % vocab] = NAN;
      l1[rng() % vocab] = INFINITY;
      l1[rng() % vocab] = l1[rng() % vocab];
      float* l2 = logits.data() + 2 * size_t(vocab);
      for (int i = 0; i < vocab; ++i) l2[i] = static_cast<float>(rng() % 4);  // many ties
      mismatches += CountMismatches(gpu.get(), rng, logits, rows, vocab, mode);
      cases += rows;
    }
  }
  EXPECT_LE(mismatches, 1) << "of " << cases << " rows";
}

// Rows whose outcome needs more candidates than the sorted list holds (2048):
// a nearly flat 128k row (temperature, top-p, min-p spread over everything), an
// exactly flat one, and top-k 3000. They take the single-block radix path.
TEST(GpuSampling, FlatRowsAndLargeTopKMatchCpu) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  const int vocab = 128256, rows = 3;
  std::vector<Mode> modes;
  SamplingParams p;
  p.temperature = 1.0f;
  modes.push_back({"flat_temperature", p});
  p.top_p = 0.9f;
  modes.push_back({"flat_top_p", p});
  p.top_p = 1.0f;
  p.min_p = 0.9f;
  modes.push_back({"flat_min_p", p});
  p = SamplingParams{};
  p.temperature = 0.9f;
  p.top_k = 3000;
  p.top_p = 0.99f;
  modes.push_back({"top_k_3000", p});
  int mismatches = 0, cases = 0;
  for (const Mode& mode : modes) {
    std::vector<float> logits = RandomVec(rng, size_t(rows) * vocab, mode.p.top_k > 0 ? 1.0f : 0.01f);
    std::fill(logits.begin() + 2 * size_t(vocab), logits.end(), 0.5f);  // exactly flat: all ties
    mismatches += CountMismatches(gpu.get(), rng, logits, rows, vocab, mode);
    cases += rows;
  }
  EXPECT_LE(mismatches, 1) << "of " << cases << " rows";
}

}  // namespace
}  // namespace rocmforge::gputest
