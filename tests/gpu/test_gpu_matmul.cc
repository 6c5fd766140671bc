// GPU matmul (all paths: small-batch int8 dot, f32 tiled, matrix-core tiled) against
// the CPU backend for every supported weight type, with rows that are not a
// multiple of any tile and batches 1/3/8/17/64.
#include <cmath>
#include <memory>
#include <vector>

#include "kernels/gpu_api.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

struct Case {
  GgmlType type;
  double tol;  // relative error bound vs the CPU reference
};

class GpuMatMul : public ::testing::TestWithParam<Case> {};

TEST_P(GpuMatMul, MatchesCpuAtAwkwardShapes) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  const Case c = GetParam();
  std::mt19937 rng(std::random_device{}());
  struct Shape {
    int64_t rows, cols;
  };
  for (Shape sh : {Shape{67, 256}, Shape{333, 768}, Shape{130, 2816}}) {
    HostTensor t = MakeTensor(rng, c.type, sh.rows, sh.cols);
    auto wg = gpu->LoadWeight(t.info);
    auto wc = cpu->LoadWeight(t.info);
    ASSERT_TRUE(wg.ok()) << wg.status();
    ASSERT_TRUE(wc.ok()) << wc.status();
    for (int n : {1, 3, 8, 17, 64}) {
      const auto x = RandomVec(rng, size_t(n) * sh.cols);
      Buf xg(gpu.get(), x), xc(cpu.get(), x);
      Buf yg(gpu.get(), size_t(n) * sh.rows), yc(cpu.get(), size_t(n) * sh.rows);
      gpu->MatMul(*wg, xg.p, yg.p, n);
      cpu->MatMul(*wc, xc.p, yc.p, n);
      const auto want = yc.Get();
      const double err = RelErr(yg.Get(), want);
      EXPECT_LE(err, c.tol) << TypeName(c.type) << " rows " << sh.rows << " cols " << sh.cols << " n " << n;
      // The other path on the same data must agree too.
      Buf y2(gpu.get(), size_t(n) * sh.rows);
      void* scratch = nullptr;
      ASSERT_TRUE(gpu::Malloc(&scratch, gpu::MatMulScratchBytes(sh.cols, n)).ok);
      if (n <= gpu::kSmallBatchMax) {
        gpu::LaunchMatMulTiled(wg->type, wg->data, sh.rows, sh.cols, xg.p, y2.p, n, gpu->stream());
        Buf y3(gpu.get(), size_t(n) * sh.rows);
        gpu::LaunchMatMulMma(wg->type, wg->data, sh.rows, sh.cols, xg.p, y3.p, n, gpu->stream());
        ASSERT_TRUE(gpu->Synchronize().ok());
        // The CPU reference dots int8-quantized activations, the matrix-core path
        // f16 ones: their difference is the activation quantization error (~0.5-1%
        // for random data), so this path gets twice the bound.
        EXPECT_LE(RelErr(y3.Get(), want), 2 * c.tol) << "matrix-core path, " << TypeName(c.type) << " n " << n;
      } else {
        gpu::LaunchMatMulSmallBatch(wg->type, wg->data, sh.rows, sh.cols, xg.p, y2.p, n, scratch,
                                    gpu->stream());
      }
      ASSERT_TRUE(gpu->Synchronize().ok());
      EXPECT_LE(RelErr(y2.Get(), want), c.tol) << "other path, " << TypeName(c.type) << " n " << n;
      gpu::Free(scratch);
    }
  }
}

