// The int8 MMQ GEMM (kernels/matmul_mmq.hip): Q4_K / Q6_K weights times
// activations quantized once with the Q8_K rule (LaunchQuantizeActivation).
// The CPU backend dots the SAME int8 activations with the same integer weights,
// so the two differ only in float summation order: the tolerance is tight
// (an f16 path such as v5 is ~1e-3 off). Outputs start as NaN, inputs are
// fresh random, shapes are awkward (rows not a multiple of the 128-row tile,
// n not a multiple of the token tile: a partial tile runs only its live
// token fragments, one kernel body per count), every token tile (16 / 32 / 64
// / 128) and K split count is forced, a launch of 33 row tiles takes the
// automatic 128-token tile, and groups of 3 parts run in one launch. Then a whole forward of a
// 32-sequence decode step with MMQ (GemmConfig::narrow = 3) against v5
// (narrow = 1) and the CPU backend.
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/gguf/quantizer.h"
#include "engine/model/model.h"
#include "kernels/gpu_api.h"
#include "tests/gpu/gpu_config_guard.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

class GpuMmq : public ::testing::TestWithParam<GgmlType> {};

TEST_P(GpuMmq, MatchesCpuInt8Reference) {
  RF_REQUIRE_GPU(gpu);
  const GgmlType type = GetParam();
  if (!gpu::MatMulMmqSupported(type)) GTEST_SKIP() << "no int8 MMQ path on this device";
  auto cpu = MakeCpu();
  ASSERT_NE(cpu, nullptr);
  std::mt19937 rng(std::random_device{}());
  struct Shape {
    std::vector<int64_t> rows;  // parts of one group
    int64_t cols;
    std::vector<int> ns;
  };
  const std::vector<Shape> shapes = {
      {{333, 128, 40}, 256, {1, 3, 4, 5, 8, 9, 16, 17, 31, 32, 33, 64, 65, 96, 97, 100, 127, 128}},
      {{200, 1000}, 4096, {3, 5, 9, 16, 17, 31, 32, 33, 64, 80, 96, 100, 128}},
      {{259}, 1024, {4, 33, 65, 113}},
      {{130}, 14336, {7, 9, 33, 128}},
      {{4100}, 256, {65, 96, 97, 128}},  // 33 row tiles: the automatic 128-token tile
  };
  const GpuConfigGuard restore_settings;
  for (const Shape& sh : shapes) {
    const int64_t cols = sh.cols;
    std::vector<HostTensor> ts;
    std::vector<Weight> wg, wc;
    for (int64_t r : sh.rows) {
      ts.push_back(MakeTensor(rng, type, r, cols));
      auto g = gpu->LoadWeight(ts.back().info);
      auto c = cpu->LoadWeight(ts.back().info);
      ASSERT_TRUE(g.ok() && c.ok());
      wg.push_back(*g);
      wc.push_back(*c);
    }
    for (int n : sh.ns) {
      const auto x = RandomVec(rng, size_t(n) * cols);
      std::vector<std::vector<float>> refs;
      for (const Weight& w : wc) refs.push_back(CpuMatMul(cpu.get(), w, x, n));
      Buf xg(gpu.get(), x);
      auto xq = gpu->Alloc(gpu::MatMulMmqScratchBytes(cols, n));
      ASSERT_TRUE(xq.ok());
      gpu::LaunchQuantizeActivation(type, xg.p, int64_t(n) * cols, *xq, gpu->stream());
      // Automatic tile with splits auto / 1..4, then each tile forced.
      std::vector<gpu::GemmConfig> cfgs;
      for (int s = 0; s <= 4; ++s) cfgs.push_back(gpu::GemmConfig{0, 0, 3, s});
      for (int tile : {16, 32, 64, 128}) cfgs.push_back(gpu::GemmConfig{tile, 0, 3, tile == 32 ? 0 : 2});
      cfgs.push_back(gpu::GemmConfig{128, 0, 3, 0});  // one block a SM: its own split plan
      for (const gpu::GemmConfig& cfg : cfgs) {
        gpu::SetGemmConfig(cfg);
        std::vector<std::unique_ptr<Buf>> ys;
        std::vector<gpu::MatVecPart> parts;
        for (size_t i = 0; i < sh.rows.size(); ++i) {
          ASSERT_TRUE(gpu::MatMulMmqTakes(type, wg[i].data, cols, n));
          ys.push_back(std::make_unique<Buf>(gpu.get(), std::vector<float>(size_t(n) * sh.rows[i], std::nanf(""))));
          parts.push_back(gpu::MatVecPart{wg[i].data, ys.back()->p, sh.rows[i]});
        }
        gpu::LaunchMatMulMmqGroup(type, cols, *xq, n, parts.data(), static_cast<int>(parts.size()), gpu->stream());
        const std::string what = std::string(TypeName(type)) + " cols " + std::to_string(cols) + " n " +
                                 std::to_string(n) + " tile " + std::to_string(cfg.token_tile) + " splits " +
                                 std::to_string(cfg.splits);
        ASSERT_TRUE(gpu::LastLaunchError().ok) << what;
        ASSERT_TRUE(gpu->Synchronize().ok()) << what;
        for (size_t i = 0; i < parts.size(); ++i) {
          EXPECT_LE(RelErr(ys[i]->Get(), refs[i]), 2e-5) << "part " << i << " rows " << sh.rows[i] << ", " << what;
        }
      }
      gpu->Free(*xq);
    }
  }
}

