// Both reference models end to end on the GPU backend: the F16 files must give
// the reference greedy ids for the first 16 tokens of every prompt, and a
// Q4_K_M quantization (and the 2- and 3-bit K-quant mixes Q3_K_M and Q2_K)
// must pick the same top-1 token as the CPU backend on the same file in at
// least 95% of the steps.
#include <cmath>
#include <cstring>
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

// Top-1 agreement and mean relative logit difference of the GPU against the
// CPU backend on one quantization of a reference model, teacher-forced over
// every reference generation (prompt, then its greedy ids one at a time).
struct Agreement {
  int agree = 0, total = 0;
  double mean_err = 0.0;
  double rate() const { return total > 0 ? double(agree) / total : 0.0; }
};
Agreement AgreementWithCpu(const std::string& stem, FileType ftype, const char* label,
                           std::unique_ptr<Backend> gpu) {
  Agreement a;
  nlohmann::json ref = LoadReference(stem);
  const std::string path =
      (std::filesystem::temp_directory_path() / (stem + "-gputest-" + label + ".gguf")).string();
  EXPECT_TRUE(quant::QuantizeModel(ModelsDir() + "/" + stem + "-f16.gguf", path, ftype, 0).ok()) << label;
  Loaded g = Load(path, std::move(gpu));
  Loaded c = Load(path, MakeCpu());
  if (g.model == nullptr || c.model == nullptr) {
    ADD_FAILURE() << stem << " " << label << ": a model did not load";
    return a;
  }
  double err_sum = 0.0;  // relative RMS difference of the logits, a finer measure than top-1
  for (const auto& gen : ref["generations"]) {
    const auto prompt = gen["prompt_ids"].get<std::vector<int32_t>>();
    const auto greedy = gen["greedy_ids"].get<std::vector<int32_t>>();
    std::vector<int32_t> feed = prompt;
    int32_t pos = 0;
    for (size_t s = 0; s < greedy.size(); ++s) {
      const auto lg = RunStep(g, Step(feed, pos));
      const auto lc = RunStep(c, Step(feed, pos));
      if (lg.empty() || lc.empty()) {
        ADD_FAILURE() << stem << " " << label << ": a step returned no logits";
        return a;
      }
      a.agree += Argmax(lg) == Argmax(lc);
      err_sum += RelErr(lg, lc);
      ++a.total;
      pos += static_cast<int32_t>(feed.size());
      feed = {greedy[s]};  // teacher forcing keeps both on the same prefix
    }
  }
  std::filesystem::remove(path);
  a.mean_err = err_sum / a.total;
  std::printf("[%s] %s GPU vs CPU top-1 agreement %d/%d = %.3f, mean relative logit difference %.4f\n",
              stem.c_str(), label, a.agree, a.total, a.rate(), a.mean_err);
  return a;
}

TEST_P(GpuModel, Q4KMTop1AgreesWithCpu) {
  RF_REQUIRE_GPU(gpu);
  const Agreement a = AgreementWithCpu(GetParam(), FileType::MOSTLY_Q4_K_M, "Q4_K_M", std::move(gpu));
  // The logits themselves must stay close: a wrong kernel moves this far more.
  EXPECT_LE(a.mean_err, 0.05);
  // Issue 6's bar. Top-1 flips happen at near ties: a change of float
  // summation order (e.g. the matvec shape) changes an int8 activation rounding
  // somewhere and flips a few of these tiny models' many near ties (H100,
  // docs/gpu.md: 0.948-0.965 llama / 0.958-0.969 qwen2 across the kernel
  // versions; the mean logit difference stays ~0.035).
  EXPECT_GE(a.rate(), 0.95);
}

// The 2- and 3-bit K-quants (Q2_K, Q3_K_M: Q2_K / Q3_K matrices beside Q4_K /
// Q5_K / Q6_K ones), whose batch-1 dot products and dense-path dequantization
// are their own kernels. The logit bar is Q4_K_M's; top-1 agreement 0.92: the
// coarser weights leave these tiny models more near ties (H100, 2026-11-27:
// llama 0.944 / 0.948, qwen2 0.965 / 0.962 with mean logit differences
// 0.035 / 0.041 / 0.031 / 0.033, i.e. as close as Q4_K_M's), and a wrong
// kernel moves both measures far more.
TEST_P(GpuModel, LowBitKQuantsAgreeWithCpu) {
  RF_REQUIRE_GPU(gpu);
  const Agreement q3 = AgreementWithCpu(GetParam(), FileType::MOSTLY_Q3_K_M, "Q3_K_M", std::move(gpu));
  EXPECT_LE(q3.mean_err, 0.05);
  EXPECT_GE(q3.rate(), 0.92);
  std::string why;
  auto gpu2 = MakeGpu(&why);
  ASSERT_NE(gpu2, nullptr) << why;
  const Agreement q2 = AgreementWithCpu(GetParam(), FileType::MOSTLY_Q2_K, "Q2_K", std::move(gpu2));
  EXPECT_LE(q2.mean_err, 0.05);
  EXPECT_GE(q2.rate(), 0.92);
}

// A decode step launched in two graphs (GpuBackend::SetFirstSegmentOps: the
// first ops as soon as they are recorded) computes exactly what the step as
// one graph does: each decode step of the first reference generation runs as
// one graph, then again (same token, same position: the same KV slot written
// with the same values) split after 5 ops, and the logits must be equal bit
// for bit; the split steps must capture and replay graphs of their own.
TEST_P(GpuModel, FirstSegmentLaunchIsBitIdentical) {
  RF_REQUIRE_GPU(gpu);
  const std::string stem = GetParam();
  nlohmann::json ref = LoadReference(stem);
  auto* g = gpu.get();
  Loaded m = Load(ModelsDir() + "/" + stem + "-f16.gguf", std::move(gpu));
  ASSERT_NE(m.model, nullptr);
  const auto& gen = ref["generations"][0];
  const auto prompt = gen["prompt_ids"].get<std::vector<int32_t>>();
  const auto greedy = gen["greedy_ids"].get<std::vector<int32_t>>();
  g->SetFirstSegmentOps(0);
  ASSERT_FALSE(RunStep(m, Step(prompt, 0)).empty());
  int32_t pos = static_cast<int32_t>(prompt.size());
  int captured_split = -1;
  for (size_t s = 0; s + 1 < greedy.size() && s < 12; ++s) {
    g->SetFirstSegmentOps(0);
    const auto whole = RunStep(m, Step({greedy[s]}, pos));
    g->SetFirstSegmentOps(5);
    const int captured0 = g->graphs_captured();
    const auto split = RunStep(m, Step({greedy[s]}, pos));
    if (s == 0) captured_split = g->graphs_captured() - captured0;
    ASSERT_EQ(whole.size(), split.size());
    EXPECT_EQ(std::memcmp(whole.data(), split.data(), whole.size() * sizeof(float)), 0) << stem << " step " << s;
    ++pos;
  }
  g->SetFirstSegmentOps(GpuBackend::kFirstSegmentOps);
  EXPECT_EQ(captured_split, 2) << "the first split step should capture its two graphs";
}

INSTANTIATE_TEST_SUITE_P(Models, GpuModel, ::testing::Values("tiny-llama-spm", "tiny-qwen2-bpe"));

}  // namespace
}  // namespace rocmforge::gputest