// Every batch-1 matvec kernel shape the benchmark sweeps (gpu::MatVecConfig)
// computes the same product.
TEST_P(GpuMatMul, EveryMatVecConfigMatchesCpu) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  const Case c = GetParam();
  std::mt19937 rng(std::random_device{}());
  const gpu::MatVecConfig saved = gpu::GetMatVecConfig();
  for (int64_t cols : {int64_t{256}, int64_t{1792}, int64_t{8448}}) {
    const int64_t rows = 37 + static_cast<int64_t>(rng() % 40);
    HostTensor t = MakeTensor(rng, c.type, rows, cols);
    auto wg = gpu->LoadWeight(t.info);
    auto wc = cpu->LoadWeight(t.info);
    ASSERT_TRUE(wg.ok()) << wg.status();
    ASSERT_TRUE(wc.ok()) << wc.status();
    const auto x = RandomVec(rng, size_t(cols));
    Buf xg(gpu.get(), x), xc(cpu.get(), x);
    Buf yc(cpu.get(), size_t(rows));
    cpu->MatMul(*wc, xc.p, yc.p, 1);
    const auto want = yc.Get();
    void* scratch = nullptr;
    ASSERT_TRUE(gpu::Malloc(&scratch, gpu::MatMulScratchBytes(cols, 1)).ok);
    for (int tpr : {0, 32, 64, 128}) {  // 0: auto (32 at cols 8448 for Q4_K/Q5_K/Q4_0)
      for (bool pairs : {false, true}) {
        gpu::SetMatVecConfig({tpr, pairs});
        Buf yg(gpu.get(), std::vector<float>(size_t(rows), std::nanf("")));
        gpu::LaunchMatMulSmallBatch(wg->type, wg->data, rows, cols, xg.p, yg.p, 1, scratch, gpu->stream());
        ASSERT_TRUE(gpu->Synchronize().ok());
        EXPECT_LE(RelErr(yg.Get(), want), c.tol)
            << TypeName(c.type) << " rows " << rows << " cols " << cols << " threads/row " << tpr
            << " pairs " << pairs;
      }
    }
    gpu::Free(scratch);
  }
  gpu::SetMatVecConfig(saved);
}

// Batch-1 matmuls on one input are launched as groups of up to three
// (GpuBackend's MatVecGroup): a fourth weight, a weight of another type and a
// new input each start a new group; every output must still match the CPU.
TEST(GpuMatMulGroup, SharedInputMatVecsMatchCpu) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  std::mt19937 rng(std::random_device{}());
  const int64_t cols = 512;
  struct W {
    GgmlType type;
    int64_t rows;
  };
  const std::vector<W> ws = {{GgmlType::Q4_K, 96}, {GgmlType::Q4_K, 33}, {GgmlType::Q4_K, 35},
                             {GgmlType::Q4_K, 70}, {GgmlType::Q6_K, 41}, {GgmlType::Q4_K, 29},
                             {GgmlType::Q8_0, 64}, {GgmlType::Q8_0, 17}};
  std::vector<HostTensor> ts;
  std::vector<Weight> wg, wc;
  for (const W& w : ws) {
    ts.push_back(MakeTensor(rng, w.type, w.rows, cols));
    auto g = gpu->LoadWeight(ts.back().info);
    auto c = cpu->LoadWeight(ts.back().info);
    ASSERT_TRUE(g.ok() && c.ok());
    wg.push_back(*g);
    wc.push_back(*c);
  }
  const auto x = RandomVec(rng, cols), x2 = RandomVec(rng, cols);
  Buf xg(gpu.get(), x), xc(cpu.get(), x), x2g(gpu.get(), x2), x2c(cpu.get(), x2);
  std::vector<std::unique_ptr<Buf>> yg, yc;
  for (size_t i = 0; i < ws.size(); ++i) {
    yg.push_back(std::make_unique<Buf>(gpu.get(), std::vector<float>(ws[i].rows, std::nanf(""))));
    yc.push_back(std::make_unique<Buf>(cpu.get(), size_t(ws[i].rows)));
  }
  for (size_t i = 0; i < ws.size(); ++i) {
    const bool second_input = i == 5;  // a new input between two Q4_K weights
    gpu->MatMul(wg[i], second_input ? x2g.p : xg.p, yg[i]->p, 1);
    cpu->MatMul(wc[i], second_input ? x2c.p : xc.p, yc[i]->p, 1);
  }
  for (size_t i = 0; i < ws.size(); ++i) {
    EXPECT_LE(RelErr(yg[i]->Get(), yc[i]->Get()), 1e-2) << "weight " << i << " " << TypeName(ws[i].type);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Types, GpuMatMul,
    ::testing::Values(Case{GgmlType::F32, 1e-5}, Case{GgmlType::F16, 3e-3}, Case{GgmlType::Q8_0, 1e-2},
                      Case{GgmlType::Q4_0, 1e-2}, Case{GgmlType::Q4_K, 1e-2},
                      Case{GgmlType::Q5_K, 1e-2}, Case{GgmlType::Q6_K, 1e-2}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(TypeName(i.param.type)); });

}  // namespace
}  // namespace rocmforge::gputest
