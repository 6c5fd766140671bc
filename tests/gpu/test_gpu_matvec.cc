// Batch-1 matvec kernel shapes of v7 (gpu::MatVecConfig: loads_per_thread for
// the float types, q4_0_runs for Q4_0, threads_per_row -2 = the v6 automatic
// shapes) against the CPU backend and against the default shape, at rows that
// are not a multiple of any block's rows and cols 256 / 4096 / 14336 + 256 (and,
// for Q4_0, cols that are not a multiple of 256 and misaligned weights, where
// the runs kernel must step aside). Outputs start as NaN; inputs are fresh
// random values each run. Batches 2, 5 and 8 under the default and two forced
// v7 shapes must stay correct too (the v7 kernels are batch-1 only).
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/gpu_api.h"
#include "tests/gpu/gpu_config_guard.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

class GpuMatVec : public ::testing::TestWithParam<TypeCase> {};

// Every shape the benchmark can select, for one weight.
std::vector<gpu::MatVecConfig> AllShapes(GgmlType type) {
  std::vector<gpu::MatVecConfig> out;
  const bool is_float = type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16;
  for (int tpr : {0, -2, -1, 32, 64, 128, 256}) {
    for (int rpt : {0, 1, 2, 4}) {
      if (tpr < 0 && rpt != 0) continue;
      for (int extra : {0, 1, 2, 4, -1}) {
        gpu::MatVecConfig c;
        c.threads_per_row = tpr;
        c.rows_per_thread = rpt;
        if (is_float) {
          if (extra < 0) continue;
          c.loads_per_thread = extra;
        } else if (type == GgmlType::Q4_0) {
          if (extra > 1) continue;
          c.q4_0_runs = extra;
        } else if (extra != 0) {
          continue;
        }
        out.push_back(c);
      }
    }
  }
  return out;
}

std::string Describe(const gpu::MatVecConfig& c) {
  return "threads/row " + std::to_string(c.threads_per_row) + " rows/thread " +
         std::to_string(c.rows_per_thread) + " loads " + std::to_string(c.loads_per_thread) +
         " q4_0 runs " + std::to_string(c.q4_0_runs);
}

TEST_P(GpuMatVec, EveryShapeMatchesCpuAndDefault) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  const TypeCase c = GetParam();
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  std::vector<int64_t> cols_list = {256, 4096, 14336 + 256};
  if (GetTypeInfo(c.type)->block_size == 32) cols_list.push_back(800);  // Q4_0 / Q8_0: not % 256
  for (int64_t cols : cols_list) {
    const int64_t rows = 37 + static_cast<int64_t>(rng() % 300);
    HostTensor t = MakeTensor(rng, c.type, rows, cols);
    auto wg = gpu->LoadWeight(t.info);
    auto wc = cpu->LoadWeight(t.info);
    ASSERT_TRUE(wg.ok()) << wg.status();
    ASSERT_TRUE(wc.ok()) << wc.status();
    const int n_max = 8;
    const auto x = RandomVec(rng, size_t(n_max) * cols);
    Buf xg(gpu.get(), x);
    void* scratch = nullptr;
    ASSERT_TRUE(gpu::Malloc(&scratch, gpu::MatMulScratchBytes(cols, n_max)).ok);
    const std::vector<float> want1 = CpuMatMul(cpu.get(), *wc, std::vector<float>(x.begin(), x.begin() + cols), 1);
    auto run = [&](int n) {
      Buf yg(gpu.get(), std::vector<float>(size_t(n) * rows, std::nanf("")));
      gpu::LaunchMatMulSmallBatch(wg->type, wg->data, rows, cols, xg.p, yg.p, n, scratch, gpu->stream());
      EXPECT_TRUE(gpu::LastLaunchError().ok);
      EXPECT_TRUE(gpu->Synchronize().ok());
      return yg.Get();
    };
    gpu::SetMatVecConfig(gpu::MatVecConfig{});
    const std::vector<float> def = run(1);
    const std::string what = std::string(TypeName(c.type)) + " rows " + std::to_string(rows) + " cols " +
                             std::to_string(cols);
    EXPECT_LE(RelErr(def, want1), c.tol) << "default shape, " << what;
    for (const gpu::MatVecConfig& cfg : AllShapes(c.type)) {
      gpu::SetMatVecConfig(cfg);
      const std::vector<float> got = run(1);
      EXPECT_LE(RelErr(got, want1), c.tol) << Describe(cfg) << ", " << what;
      // Same product as the default shape: only the summation order differs.
      EXPECT_LE(RelErr(got, def), c.tol) << "vs default, " << Describe(cfg) << ", " << what;
    }
    // Batches 2..8 under a few shapes (the v7 kernels must not be taken there).
    for (int n : {2, 5, 8}) {
      const std::vector<float> want = CpuMatMul(cpu.get(), *wc, std::vector<float>(x.begin(), x.begin() + n * cols), n);
      for (gpu::MatVecConfig cfg : {gpu::MatVecConfig{}, gpu::MatVecConfig{128, true, 2, -1, 4, 1},
                                    gpu::MatVecConfig{32, true, 1, -1, 2, 1}}) {
        gpu::SetMatVecConfig(cfg);
        EXPECT_LE(RelErr(run(n), want), c.tol) << "n " << n << ", " << Describe(cfg) << ", " << what;
      }
    }
    gpu::Free(scratch);
  }
}

