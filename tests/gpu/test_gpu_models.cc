// Both reference models end to end on the GPU backend: the F16 files must give
// the reference greedy ids for the first 16 tokens of every prompt, and a
// Q4_K_M quantization must pick the same top-1 token as the CPU backend on
// the same file in at least 95% of the steps.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "engine/gguf/quantizer.h"
#include "engine/model/model.h"
#include "nlohmann/json.hpp"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

std::string ModelsDir() {
  const char* env = std::getenv("ROCMFORGE_MODELS_DIR");
  return env != nullptr ? env : ROCMFORGE_MODELS_DIR;
}

nlohmann::json LoadReference(const std::string& stem) {
  std::ifstream in(ModelsDir() + "/" + stem + ".reference.json");
  EXPECT_TRUE(in.good()) << "missing reference " << stem;
  return nlohmann::json::parse(in);
}

struct Loaded {
  std::unique_ptr<gguf::GgufFile> file;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
};

constexpr int kBlock = 16, kBlocks = 64;

Loaded Load(const std::string& path, std::unique_ptr<Backend> backend) {
  Loaded m;
  auto file = gguf::GgufFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return m;
  m.file = std::move(*file);
  m.backend = std::move(backend);
  auto model = Model::Load(*m.file, m.backend.get(), 64);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return m;
  m.model = std::move(*model);
  const ModelConfig& c = m.model->config();
  EXPECT_TRUE(m.backend->InitKvCache({c.n_layers, c.n_kv_heads, c.head_dim, kBlock, kBlocks}).ok());
  return m;
}

StepBatch Step(const std::vector<int32_t>& tokens, int32_t start) {
  StepBatch b;
  BatchSeq s;
  s.n_tokens = static_cast<int32_t>(tokens.size());
  s.kv_len = start + s.n_tokens;
  for (int i = 0; i < kBlocks; ++i) s.block_table.push_back((i * 7) % kBlocks);  // scattered
  for (int32_t i = 0; i < s.n_tokens; ++i) {
    const int32_t pos = start + i;
    b.tokens.push_back(tokens[i]);
    b.positions.push_back(pos);
    b.slots.push_back(s.block_table[pos / kBlock] * kBlock + pos % kBlock);
  }
  b.logit_rows.push_back(s.n_tokens - 1);
  b.seqs.push_back(s);
  return b;
}

std::vector<float> RunStep(Loaded& m, const StepBatch& b) {
  auto logits = m.model->Forward(b);
  EXPECT_TRUE(logits.ok()) << logits.status();
  if (!logits.ok()) return {};
  std::vector<float> out(m.model->config().n_vocab);
  EXPECT_TRUE(m.backend->Download(out.data(), *logits, out.size() * sizeof(float)).ok());
  return out;
}

int32_t Argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

class GpuModel : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuModel, F16GreedyIdsMatchReference) {
  RF_REQUIRE_GPU(gpu);
  const std::string stem = GetParam();
  nlohmann::json ref = LoadReference(stem);
  Loaded m = Load(ModelsDir() + "/" + stem + "-f16.gguf", std::move(gpu));
  ASSERT_NE(m.model, nullptr);
  float max_err = 0.0f;
  for (const auto& gen : ref["generations"]) {
    const auto prompt = gen["prompt_ids"].get<std::vector<int32_t>>();
    const auto greedy = gen["greedy_ids"].get<std::vector<int32_t>>();
    const auto& topk = gen["topk_per_step"];
    std::vector<int32_t> feed = prompt;
    int32_t pos = 0;
    for (size_t s = 0; s < 16 && s < greedy.size(); ++s) {
      const auto logits = RunStep(m, Step(feed, pos));
      ASSERT_FALSE(logits.empty());
      EXPECT_EQ(Argmax(logits), greedy[s]) << stem << " '" << gen["prompt"] << "' step " << s;
      for (const auto& pair : topk[s]) {
        const float err = std::fabs(logits[pair[0].get<int32_t>()] - pair[1].get<float>());
        EXPECT_FALSE(std::isnan(err));
        max_err = std::max(max_err, err);
      }
      pos += static_cast<int32_t>(feed.size());
      feed = {greedy[s]};
    }
  }
  auto* g = dynamic_cast<GpuBackend*>(m.backend.get());
  ASSERT_NE(g, nullptr);
  std::printf("[%s] GPU F16: max |logit - reference| at top-5 ids over 16 steps = %.3g "
              "(decode graphs: %d captured, %d replays)\n",
              stem.c_str(), max_err, g->graphs_captured(), g->graphs_replayed());
  EXPECT_GT(g->graphs_replayed(), 0) << "decode steps should replay a captured graph";
  EXPECT_LE(max_err, 5e-2f);
}

TEST_P(GpuModel, Q4KMTop1AgreesWithCpu) {
  RF_REQUIRE_GPU(gpu);
  const std::string stem = GetParam();
  nlohmann::json ref = LoadReference(stem);
  const std::string q4 = (std::filesystem::temp_directory_path() / (stem + "-gputest-q4_k_m.gguf")).string();
  ASSERT_TRUE(quant::QuantizeModel(ModelsDir() + "/" + stem + "-f16.gguf", q4, FileType::MOSTLY_Q4_K_M, 0).ok());
  Loaded g = Load(q4, std::move(gpu));
  Loaded c = Load(q4, MakeCpu());
  ASSERT_NE(g.model, nullptr);
  ASSERT_NE(c.model, nullptr);
  int agree = 0, total = 0;
  double err_sum = 0.0;  // relative RMS difference of the logits, a finer measure than top-1
  for (const auto& gen : ref["generations"]) {
    const auto prompt = gen["prompt_ids"].get<std::vector<int32_t>>();
    const auto greedy = gen["greedy_ids"].get<std::vector<int32_t>>();
    std::vector<int32_t> feed = prompt;
    int32_t pos = 0;
    for (size_t s = 0; s < greedy.size(); ++s) {
      const auto lg = RunStep(g, Step(feed, pos));
      const auto lc = RunStep(c, Step(feed, pos));
      ASSERT_FALSE(lg.empty() || lc.empty());
      agree += Argmax(lg) == Argmax(lc);
      err_sum += RelErr(lg, lc);
      ++total;
      pos += static_cast<int32_t>(feed.size());
      feed = {greedy[s]};  // teacher forcing keeps both on the same prefix
    }
  }
  std::filesystem::remove(q4);
  const double rate = double(agree) / total;
  std::printf("[%s] Q4_K_M GPU vs CPU top-1 agreement %d/%d = %.3f, mean relative logit "
              "difference %.4f\n", stem.c_str(), agree, total, rate, err_sum / total);
  // The logits themselves must stay close: a wrong kernel moves this far more.
  EXPECT_LE(err_sum / total, 0.05);
  // Issue 6's bar. Top-1 flips happen at near ties: a change of float
  // summation order (e.g. the matvec shape) changes an int8 activation rounding
  // somewhere and flips a few of these tiny models' many near ties. Measured on
  // the H100 (2026-11-25, docs/gpu.md): 0.948 llama / 0.969 qwen2 after the
  // decode-speed kernels, 0.965 / 0.969 before; the mean logit difference did
  // not move (0.0350 vs 0.0352). The llama case is one token short: KNOWN
  // FAILING until the Q4_K path's rounding is matched more closely.
  EXPECT_GE(rate, 0.95);
}

INSTANTIATE_TEST_SUITE_P(Models, GpuModel, ::testing::Values("tiny-llama-spm", "tiny-qwen2-bpe"));

}  // namespace
}  // namespace rocmforge::gputest
