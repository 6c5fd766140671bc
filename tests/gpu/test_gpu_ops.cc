// Row and elementwise ops of the GPU backend against the CPU backend on fresh
// random inputs of awkward sizes: embedding (every weight type), RMSNorm (+
// fused residual add), RoPE in both orders at positions up to 5000, bias add,
// SwiGLU, add and row gather.
#include <numeric>

#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

// A step of `n` tokens of one sequence at positions start..start+n-1.
StepBatch OneSeqBatch(int n, int start, int block_size, std::vector<int32_t> tokens = {}) {
  StepBatch b;
  BatchSeq s;
  s.token_start = 0;
  s.n_tokens = n;
  s.kv_len = start + n;
  for (int i = 0; i < (start + n + block_size - 1) / block_size; ++i) s.block_table.push_back(i);
  for (int i = 0; i < n; ++i) {
    b.tokens.push_back(tokens.empty() ? 0 : tokens[i]);
    b.positions.push_back(start + i);
    b.slots.push_back(start + i);
  }
  b.logit_rows.push_back(n - 1);
  b.seqs.push_back(s);
  return b;
}

void InitBoth(Backend* a, Backend* b, int blocks) {
  KvCacheShape shape{1, 1, 64, 16, blocks};
  ASSERT_TRUE(a->InitKvCache(shape).ok());
  ASSERT_TRUE(b->InitKvCache(shape).ok());
}

TEST(GpuOps, EmbedEveryType) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  std::mt19937 rng(std::random_device{}());
  InitBoth(gpu.get(), cpu.get(), 8);
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0,
                        GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const int64_t vocab = 37, cols = 512;
    HostTensor t = MakeTensor(rng, type, vocab, cols);
    auto wg = gpu->LoadWeight(t.info);
    auto wc = cpu->LoadWeight(t.info);
    ASSERT_TRUE(wg.ok()) << wg.status();
    ASSERT_TRUE(wc.ok()) << wc.status();
    std::vector<int32_t> ids;
    for (int i = 0; i < 19; ++i) ids.push_back(static_cast<int32_t>(rng() % vocab));
    StepBatch b = OneSeqBatch(19, 0, 16, ids);
    ASSERT_TRUE(gpu->BeginStep(b).ok());
    ASSERT_TRUE(cpu->BeginStep(b).ok());
    Buf og(gpu.get(), 19 * cols), oc(cpu.get(), 19 * cols);
    gpu->Embed(*wg, og.p);
    cpu->Embed(*wc, oc.p);
    EXPECT_LE(RelErr(og.Get(), oc.Get()), 1e-6) << TypeName(type);
  }
}

TEST(GpuOps, RmsNormAndFusedResidual) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  std::mt19937 rng(std::random_device{}());
  for (int dim : {256, 333, 4096}) {
    for (int n : {1, 3, 17}) {
      HostTensor w = MakeTensor(rng, GgmlType::F32, 1, dim);
      auto wg = gpu->LoadWeight(w.info);
      auto wc = cpu->LoadWeight(w.info);
      ASSERT_TRUE(wg.ok() && wc.ok());
      const auto x = RandomVec(rng, size_t(n) * dim, 2.0f);
      const auto r = RandomVec(rng, size_t(n) * dim, 1.0f);
      Buf xg(gpu.get(), x), xc(cpu.get(), x), og(gpu.get(), x.size()), oc(cpu.get(), x.size());
      gpu->RmsNorm(xg.p, *wg, og.p, n, dim, 1e-5f);
      cpu->RmsNorm(xc.p, *wc, oc.p, n, dim, 1e-5f);
      EXPECT_LE(RelErr(og.Get(), oc.Get()), 1e-5) << "dim " << dim << " n " << n;
      Buf rg(gpu.get(), r), rc(cpu.get(), r);
      gpu->AddRmsNorm(xg.p, rg.p, *wg, og.p, n, dim, 1e-6f);
      cpu->AddRmsNorm(xc.p, rc.p, *wc, oc.p, n, dim, 1e-6f);
      EXPECT_LE(RelErr(og.Get(), oc.Get()), 1e-5) << "fused, dim " << dim << " n " << n;
      EXPECT_LE(RelErr(xg.Get(), xc.Get()), 1e-6) << "residual sum, dim " << dim;
    }
  }
}

TEST(GpuOps, RopeBothOrdersLongPositions) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  std::mt19937 rng(std::random_device{}());
  InitBoth(gpu.get(), cpu.get(), 400);
  for (RopeStyle style : {RopeStyle::kNorm, RopeStyle::kNeox}) {
    for (int head_dim : {64, 128}) {
      for (int start : {0, 2047, 4090}) {
        const int n = 7, heads = 3, rot = head_dim == 128 ? 96 : 64;
        StepBatch b = OneSeqBatch(n, start, 16);
        ASSERT_TRUE(gpu->BeginStep(b).ok());
        ASSERT_TRUE(cpu->BeginStep(b).ok());
        const auto x = RandomVec(rng, size_t(n) * heads * head_dim);
        Buf xg(gpu.get(), x), xc(cpu.get(), x);
        const float base = style == RopeStyle::kNeox ? 1e6f : 1e4f;
        gpu->Rope(xg.p, n, heads, head_dim, rot, base, style);
        cpu->Rope(xc.p, n, heads, head_dim, rot, base, style);
        EXPECT_LE(RelErr(xg.Get(), xc.Get()), 1e-4)
            << (style == RopeStyle::kNeox ? "neox" : "norm") << " hd " << head_dim << " pos " << start;
      }
    }
  }
}