INSTANTIATE_TEST_SUITE_P(Types, GpuMatVec,
                         ::testing::Values(TypeCase{GgmlType::F32, 1e-5}, TypeCase{GgmlType::F16, 3e-3},
                                           TypeCase{GgmlType::BF16, 3e-3}, TypeCase{GgmlType::Q4_0, 1e-2},
                                           TypeCase{GgmlType::Q8_0, 1e-2}, TypeCase{GgmlType::Q4_K, 1e-2},
                                           TypeCase{GgmlType::Q6_K, 1e-2}),
                         TypeCaseName);

// Q4_0 runs kernel in a group launch (Q+K+V-like parts of odd sizes), with
// the weights 16-byte aligned (runs taken) and 2 bytes off (slice kernel):
// every part must match the CPU, and the runs result must equal the slice
// kernel's within tolerance.
TEST(GpuMatVecGroup, Q4_0RunsGroupAndMisalignedFallback) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  for (int64_t cols : {int64_t{4096}, int64_t{14336 + 256}}) {
    const std::vector<int64_t> part_rows = {67 + static_cast<int64_t>(rng() % 64), 17, 33};
    const size_t row_bytes = RowBytes(GgmlType::Q4_0, cols);
    std::vector<HostTensor> ts;
    std::vector<std::vector<float>> want;
    const auto x = RandomVec(rng, size_t(cols));
    Buf xg(gpu.get(), x);
    void* xq = nullptr;
    ASSERT_TRUE(gpu::Malloc(&xq, gpu::MatMulScratchBytes(cols, 1)).ok);
    gpu::LaunchQuantizeActivation(GgmlType::Q4_0, xg.p, cols, xq, gpu->stream());
    std::vector<void*> dev;  // per part: an allocation holding the weight at offset 0 and at offset 2
    for (int64_t r : part_rows) {
      ts.push_back(MakeTensor(rng, GgmlType::Q4_0, r, cols));
      auto wc = cpu->LoadWeight(ts.back().info);
      ASSERT_TRUE(wc.ok()) << wc.status();
      want.push_back(CpuMatMul(cpu.get(), *wc, x, 1));
      void* p = nullptr;
      ASSERT_TRUE(gpu::Malloc(&p, row_bytes * r * 2 + 64).ok);
      ASSERT_TRUE(gpu::CopyToDevice(p, ts.back().bytes.data(), row_bytes * r, gpu->stream()).ok);
      ASSERT_TRUE(gpu::CopyToDevice(static_cast<uint8_t*>(p) + row_bytes * r + 34, ts.back().bytes.data(),
                                    row_bytes * r, gpu->stream()).ok);
      dev.push_back(p);
    }
    std::vector<std::vector<float>> first;
    for (int variant = 0; variant < 4; ++variant) {
      const bool runs = variant % 2 == 0, misaligned = variant >= 2;
      gpu::MatVecConfig cfg;
      cfg.q4_0_runs = runs ? 1 : -1;
      gpu::SetMatVecConfig(cfg);
      std::vector<std::unique_ptr<Buf>> ys;
      gpu::MatVecPart ps[gpu::kMaxMatVecParts];
      for (size_t i = 0; i < part_rows.size(); ++i) {
        ys.push_back(std::make_unique<Buf>(gpu.get(), std::vector<float>(part_rows[i], std::nanf(""))));
        const uint8_t* w = static_cast<const uint8_t*>(dev[i]) + (misaligned ? row_bytes * part_rows[i] + 34 : 0);
        ps[i] = gpu::MatVecPart{w, ys.back()->p, part_rows[i]};
      }
      gpu::LaunchMatVecQuantizedGroup(GgmlType::Q4_0, cols, xq, ps, 3, gpu->stream());
      ASSERT_TRUE(gpu::LastLaunchError().ok);
      ASSERT_TRUE(gpu->Synchronize().ok());
      for (size_t i = 0; i < part_rows.size(); ++i) {
        const auto got = ys[i]->Get();
        EXPECT_LE(RelErr(got, want[i]), 1e-2) << "cols " << cols << " part " << i << " runs " << runs
                                              << " misaligned " << misaligned;
        if (variant == 0) {
          first.push_back(got);
        } else {
          EXPECT_LE(RelErr(got, first[i]), 1e-4) << "vs runs kernel, cols " << cols << " part " << i;
        }
      }
    }
    for (void* p : dev) gpu::Free(p);
    gpu::Free(xq);
  }
}

