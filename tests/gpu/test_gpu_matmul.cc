// GPU matmul (all paths: small-batch int8 dot, f32 tiled, matrix-core GEMM) against
// the CPU backend (and, for the GEMM, a double-precision reference) for every
// supported weight type, with rows that are not a multiple of any tile, batches
// 1..1000 and poisoned (NaN) outputs.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "kernels/gpu_api.h"
#include "tests/gpu/gpu_config_guard.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

class GpuMatMul : public ::testing::TestWithParam<TypeCase> {};

// y[n][rows] = x . W^T in double precision from the dequantized weights: an
// independent reference for the matrix-core GEMM.
std::vector<float> ReferenceGemm(const HostTensor& t, int64_t rows, int64_t cols,
                                 const std::vector<float>& x, int n) {
  std::vector<float> w(size_t(rows) * cols);
  const size_t row_bytes = RowBytes(t.info.type, cols);
  for (int64_t r = 0; r < rows; ++r) {
    quant::DequantizeRow(t.info.type, t.bytes.data() + r * row_bytes, w.data() + r * cols, cols);
  }
  return DoubleGemm(w, rows, cols, x, n);
}

TEST_P(GpuMatMul, MatchesCpuAtAwkwardShapes) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  const TypeCase c = GetParam();
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
      Buf xg(gpu.get(), x);
      Buf yg(gpu.get(), std::vector<float>(size_t(n) * sh.rows, std::nanf("")));
      gpu->MatMul(*wg, xg.p, yg.p, n);
      const auto want = CpuMatMul(cpu.get(), *wc, x, n);
      const double err = RelErr(yg.Get(), want);
      EXPECT_LE(err, c.tol) << TypeName(c.type) << " rows " << sh.rows << " cols " << sh.cols << " n " << n;
      // The other path on the same data must agree too.
      Buf y2(gpu.get(), std::vector<float>(size_t(n) * sh.rows, std::nanf("")));
      void* scratch = nullptr;
      ASSERT_TRUE(gpu::Malloc(&scratch, gpu::MatMulScratchBytes(sh.cols, n)).ok);
      if (n <= gpu::kSmallBatchMax) {
        // The float32 tiled path dots the activations unquantized: compare it with
        // the double-precision product (the CPU's int8 activations differ by ~1%).
        gpu::LaunchMatMulTiled(wg->type, wg->data, sh.rows, sh.cols, xg.p, y2.p, n, gpu->stream());
        ASSERT_TRUE(gpu->Synchronize().ok());
        EXPECT_LE(RelErr(y2.Get(), ReferenceGemm(t, sh.rows, sh.cols, x, n)), 1e-4)
            << "f32 tiled path, " << TypeName(c.type) << " n " << n;
      } else {
        gpu::LaunchMatMulSmallBatch(wg->type, wg->data, sh.rows, sh.cols, xg.p, y2.p, n, scratch,
                                    gpu->stream());
        ASSERT_TRUE(gpu->Synchronize().ok());
        EXPECT_LE(RelErr(y2.Get(), want), c.tol) << "small-batch path, " << TypeName(c.type) << " n " << n;
      }
      gpu::Free(scratch);
    }
  }
}