TEST(GpuOps, BiasSwiGluAddGather) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  std::mt19937 rng(std::random_device{}());
  InitBoth(gpu.get(), cpu.get(), 8);
  const int n = 17, cols = 1000;
  HostTensor bias = MakeTensor(rng, GgmlType::F32, 1, cols);
  auto bg = gpu->LoadWeight(bias.info);
  auto bc = cpu->LoadWeight(bias.info);
  ASSERT_TRUE(bg.ok() && bc.ok());
  const auto y = RandomVec(rng, size_t(n) * cols, 3.0f), z = RandomVec(rng, size_t(n) * cols);
  Buf yg(gpu.get(), y), yc(cpu.get(), y), zg(gpu.get(), z), zc(cpu.get(), z);
  gpu->AddBias(yg.p, *bg, n);
  cpu->AddBias(yc.p, *bc, n);
  EXPECT_LE(RelErr(yg.Get(), yc.Get()), 1e-6);
  Buf sg(gpu.get(), y.size()), sc(cpu.get(), y.size());
  gpu->SwiGLU(yg.p, zg.p, sg.p, int64_t(n) * cols);
  cpu->SwiGLU(yc.p, zc.p, sc.p, int64_t(n) * cols);
  EXPECT_LE(RelErr(sg.Get(), sc.Get()), 1e-5);
  gpu->Add(yg.p, zg.p, int64_t(n) * cols - 3);  // odd length
  cpu->Add(yc.p, zc.p, int64_t(n) * cols - 3);
  EXPECT_LE(RelErr(yg.Get(), yc.Get()), 1e-6);
  StepBatch b = OneSeqBatch(n, 0, 16);
  b.logit_rows = {16, 3, 0, 9};
  ASSERT_TRUE(gpu->BeginStep(b).ok());
  ASSERT_TRUE(cpu->BeginStep(b).ok());
  Buf gg(gpu.get(), 4 * cols), gc(cpu.get(), 4 * cols);
  gpu->GatherRows(yg.p, gg.p, cols);
  cpu->GatherRows(yc.p, gc.p, cols);
  EXPECT_EQ(gg.Get(), gc.Get());
}

// A captured graph replays the same ops on whatever the fixed buffers hold.
TEST(GpuOps, GraphCaptureReplaysOps) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  std::mt19937 rng(std::random_device{}());
  const int dim = 512, rows = 300, n = 1;
  HostTensor w = MakeTensor(rng, GgmlType::Q4_K, rows, dim);
  HostTensor nw = MakeTensor(rng, GgmlType::F32, 1, dim);
  auto wg = gpu->LoadWeight(w.info);
  auto wc = cpu->LoadWeight(w.info);
  auto ng = gpu->LoadWeight(nw.info);
  auto nc = cpu->LoadWeight(nw.info);
  ASSERT_TRUE(wg.ok() && wc.ok() && ng.ok() && nc.ok());
  Buf xg(gpu.get(), size_t(dim)), hg(gpu.get(), size_t(dim)), yg(gpu.get(), size_t(rows));
  ASSERT_TRUE(gpu->BeginGraphCapture().ok());
  gpu->RmsNorm(xg.p, *ng, hg.p, n, dim, 1e-5f);
  gpu->MatMul(*wg, hg.p, yg.p, n);
  ASSERT_TRUE(gpu->EndGraphCapture().ok());
  for (int rep = 0; rep < 3; ++rep) {
    const auto x = RandomVec(rng, dim);
    ASSERT_TRUE(gpu->Upload(xg.p, x.data(), dim * sizeof(float)).ok());
    ASSERT_TRUE(gpu->ReplayGraph().ok());
    Buf xc(cpu.get(), x), hc(cpu.get(), size_t(dim)), yc(cpu.get(), size_t(rows));
    cpu->RmsNorm(xc.p, *nc, hc.p, n, dim, 1e-5f);
    cpu->MatMul(*wc, hc.p, yc.p, n);
    EXPECT_LE(RelErr(yg.Get(), yc.Get()), 1e-2) << "replay " << rep;
  }
}

TEST(GpuOps, BadStepBatchIsAnErrorNotACrash) {
  RF_REQUIRE_GPU(gpu);
  KvCacheShape shape{1, 1, 64, 16, 4};
  ASSERT_TRUE(gpu->InitKvCache(shape).ok());
  StepBatch b = OneSeqBatch(3, 0, 16);
  b.seqs[0].block_table = {99};
  EXPECT_FALSE(gpu->BeginStep(b).ok());
  b = OneSeqBatch(3, 0, 16);
  b.slots[1] = 7;
  EXPECT_FALSE(gpu->BeginStep(b).ok());
  b = OneSeqBatch(3, 0, 16);
  b.logit_rows = {5};
  EXPECT_FALSE(gpu->BeginStep(b).ok());
}

}  // namespace
}  // namespace rocmforge::gputest