// Q6_K pairs at 32 threads a row: the staged body (each warp's weights
// copied into its shared memory first, MatVecQ6KStagedBody) gives the same
// rows bit for bit as the in-place body, at widths of whole 8-block passes
// and row counts that fill no block; a weight 2 bytes off 16-byte alignment,
// and a width that is no whole pass, take the in-place body and stay correct.
TEST(GpuMatVecQ6KStaged, BitIdenticalToInPlaceAndMisalignedFallback) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  for (int64_t cols : {int64_t{2048}, int64_t{6144}, int64_t{14336}, int64_t{4096 + 256}}) {
    for (int64_t rows : {int64_t{1} + static_cast<int64_t>(rng() % 15), int64_t{37} + static_cast<int64_t>(rng() % 300)}) {
      const std::string what = "rows " + std::to_string(rows) + " cols " + std::to_string(cols);
      HostTensor t = MakeTensor(rng, GgmlType::Q6_K, rows, cols);
      auto wc = cpu->LoadWeight(t.info);
      ASSERT_TRUE(wc.ok()) << wc.status();
      const auto x = RandomVec(rng, size_t(cols));
      const std::vector<float> want = CpuMatMul(cpu.get(), *wc, x, 1);
      Buf xg(gpu.get(), x);
      void* xq = nullptr;
      ASSERT_TRUE(gpu::Malloc(&xq, gpu::MatMulScratchBytes(cols, 1)).ok);
      gpu::LaunchQuantizeActivation(GgmlType::Q6_K, xg.p, cols, xq, gpu->stream());
      // The weight at offset 0 (16-byte aligned) and again 2 bytes past a
      // 16-byte boundary.
      const size_t bytes = RowBytes(GgmlType::Q6_K, cols) * static_cast<size_t>(rows);
      const size_t off = (bytes + 15) / 16 * 16 + 2;
      void* dev = nullptr;
      ASSERT_TRUE(gpu::Malloc(&dev, off + bytes).ok);
      ASSERT_TRUE(gpu::CopyToDevice(dev, t.bytes.data(), bytes, gpu->stream()).ok);
      ASSERT_TRUE(gpu::CopyToDevice(static_cast<uint8_t*>(dev) + off, t.bytes.data(), bytes, gpu->stream()).ok);
      for (int rpt : {1, 2}) {
        std::vector<float> in_place;
        for (int variant = 0; variant < 3; ++variant) {  // in place, staged, staged asked but misaligned
          gpu::MatVecConfig cfg;
          cfg.threads_per_row = 32;
          cfg.rows_per_thread = rpt;
          cfg.q6k_staged = variant == 0 ? 0 : 1;
          gpu::SetMatVecConfig(cfg);
          Buf yg(gpu.get(), std::vector<float>(size_t(rows), std::nanf("")));
          const gpu::MatVecPart part{static_cast<const uint8_t*>(dev) + (variant == 2 ? off : 0), yg.p, rows};
          gpu::LaunchMatVecQuantizedGroup(GgmlType::Q6_K, cols, xq, &part, 1, gpu->stream());
          ASSERT_TRUE(gpu::LastLaunchError().ok);
          ASSERT_TRUE(gpu->Synchronize().ok());
          const std::vector<float> got = yg.Get();
          EXPECT_LE(RelErr(got, want), 1e-2) << "variant " << variant << " rpt " << rpt << ", " << what;
          if (variant == 0) {
            in_place = got;
          } else {
            EXPECT_EQ(std::memcmp(got.data(), in_place.data(), got.size() * sizeof(float)), 0)
                << "variant " << variant << " differs from the in-place body, rpt " << rpt << ", " << what;
          }
        }
      }
      gpu::Free(dev);
      gpu::Free(xq);
    }
  }
}