// The kernel takes the Q4_K mins through the
// integer slice sums S_j = s_j / d_a (an f16 product on integer operands):
// activations of large magnitude with outliers (s_j far past the f16 range)
// and all-zero 256-groups (d_a = 0) must match the CPU as ordinary inputs do;
// every tile, split 1 and auto.
TEST_P(GpuMmq, LargeOutlierAndZeroActivations) {
  RF_REQUIRE_GPU(gpu);
  const GgmlType type = GetParam();
  if (!gpu::MatMulMmqSupported(type)) GTEST_SKIP() << "no int8 MMQ path on this device";
  auto cpu = MakeCpu();
  ASSERT_NE(cpu, nullptr);
  std::mt19937 rng(std::random_device{}());
  const int64_t rows = 259, cols = 1024;
  const int n = 37;
  HostTensor t = MakeTensor(rng, type, rows, cols);
  auto wg = gpu->LoadWeight(t.info);
  auto wc = cpu->LoadWeight(t.info);
  ASSERT_TRUE(wg.ok() && wc.ok());
  std::vector<float> x = RandomVec(rng, size_t(n) * cols, 3000.0f);
  std::uniform_int_distribution<size_t> pick(0, x.size() - 1);
  for (int i = 0; i < 40; ++i) x[pick(rng)] = (i % 2 != 0 ? 1.0f : -1.0f) * 2.0e5f;  // outliers
  for (int k = 0; k < 256; ++k) {
    x[size_t(3) * cols + 512 + k] = 0.0f;  // token 3, group 2: d_a = 0
    x[size_t(n - 1) * cols + k] = 0.0f;    // the last token, group 0
    x[size_t(10) * cols + 768 + k] = k % 32 < 16 ? 50000.0f : -1.0f;  // |S_j| = 16 x 127
  }
  const std::vector<float> ref = CpuMatMul(cpu.get(), *wc, x, n);
  Buf xg(gpu.get(), x);
  auto xq = gpu->Alloc(gpu::MatMulMmqScratchBytes(cols, n));
  ASSERT_TRUE(xq.ok());
  gpu::LaunchQuantizeActivation(type, xg.p, int64_t(n) * cols, *xq, gpu->stream());
  const GpuConfigGuard restore_settings;
  for (int tile : {16, 32, 64, 128}) {
    for (int splits : {0, 1}) {
      gpu::SetGemmConfig(gpu::GemmConfig{tile, 0, 3, splits});
      Buf y(gpu.get(), std::vector<float>(size_t(n) * rows, std::nanf("")));
      const gpu::MatVecPart part{wg->data, y.p, rows};
      gpu::LaunchMatMulMmqGroup(type, cols, *xq, n, &part, 1, gpu->stream());
      ASSERT_TRUE(gpu::LastLaunchError().ok);
      ASSERT_TRUE(gpu->Synchronize().ok());
      EXPECT_LE(RelErr(y.Get(), ref), 2e-5) << TypeName(type) << " tile " << tile << " splits " << splits;
    }
  }
  gpu->Free(*xq);
}