// The matrix-core GEMM (LaunchMatMulMma, and LaunchMatMul for n > 8) at every
// tile choice (n <= 32, <= 64, more), with and without split-K, rows that are
// not a multiple of the 128-row tile and, for 32-value blocks, K not a
// multiple of the 64-wide step: against a double-precision reference on the
// dequantized weights (f16 operands: ~1e-3) and against the CPU backend
// (whose int8 activations differ by ~0.5%). Outputs start as NaN.
TEST_P(GpuMatMul, MatrixCoreGemmMatchesReferences) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  const TypeCase c = GetParam();
  if (c.type == GgmlType::F32) GTEST_SKIP() << "F32 weights take the float tiled path (tested above)";
  std::mt19937 rng(std::random_device{}());
  const bool k_quant = GetTypeInfo(c.type)->block_size == 256;
  struct Shape {
    int64_t rows, cols;
    bool large_n;  // also n = 512 and 1000
  };
  const std::vector<Shape> shapes =
      k_quant ? std::vector<Shape>{{67, 256, true}, {333, 768, false}, {130, 2816, false}}
              : std::vector<Shape>{{67, 224, true}, {333, 800, false}, {130, 2848, false}};
  for (const Shape& sh : shapes) {
    HostTensor t = MakeTensor(rng, c.type, sh.rows, sh.cols);
    auto wg = gpu->LoadWeight(t.info);
    auto wc = cpu->LoadWeight(t.info);
    ASSERT_TRUE(wg.ok()) << wg.status();
    ASSERT_TRUE(wc.ok()) << wc.status();
    std::vector<int> ns = {9, 16, 17, 33, 64, 65, 127};
    if (sh.large_n) ns.insert(ns.end(), {512, 1000});
    for (int n : ns) {
      const auto x = RandomVec(rng, size_t(n) * sh.cols);
      const auto ref = ReferenceGemm(t, sh.rows, sh.cols, x, n);
      Buf xg(gpu.get(), x);
      const auto cpu_y = CpuMatMul(cpu.get(), *wc, x, n);
      const std::vector<float> poison(size_t(n) * sh.rows, std::nanf(""));
      Buf y1(gpu.get(), poison), y2(gpu.get(), poison);
      gpu::LaunchMatMulMma(wg->type, wg->data, sh.rows, sh.cols, xg.p, y1.p, n, gpu->stream());
      gpu::LaunchMatMul(wg->type, wg->data, sh.rows, sh.cols, xg.p, y2.p, n, nullptr, gpu->stream());
      ASSERT_TRUE(gpu::LastLaunchError().ok);
      ASSERT_TRUE(gpu->Synchronize().ok());
      const auto got = y1.Get();
      const std::string what = std::string(TypeName(c.type)) + " rows " + std::to_string(sh.rows) +
                               " cols " + std::to_string(sh.cols) + " n " + std::to_string(n);
      EXPECT_LE(RelErr(got, ref), 3e-3) << "vs double reference, " << what;
      EXPECT_LE(RelErr(got, cpu_y), 1e-2) << "vs CPU backend, " << what;
      EXPECT_LE(RelErr(y2.Get(), ref), 3e-3) << "LaunchMatMul, " << what;
      // Every tile the benchmark sweep can force, and a deep K split.
      const GpuConfigGuard restore_settings;
      for (gpu::GemmConfig cfg : {gpu::GemmConfig{32, 0}, gpu::GemmConfig{64, 0}, gpu::GemmConfig{128, 0},
                                  gpu::GemmConfig{129, 0}, gpu::GemmConfig{0, 8}}) {
        gpu::SetGemmConfig(cfg);
        Buf y3(gpu.get(), poison);
        gpu::LaunchMatMulMma(wg->type, wg->data, sh.rows, sh.cols, xg.p, y3.p, n, gpu->stream());
        ASSERT_TRUE(gpu::LastLaunchError().ok);
        ASSERT_TRUE(gpu->Synchronize().ok());
        EXPECT_LE(RelErr(y3.Get(), ref), 3e-3)
            << "tile " << cfg.token_tile << " blocks/SM " << cfg.blocks_per_sm << ", " << what;
      }
    }
  }
}

