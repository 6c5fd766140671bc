// The forward pass against float32 reference outputs of the two test models
// (models/README.md): greedy ids, top-5 logits per step, KV-cache and
// multi-sequence consistency.
#include <cmath>
#include <cstdio>

#include "tests/unit/test_model_util.h"

namespace rocmforge::testing {
namespace {

constexpr int kGreedyChecked = 16;   // greedy ids that must match exactly
constexpr float kLogitTolerance = 1e-2f;

class ModelReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelReferenceTest, GreedyIdsAndTop5LogitsMatchReference) {
  const std::string stem = GetParam();
  nlohmann::json ref = LoadReference(stem);
  LoadedModel m = LoadCpuModel(ModelPath(stem + "-f16.gguf"));
  ASSERT_NE(m.model, nullptr);
  const int32_t vocab = m.model->config().n_vocab;
  ASSERT_EQ(vocab, ref["config"]["vocab"].get<int32_t>());
  const int32_t bs = m.backend->kv_shape().block_size;

  float max_err = 0.0f;
  int steps = 0;
  for (const auto& gen : ref["generations"]) {
    const auto prompt = gen["prompt_ids"].get<std::vector<int32_t>>();
    const auto greedy = gen["greedy_ids"].get<std::vector<int32_t>>();
    const auto& topk = gen["topk_per_step"];
    ASSERT_EQ(topk.size(), greedy.size());
    const auto table = Iota(m.backend->kv_shape().num_blocks);
    // Step 0 is the prompt prefill; step s > 0 feeds the reference token s-1
    // (teacher forcing), so every step is compared given the reference prefix.
    std::vector<int32_t> feed = prompt;
    int32_t pos = 0;
    for (size_t s = 0; s < greedy.size(); ++s) {
      std::vector<float> logits = RunStep(m, MakeBatch({{feed, pos, table}}, bs));
      ASSERT_EQ(logits.size(), static_cast<size_t>(vocab));
      pos += static_cast<int32_t>(feed.size());
      if (s < kGreedyChecked) {
        EXPECT_EQ(Argmax(logits.data(), vocab), greedy[s]) << stem << " prompt '" << gen["prompt"] << "' step " << s;
      }
      for (const auto& pair : topk[s]) {
        const int32_t id = pair[0].get<int32_t>();
        const float want = pair[1].get<float>();
        const float err = std::fabs(logits[id] - want);
        max_err = std::max(max_err, err);
        EXPECT_LE(err, kLogitTolerance) << stem << " step " << s << " token " << id;
      }
      ++steps;
      feed = {greedy[s]};
    }
  }
  std::printf("[%s] %d steps, max |logit - reference| at the top-5 ids = %.3g\n", stem.c_str(), steps, max_err);
  RecordProperty("max_logit_error", std::to_string(max_err));
}

// Prefill of the whole prompt in one step gives the same logits at every
// position as feeding the tokens one at a time through the KV cache.
TEST_P(ModelReferenceTest, PrefillEqualsTokenByToken) {
  const std::string stem = GetParam();
  nlohmann::json ref = LoadReference(stem);
  LoadedModel m = LoadCpuModel(ModelPath(stem + "-f16.gguf"), 2, 64, /*block_size=*/4, 32);
  ASSERT_NE(m.model, nullptr);
  const int32_t vocab = m.model->config().n_vocab;
  const auto& gen = ref["generations"][1];
  std::vector<int32_t> tokens = gen["prompt_ids"].get<std::vector<int32_t>>();
  const auto greedy = gen["greedy_ids"].get<std::vector<int32_t>>();
  tokens.insert(tokens.end(), greedy.begin(), greedy.begin() + 13);  // 20-ish tokens: several blocks
  const int32_t n = static_cast<int32_t>(tokens.size());
  const std::vector<int32_t> table_a = {3, 0, 7, 1, 5, 2, 6, 4};  // deliberately scattered
  const std::vector<int32_t> table_b = {11, 9, 15, 8, 13, 10, 12, 14};

  std::vector<float> all = RunStep(m, MakeBatch({{tokens, 0, table_a, /*all_logits=*/true}}, 4));
  ASSERT_EQ(all.size(), static_cast<size_t>(n) * vocab);
  float max_diff = 0.0f;
  for (int32_t i = 0; i < n; ++i) {
    std::vector<float> one = RunStep(m, MakeBatch({{{tokens[i]}, i, table_b}}, 4));
    ASSERT_EQ(one.size(), static_cast<size_t>(vocab));
    for (int32_t v = 0; v < vocab; ++v) max_diff = std::max(max_diff, std::fabs(one[v] - all[i * vocab + v]));
  }
  EXPECT_LE(max_diff, 1e-3f);
  std::printf("[%s] prefill vs token-by-token max diff %.3g over %d positions\n", stem.c_str(), max_diff, n);
}

// Several sequences of different lengths in one StepBatch (prefill, then a
// decode step of all of them together) give each sequence's logits alone.
TEST_P(ModelReferenceTest, BatchedSequencesEqualEachAlone) {
  const std::string stem = GetParam();
  nlohmann::json ref = LoadReference(stem);
  constexpr int32_t kBlock = 4;
  LoadedModel batched = LoadCpuModel(ModelPath(stem + "-f16.gguf"), 2, 64, kBlock, 48);
  LoadedModel alone = LoadCpuModel(ModelPath(stem + "-f16.gguf"), 1, 64, kBlock, 48);
  ASSERT_NE(batched.model, nullptr);
  ASSERT_NE(alone.model, nullptr);
  const int32_t vocab = batched.model->config().n_vocab;

  std::vector<std::vector<int32_t>> prompts;
  for (int i : {0, 2, 5}) prompts.push_back(ref["generations"][i]["prompt_ids"].get<std::vector<int32_t>>());
  prompts[0].insert(prompts[0].end(), prompts[2].begin(), prompts[2].end());  // a longer one, > 3 blocks
  const std::vector<std::vector<int32_t>> tables = {{9, 2, 30, 14, 6}, {0, 21}, {40, 1, 17, 33}};

  // Prefill all three at once.
  std::vector<SeqStep> steps;
  for (size_t s = 0; s < prompts.size(); ++s) steps.push_back({prompts[s], 0, tables[s]});
  std::vector<float> got = RunStep(batched, MakeBatch(steps, kBlock));
  ASSERT_EQ(got.size(), prompts.size() * vocab);
  // Then decode one token each, together.
  std::vector<SeqStep> decode;
  for (size_t s = 0; s < prompts.size(); ++s) {
    const int32_t next = Argmax(got.data() + s * vocab, vocab);
    decode.push_back({{next}, static_cast<int32_t>(prompts[s].size()), tables[s]});
  }
  std::vector<float> got_decode = RunStep(batched, MakeBatch(decode, kBlock));
  ASSERT_EQ(got_decode.size(), prompts.size() * vocab);

  float max_diff = 0.0f;
  for (size_t s = 0; s < prompts.size(); ++s) {
    const auto table = Iota(8);
    std::vector<float> want = RunStep(alone, MakeBatch({{prompts[s], 0, table}}, kBlock));
    std::vector<float> want_decode = RunStep(alone, MakeBatch({{decode[s].tokens, decode[s].start_pos, table}}, kBlock));
    ASSERT_EQ(want.size(), static_cast<size_t>(vocab));
    for (int32_t v = 0; v < vocab; ++v) {
      max_diff = std::max(max_diff, std::fabs(want[v] - got[s * vocab + v]));
      max_diff = std::max(max_diff, std::fabs(want_decode[v] - got_decode[s * vocab + v]));
    }
  }
  EXPECT_LE(max_diff, 1e-4f);
}

TEST(ModelConfigTest, ReadsBothReferenceConfigs) {
  for (const std::string stem : {"tiny-llama-spm", "tiny-qwen2-bpe"}) {
    nlohmann::json ref = LoadReference(stem);
    auto file = gguf::GgufFile::Open(ModelPath(stem + "-f16.gguf"));
    ASSERT_TRUE(file.ok()) << file.status();
    auto c = ModelConfigFromGguf(**file);
    ASSERT_TRUE(c.ok()) << c.status();
    const auto& rc = ref["config"];
    EXPECT_EQ(c->dim, rc["dim"].get<int>());
    EXPECT_EQ(c->n_heads, rc["heads"].get<int>());
    EXPECT_EQ(c->n_kv_heads, rc["kv_heads"].get<int>());
    EXPECT_EQ(c->head_dim, rc["head_dim"].get<int>());
    EXPECT_EQ(c->ffn_dim, rc["ffn"].get<int>());
    EXPECT_EQ(c->n_layers, rc["layers"].get<int>());
    EXPECT_EQ(c->n_vocab, rc["vocab"].get<int>());
    EXPECT_FLOAT_EQ(c->rms_eps, rc["eps"].get<float>());
    EXPECT_FLOAT_EQ(c->rope_freq_base, rc["theta"].get<float>());
    EXPECT_EQ(c->rope_style, rc["rope"] == "neox" ? RopeStyle::kNeox : RopeStyle::kNorm);
    EXPECT_EQ(c->qkv_bias, rc["qkv_bias"].get<bool>());
    EXPECT_EQ(c->tied_embeddings, rc["tied"].get<bool>());
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ModelReferenceTest, ::testing::Values("tiny-llama-spm", "tiny-qwen2-bpe"));

}  // namespace
}  // namespace rocmforge::testing