INSTANTIATE_TEST_SUITE_P(Types, GpuMmq, ::testing::Values(GgmlType::Q4_K, GgmlType::Q6_K),
                         [](const ::testing::TestParamInfo<GgmlType>& i) { return std::string(TypeName(i.param)); });

// A 32- and a 6-sequence decode step (one token each, fresh sequences) of a
// Q4_K_M quantization of the qwen2 reference model (dim 512, ffn 1024: every
// matmul width is whole 256-value spans) through the backend: MMQ (narrow 3)
// against narrow 1 (v5 at 32 tokens, the small-batch kernels at 6) and the CPU
// backend, all logit rows. The steps run as captured decode graphs; then
// graphs against direct launches for 9- to 32-sequence steps.
TEST(GpuMmqBackend, DecodeStepMatchesV5AndCpu) {
  RF_REQUIRE_GPU(gpu);
  if (!gpu::MatMulMmqSupported(GgmlType::Q4_K)) GTEST_SKIP() << "no int8 MMQ path on this device";
  const GpuConfigGuard restore_settings;  // the steps below also go back to its GEMM settings in place
  const char* env = std::getenv("ROCMFORGE_MODELS_DIR");
  const std::string dir = env != nullptr ? env : ROCMFORGE_MODELS_DIR;
  const std::string q4 = (std::filesystem::temp_directory_path() / "tiny-qwen2-mmqtest-q4_k_m.gguf").string();
  ASSERT_TRUE(quant::QuantizeModel(dir + "/tiny-qwen2-bpe-f16.gguf", q4, FileType::MOSTLY_Q4_K_M, 0).ok());
  auto file = gguf::GgufFile::Open(q4);
  ASSERT_TRUE(file.ok()) << file.status();
  constexpr int kSeqs = 32, kBlock = 16;
  auto cpu = MakeCpu();
  ASSERT_NE(cpu, nullptr);
  Backend* backends[2] = {gpu.get(), cpu.get()};
  std::unique_ptr<Model> models[2];
  for (int b = 0; b < 2; ++b) {
    auto m = Model::Load(**file, backends[b], 64);
    ASSERT_TRUE(m.ok()) << m.status();
    models[b] = std::move(*m);
    const ModelConfig& c = models[b]->config();
    ASSERT_TRUE(backends[b]->InitKvCache({c.n_layers, c.n_kv_heads, c.head_dim, kBlock, kSeqs}).ok());
  }
  const int vocab = models[0]->config().n_vocab;
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int32_t> tok(3, vocab - 1);
  // A step of `seqs` fresh sequences (one random token each, at position 0),
  // sequence s in KV block block_of(s).
  auto decode_step = [&](int seqs, auto block_of) {
    StepBatch batch;
    for (int s = 0; s < seqs; ++s) {
      BatchSeq q;
      q.token_start = s;
      q.n_tokens = 1;
      q.kv_len = 1;
      q.block_table = {block_of(s)};
      batch.tokens.push_back(tok(rng));
      batch.positions.push_back(0);
      batch.slots.push_back(q.block_table[0] * kBlock);
      batch.logit_rows.push_back(s);
      batch.seqs.push_back(q);
    }
    return batch;
  };
  // Every logit row of `batch` through backend b's model.
  auto forward = [&](int b, const StepBatch& batch) {
    auto logits = models[b]->Forward(batch);
    EXPECT_TRUE(logits.ok()) << logits.status();
    std::vector<float> out(batch.logit_rows.size() * vocab);
    if (logits.ok()) {
      EXPECT_TRUE(backends[b]->Download(out.data(), *logits, out.size() * sizeof(float)).ok());
    }
    return out;
  };
  // 32 sequences: MMQ against v5; 6 and 3 (small batches MMQ takes from
  // gpu::kMmqMinTokens): MMQ against the small-batch kernels (narrow 1: no MMQ).
  for (const int seqs : {kSeqs, 6, gpu::kMmqMinTokens}) {
    const StepBatch batch = decode_step(seqs, [](int s) { return (s * 5) % kSeqs; });
    auto run = [&](int b) { return forward(b, batch); };
    gpu::GemmConfig cfg;
    cfg.narrow = 3;
    gpu::SetGemmConfig(cfg);
    const auto mmq = run(0);
    cfg.narrow = 1;
    gpu::SetGemmConfig(cfg);
    const auto other = run(0);
    gpu::SetGemmConfig(restore_settings.gemm());
    const auto ref = run(1);
    const double e_mmq = RelErr(mmq, ref), e_other = RelErr(other, ref), e_ab = RelErr(mmq, other);
    std::printf("%d-decode step logits: MMQ vs CPU %.5f, %s vs CPU %.5f, MMQ vs it %.5f\n", seqs, e_mmq,
                seqs > gpu::kSmallBatchMax ? "v5" : "small batch", e_other, e_ab);
    // v5's f16 activations put it ~1e-2 off the int8 CPU path on this model; MMQ
    // (and the small-batch kernels) dot the CPU's integers, so only float order
    // and the f16 KV cache differ.
    EXPECT_LE(e_ab, 0.05) << seqs;
    EXPECT_LE(e_mmq, 0.05) << seqs;
    EXPECT_LE(e_mmq, e_other * 1.5 + 1e-3) << seqs;
  }

  // Batched decode steps run as automatic graphs when the graph limit allows
  // (GpuBackend::SetGraphMaxTokens; off by default past 8 tokens): captured
  // once per step size, replayed after, with the results of direct launches
  // (MMQ's K splits add through atomics, so the last bits may differ: a tight
  // tolerance, not equality). The GEMM settings are part of a graph's key: a
  // step under other settings is captured anew, never replayed from the old
  // graph.
  gpu->SetGraphMaxTokens(32);
  gpu->SetFirstSegmentOps(0);  // one graph a step (the counts below)
  for (const int seqs : {9, 17, 32}) {
    const StepBatch batch = decode_step(seqs, [](int s) { return s; });
    auto run = [&] { return forward(0, batch); };
    gpu->SetAutoGraphs(false);
    const auto direct = run();
    gpu->SetAutoGraphs(true);
    const int captured0 = gpu->graphs_captured(), replayed0 = gpu->graphs_replayed();
    const auto first = run(), second = run();
    EXPECT_EQ(gpu->graphs_captured() - captured0, 1) << seqs;
    EXPECT_EQ(gpu->graphs_replayed() - replayed0, 1) << seqs;
    EXPECT_LE(RelErr(first, direct), 1e-5) << seqs;
    EXPECT_LE(RelErr(second, direct), 1e-5) << seqs;
    gpu::GemmConfig cfg = restore_settings.gemm();
    cfg.narrow = 1;  // v5 instead of MMQ: other kernels, so another graph
    cfg.splits = 1;  // (a setting the steps above did not run under)
    gpu::SetGemmConfig(cfg);
    const int captured1 = gpu->graphs_captured();
    const auto v5 = run();
    gpu::SetGemmConfig(restore_settings.gemm());
    EXPECT_EQ(gpu->graphs_captured() - captured1, 1) << seqs << ": a step under other GEMM settings replayed";
    EXPECT_LE(RelErr(v5, direct), 0.05) << seqs;
  }
  gpu->SetGraphMaxTokens(GpuBackend::kGraphMaxTokens);
  gpu->SetFirstSegmentOps(GpuBackend::kFirstSegmentOps);
  std::filesystem::remove(q4);
}

}  // namespace
}  // namespace rocmforge::gputest
