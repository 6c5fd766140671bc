// The dense prefill path's learned matmul order (GpuBackend::SetDensePrefill,
// overlap_dequant) across modes whose dense matmuls differ, and the dense GEMM
// tile options (gpu::SetDenseTileConfig, DenseGemmConfig::row_tile = 224)
// inside a backend prefill: a 2-layer Llama-shaped stack of a Q4_K_M-like mix
// (K and O small Q4_K: in-loop GEMM unless dense_small_q4k) at 200 and 333
// tokens on fresh random weights and inputs.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/gpu_api.h"
#include "tests/gpu/dense_stack_test_util.h"
#include "tests/gpu/gpu_config_guard.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

using dense_stack::LayerW;
constexpr int kDim = dense_stack::kDim, kFfn = 1280;

std::vector<LayerW> LoadLayers(GpuBackend* gpu, std::mt19937& rng) {
  return dense_stack::LoadLayers(gpu, rng, /*q8=*/false, kFfn);
}

// The residual stream and the last layer's attention output of one prefill.
std::vector<float> Forward(GpuBackend* gpu, const std::vector<LayerW>& lw, const std::vector<float>& x0, int n) {
  dense_stack::StackOut o = dense_stack::RunStack(gpu, lw, x0, n, kFfn, /*separate_out=*/false);
  o.x.insert(o.x.end(), o.attn.begin(), o.attn.end());
  return o.x;
}

using O = GpuBackend::DensePrefillOptions;

// Forwards alternate between the default options (K and O in-loop) and
// dense_small_q4k (every matmul dense). The order is learned over every
// batched matmul, dense or not, so a forward right after a mode switch
// overlaps as many dequantizations as a forward of the same mode after one of
// that mode. Before, the successor learned in the other mode was dequantized
// (e.g. K after Q instead of V): a wasted dequantization and a miss or two a
// layer (33 of 176 in the bench's stats forward, which followed a
// dense_small_q4k one). Results equal the serial path's bit for bit.
TEST(GpuDensePrefill, LearnedOrderSurvivesModeSwitch) {
  RF_REQUIRE_GPU(gpu);
  if (!gpu::MatMulMmaAvailable()) GTEST_SKIP() << "device has no matrix cores: no dense path";
  std::mt19937 rng(std::random_device{}());
  const std::vector<LayerW> lw = LoadLayers(gpu.get(), rng);
  const GpuConfigGuard restore_settings;
  gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{0, 1, 0, 0, 0});  // no K split: deterministic bits
  for (int n : {200, 333}) {
    const auto x0 = RandomVec(rng, size_t(n) * kDim);
    gpu->SetDensePrefill(O{false, false, false, false});
    const auto want = Forward(gpu.get(), lw, x0, n);
    for (float f : want) ASSERT_TRUE(std::isfinite(f)) << "n " << n;
    const O modes[] = {O{true, true, true, false}, O{true, true, true, true}};
    // Forwards 1 and 3 are each mode's steady state (after one of the same
    // mode); 4, 5 and 6 follow a switch.
    const int sequence[] = {0, 0, 1, 1, 0, 1, 0};
    constexpr int kForwards = sizeof(sequence) / sizeof(sequence[0]);
    int64_t hits[kForwards], misses[kForwards];
    for (int i = 0; i < kForwards; ++i) {
      const int m = sequence[i];
      gpu->SetDensePrefill(modes[m]);
      const GpuBackend::DensePrefillStats s0 = gpu->dense_prefill_stats();
      const auto got = Forward(gpu.get(), lw, x0, n);
      const GpuBackend::DensePrefillStats s1 = gpu->dense_prefill_stats();
      hits[i] = s1.prefetch_hits - s0.prefetch_hits;
      misses[i] = s1.prefetch_misses - s0.prefetch_misses;
      std::printf("n %d forward %d mode %d: %lld dequantizations overlapped, %lld in line, %lld f16 inputs "
                  "reused, %lld written by producers\n",
                  n, i, m, static_cast<long long>(hits[i]), static_cast<long long>(misses[i]),
                  static_cast<long long>(s1.x16_reused - s0.x16_reused),
                  static_cast<long long>(s1.f16_produced - s0.f16_produced));
      if (m == 0) {
        ASSERT_EQ(got.size(), want.size());
        EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0)
            << "n " << n << " forward " << i;
      }
    }
    EXPECT_GT(hits[1], 0) << "n " << n;
    for (int i : {4, 6}) {
      EXPECT_LE(misses[i], misses[1]) << "n " << n << " forward " << i;
    }
    EXPECT_LE(misses[5], misses[3]) << "n " << n;
  }
  gpu->SetDensePrefill(O{});
}

// The dense GEMM tile options and resident f16 weights change no bit of a
// prefill: 128 x 224 tiles forced and 3 or 4 pipeline stages with every dense
// prefill option on, and the automatic tiles with resident weights, against
// 128 x 256 tiles, 3 stages and every option off (no K split in any).
TEST(GpuDensePrefill, TileOptionsAndResidentWeightsGiveIdenticalForwards) {
  RF_REQUIRE_GPU(gpu);
  if (!gpu::MatMulMmaAvailable()) GTEST_SKIP() << "device has no matrix cores: no dense path";
  std::mt19937 rng(std::random_device{}());
  const std::vector<LayerW> lw = LoadLayers(gpu.get(), rng);
  const GpuConfigGuard restore_settings;
  gpu::SetDenseWgmma(false);  // the mma.sync kernel's tile options
  for (int n : {200, 333}) {
    const auto x0 = RandomVec(rng, size_t(n) * kDim);
    gpu->SetDensePrefill(O{false, false, false, false});
    gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{256, 1, 0, 0, 0});
    gpu::SetDenseTileConfig(gpu::DenseTileConfig{-1, 3, 0});
    const auto want = Forward(gpu.get(), lw, x0, n);
    for (float f : want) ASSERT_TRUE(std::isfinite(f)) << "n " << n;
    gpu->SetDensePrefill(O{true, true, true, false});
    for (int stages : {3, 4}) {
      gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{224, 1, 0, 0, 0});
      gpu::SetDenseTileConfig(gpu::DenseTileConfig{1, stages, 0});
      for (int pass = 0; pass < 2; ++pass) {  // the second with the order learned
        const auto got = Forward(gpu.get(), lw, x0, n);
        ASSERT_EQ(got.size(), want.size());
        EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0)
            << "n " << n << " stages " << stages << " pass " << pass;
      }
    }
    // Resident f16 weights: the first pass dequantizes into them, the second
    // only reads them.
    gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{0, 1, 0, 0, 0});
    gpu::SetDenseTileConfig(gpu::DenseTileConfig{});
    gpu->SetDenseResidentF16(true);
    for (int pass = 0; pass < 2; ++pass) {
      const auto got = Forward(gpu.get(), lw, x0, n);
      ASSERT_EQ(got.size(), want.size());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0)
          << "n " << n << " resident f16 weights, pass " << pass;
    }
    gpu->SetDenseResidentF16(false);
  }
  gpu->SetDensePrefill(O{});
}

}  // namespace
}  // namespace rocmforge::gputest