// The batched-decode path (GemmConfig::narrow: whole 256-value weight spans
// staged in shared memory; v5 decodes them straight into A registers, v4 =
// narrow 2 through an f16 tile) for every type, at n on both sides of its 16 /
// 32 / 64 / 128-token tiles, rows that are not a multiple of the 128-row tile
// (for Q6_K also spans at every 2-byte offset and a matrix end inside a 16-byte
// chunk): automatic choice, forced with the 16-, 64- and 128-token tiles, with
// a deep K split, v4, and forced off, all against the double reference (and the
// automatic choice against the CPU backend too). Types it does not take run the
// older kernel. Outputs start as NaN; inputs are fresh random values.
TEST_P(GpuMatMul, NarrowGemmMatchesReferences) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  const TypeCase c = GetParam();
  if (c.type == GgmlType::F32) GTEST_SKIP() << "F32 weights take the float tiled path (tested above)";
  std::mt19937 rng(std::random_device{}());
  const bool narrow_type = c.type == GgmlType::Q4_K || c.type == GgmlType::Q6_K || c.type == GgmlType::Q8_0;
  const bool cuda = std::string(gpu::RuntimeName()) == "cuda";
  struct Shape {
    int64_t rows, cols;
  };
  const GpuConfigGuard restore_settings;
  for (Shape sh : {Shape{67, 256}, Shape{333, 768}, Shape{130, 2048}}) {
    HostTensor t = MakeTensor(rng, c.type, sh.rows, sh.cols);
    auto wg = gpu->LoadWeight(t.info);
    auto wc = cpu->LoadWeight(t.info);
    ASSERT_TRUE(wg.ok()) << wg.status();
    ASSERT_TRUE(wc.ok()) << wc.status();
    for (int n : {9, 16, 17, 31, 32, 33, 64, 65, 96, 127, 128}) {
      const std::string what = std::string(TypeName(c.type)) + " rows " + std::to_string(sh.rows) +
                               " cols " + std::to_string(sh.cols) + " n " + std::to_string(n);
      // On NVIDIA every tile of the three types fits: the path must really run
      // when forced (the automatic choice may leave some n to the older kernel).
      gpu::SetGemmConfig(gpu::GemmConfig{0, 0, 1});
      if (cuda) {
        EXPECT_EQ(gpu::MatMulMmaNarrowTakes(wg->type, wg->data, sh.cols, n), narrow_type) << what;
      }
      gpu::SetGemmConfig(gpu::GemmConfig{});
      if (cuda && n <= 32) {
        EXPECT_EQ(gpu::MatMulMmaNarrowTakes(wg->type, wg->data, sh.cols, n), narrow_type) << "auto, " << what;
      }
      const auto x = RandomVec(rng, size_t(n) * sh.cols);
      const auto ref = ReferenceGemm(t, sh.rows, sh.cols, x, n);
      Buf xg(gpu.get(), x);
      const auto cpu_y = CpuMatMul(cpu.get(), *wc, x, n);
      const std::vector<float> poison(size_t(n) * sh.rows, std::nanf(""));
      // (The automatic choice covers the 32-token tile and, on the short shapes,
      // unsplit K; 16 and 64 are forced at every n, with a deep split.)
      for (gpu::GemmConfig cfg : {gpu::GemmConfig{0, 0, 0}, gpu::GemmConfig{16, 0, 1}, gpu::GemmConfig{64, 0, 1},
                                  gpu::GemmConfig{128, 0, 1}, gpu::GemmConfig{0, 8, 1}, gpu::GemmConfig{0, 0, 2},
                                  gpu::GemmConfig{0, 0, -1}}) {
        gpu::SetGemmConfig(cfg);
        Buf y(gpu.get(), poison);
        gpu::LaunchMatMulMma(wg->type, wg->data, sh.rows, sh.cols, xg.p, y.p, n, gpu->stream());
        ASSERT_TRUE(gpu::LastLaunchError().ok);
        ASSERT_TRUE(gpu->Synchronize().ok());
        const auto got = y.Get();
        const std::string how = "tile " + std::to_string(cfg.token_tile) + " blocks/SM " +
                                std::to_string(cfg.blocks_per_sm) + " narrow " + std::to_string(cfg.narrow) +
                                ", " + what;
        EXPECT_LE(RelErr(got, ref), 3e-3) << "vs double reference, " << how;
        if (cfg.narrow == 0) {
          EXPECT_LE(RelErr(got, cpu_y), 1e-2) << "vs CPU backend, " << how;
        }
      }
    }
  }
}

// Every batch-1 matvec kernel shape the benchmark sweeps (gpu::MatVecConfig)
// computes the same product.
TEST_P(GpuMatMul, EveryMatVecConfigMatchesCpu) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  const TypeCase c = GetParam();
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  for (int64_t cols : {int64_t{256}, int64_t{1792}, int64_t{8448}}) {
    const int64_t rows = 37 + static_cast<int64_t>(rng() % 40);
    HostTensor t = MakeTensor(rng, c.type, rows, cols);
    auto wg = gpu->LoadWeight(t.info);
    auto wc = cpu->LoadWeight(t.info);
    ASSERT_TRUE(wg.ok()) << wg.status();
    ASSERT_TRUE(wc.ok()) << wc.status();
    const auto x = RandomVec(rng, size_t(cols));
    Buf xg(gpu.get(), x);
    const auto want = CpuMatMul(cpu.get(), *wc, x, 1);
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
                             {GgmlType::Q8_0, 64}, {GgmlType::Q8_0, 17}, {GgmlType::Q3_K, 66},
                             {GgmlType::Q3_K, 19}, {GgmlType::Q2_K, 45}};
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
    ::testing::Values(TypeCase{GgmlType::F32, 1e-5}, TypeCase{GgmlType::F16, 3e-3},
                      TypeCase{GgmlType::BF16, 3e-3}, TypeCase{GgmlType::Q8_0, 1e-2},
                      TypeCase{GgmlType::Q4_0, 1e-2}, TypeCase{GgmlType::Q4_K, 1e-2},
                      TypeCase{GgmlType::Q5_K, 1e-2}, TypeCase{GgmlType::Q6_K, 1e-2},
                      TypeCase{GgmlType::Q2_K, 1e-2}, TypeCase{GgmlType::Q3_K, 1e-2}),
    TypeCaseName);

}  // namespace
}  // namespace rocmforge::gputest