// The automatic batch-1 shape takes the staged body for the output head's kind
// of Q6_K weight (>= 8192 rows of whole passes): the same rows bit for bit as
// asking for it (32 threads, one row a warp), and the CPU's within tolerance
// with staging on or off (off: the slice kernel).
TEST(GpuMatVecQ6KStaged, AutomaticShapeTakesItForManyRows) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  const int64_t rows = 8192 + static_cast<int64_t>(rng() % 200), cols = 2048;
  HostTensor t = MakeTensor(rng, GgmlType::Q6_K, rows, cols);
  auto wg = gpu->LoadWeight(t.info);
  auto wc = cpu->LoadWeight(t.info);
  ASSERT_TRUE(wg.ok()) << wg.status();
  ASSERT_TRUE(wc.ok()) << wc.status();
  const auto x = RandomVec(rng, size_t(cols));
  const std::vector<float> want = CpuMatMul(cpu.get(), *wc, x, 1);
  Buf xg(gpu.get(), x);
  void* scratch = nullptr;
  ASSERT_TRUE(gpu::Malloc(&scratch, gpu::MatMulScratchBytes(cols, 1)).ok);
  auto run = [&](const gpu::MatVecConfig& cfg) {
    gpu::SetMatVecConfig(cfg);
    Buf yg(gpu.get(), std::vector<float>(size_t(rows), std::nanf("")));
    gpu::LaunchMatMulSmallBatch(wg->type, wg->data, rows, cols, xg.p, yg.p, 1, scratch, gpu->stream());
    EXPECT_TRUE(gpu::LastLaunchError().ok);
    EXPECT_TRUE(gpu->Synchronize().ok());
    return yg.Get();
  };
  gpu::MatVecConfig automatic, asked, off;
  asked.threads_per_row = 32;
  asked.rows_per_thread = 1;
  off.q6k_staged = 0;
  const std::vector<float> got = run(automatic);
  EXPECT_LE(RelErr(got, want), 1e-2) << "rows " << rows;
  const std::vector<float> staged = run(asked);
  EXPECT_EQ(std::memcmp(got.data(), staged.data(), got.size() * sizeof(float)), 0) << "rows " << rows;
  EXPECT_LE(RelErr(run(off), want), 1e-2) << "staging off, rows " << rows;
  gpu::Free(scratch);
}

}  // namespace
}  // namespace rocmforge::gputest
