// The fused gate / up + SwiGLU dense GEMM (gpu::LaunchDequantizeF16Pair,
// gpu::LaunchGemmF16SwiGLU, GpuBackend's DensePrefillOptions::
// fuse_gate_up_swiglu). The fused GEMM computes each gate and up sum as the
// plain GEMM does (same K order, no K split) and SwiGLU with the SwiGLU
// kernel's expression, so every output is checked BIT FOR BIT against the
// unfused kernels: two LaunchGemmF16 (no K split) + LaunchSwiGLUF16, at
// awkward sizes, for every row tile; and whole backend prefills (200 and 333
// tokens of a 2-layer random Llama-shaped stack) fused vs not. Fresh random
// inputs every run; outputs start as NaN.
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

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Interleaved dequantization = the two plain ones row by row; the fused GEMM
// = two plain GEMMs + LaunchSwiGLUF16, for every row tile, 3 and 4 stages.
TEST(GpuDenseSwiGLU, FusedGemmMatchesUnfusedKernelsBitForBit) {
  RF_REQUIRE_GPU(gpu);
  if (!gpu::MatMulMmaAvailable()) GTEST_SKIP() << "device has no matrix cores: no dense path";
  std::mt19937 rng(std::random_device{}());
  struct Shape {
    GgmlType type;
    int64_t rows, cols;  // of one matrix
    int n;
  };
  const GpuConfigGuard restore_settings;
  for (Shape sh : {Shape{GgmlType::Q4_K, 1, 256, 129}, Shape{GgmlType::Q4_K, 137, 512, 200},
                   Shape{GgmlType::Q8_0, 300, 96, 333}, Shape{GgmlType::Q6_K, 1000, 768, 257},
                   Shape{GgmlType::Q4_0, 64, 1024, 1}, Shape{GgmlType::Q5_K, 513, 256, 513}}) {
    const std::string what = std::string(TypeName(sh.type)) + " rows " + std::to_string(sh.rows) + " cols " +
                             std::to_string(sh.cols) + " n " + std::to_string(sh.n);
    HostTensor tg = MakeTensor(rng, sh.type, sh.rows, sh.cols);
    HostTensor tu = MakeTensor(rng, sh.type, sh.rows, sh.cols);
    const size_t one = size_t(sh.rows) * sh.cols, vals = size_t(sh.n) * sh.rows;
    DevMem wg(tg.bytes.size()), wu(tu.bytes.size()), g16(one * 2), u16(one * 2), pair16(2 * one * 2);
    ASSERT_TRUE(gpu->Upload(wg.p, tg.bytes.data(), tg.bytes.size()).ok());
    ASSERT_TRUE(gpu->Upload(wu.p, tu.bytes.data(), tu.bytes.size()).ok());
    const gpu::Stream st = gpu->stream();
    gpu::LaunchDequantizeF16(sh.type, wg.p, sh.rows, sh.cols, static_cast<uint16_t*>(g16.p), st);
    gpu::LaunchDequantizeF16(sh.type, wu.p, sh.rows, sh.cols, static_cast<uint16_t*>(u16.p), st);
    const auto hg = DownloadHalves(gpu.get(), g16.p, one), hu = DownloadHalves(gpu.get(), u16.p, one);
    for (int64_t blocks : {int64_t{0}, 2 * sh.rows, int64_t{3}}) {
      ASSERT_TRUE(gpu::Memset(pair16.p, 0xff, 2 * one * 2, st).ok);  // NaN halves
      gpu::LaunchDequantizeF16Pair(sh.type, wg.p, wu.p, sh.rows, sh.cols, static_cast<uint16_t*>(pair16.p), blocks,
                                   st);
      ASSERT_TRUE(gpu::LastLaunchError().ok);
      const auto hp = DownloadHalves(gpu.get(), pair16.p, 2 * one);
      bool same = true;
      for (int64_t r = 0; r < sh.rows && same; ++r) {
        same = std::memcmp(&hp[size_t(2 * r) * sh.cols], &hg[size_t(r) * sh.cols], sh.cols * 2) == 0 &&
               std::memcmp(&hp[size_t(2 * r + 1) * sh.cols], &hu[size_t(r) * sh.cols], sh.cols * 2) == 0;
      }
      EXPECT_TRUE(same) << what << " pair dequantization, blocks " << blocks;
    }
    // Unfused reference: no K split (atomics would reorder the last bits).
    const auto xf = RandomVec(rng, size_t(sh.n) * sh.cols);
    Buf x(gpu.get(), xf);
    DevMem x16(gpu::MatMulDenseActivationBytes(sh.cols, sh.n)), o16(vals * 2 + 16), r16(vals * 2 + 16);
    gpu::LaunchConvertF16(x.p, int64_t(sh.n) * sh.cols, static_cast<uint16_t*>(x16.p), st);
    const std::vector<float> poison(vals, std::nanf(""));
    Buf rg(gpu.get(), poison), ru(gpu.get(), poison), ro(gpu.get(), poison);
    gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{0, 1, 0, 0, 0});
    gpu::SetDenseTileConfig(gpu::DenseTileConfig{});
    gpu::SetDenseWgmma(false);  // the mma.sync kernel's tiles (wgmma: test_gpu_matmul_dense_wgmma.cc)
    const auto* xh = static_cast<const uint16_t*>(x16.p);
    gpu::LaunchGemmF16(static_cast<const uint16_t*>(g16.p), sh.rows, sh.cols, xh, rg.p, sh.n, st);
    gpu::LaunchGemmF16(static_cast<const uint16_t*>(u16.p), sh.rows, sh.cols, xh, ru.p, sh.n, st);
    gpu::LaunchSwiGLUF16(rg.p, ru.p, ro.p, static_cast<uint16_t*>(r16.p), int64_t(vals), st);
    ASSERT_TRUE(gpu::LastLaunchError().ok);
    ASSERT_TRUE(gpu->Synchronize().ok());
    const auto want_g = rg.Get(), want_u = ru.Get(), want_o = ro.Get();
    const auto want_16 = DownloadHalves(gpu.get(), r16.p, vals);
    for (float f : want_o) ASSERT_TRUE(std::isfinite(f)) << what;
    struct Variant {
      int row_tile, stages;
      bool write_gate_up;
    };
    for (Variant v : {Variant{0, 3, true}, Variant{128, 3, true}, Variant{256, 3, false}, Variant{224, 3, true},
                      Variant{256, 4, true}, Variant{224, 4, false}}) {
      gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{v.row_tile, 0, 0, 0, 0});
      gpu::SetDenseTileConfig(gpu::DenseTileConfig{0, v.stages, 0});
      Buf fg(gpu.get(), poison), fu(gpu.get(), poison), fo(gpu.get(), poison);
      ASSERT_TRUE(gpu::Memset(o16.p, 0xff, vals * 2, st).ok);
      gpu::LaunchGemmF16SwiGLU(static_cast<const uint16_t*>(pair16.p), 2 * sh.rows, sh.cols, xh, fo.p,
                               static_cast<uint16_t*>(o16.p), v.write_gate_up ? fg.p : nullptr,
                               v.write_gate_up ? fu.p : nullptr, sh.n, st);
      ASSERT_TRUE(gpu::LastLaunchError().ok);
      ASSERT_TRUE(gpu->Synchronize().ok());
      const std::string vw = what + " tile " + std::to_string(v.row_tile) + " stages " + std::to_string(v.stages);
      EXPECT_TRUE(SameBits(fo.Get(), want_o)) << vw << ": out";
      EXPECT_TRUE(DownloadHalves(gpu.get(), o16.p, vals) == want_16) << vw << ": out16";
      if (v.write_gate_up) {
        EXPECT_TRUE(SameBits(fg.Get(), want_g)) << vw << ": gate";
        EXPECT_TRUE(SameBits(fu.Get(), want_u)) << vw << ": up";
      } else {
        for (float f : fg.Get()) ASSERT_TRUE(std::isnan(f)) << vw << ": gate written";
      }
    }
  }
}

// ---- whole backend prefills ----------------------------------------------

using dense_stack::kDim;
using dense_stack::kHd;
using dense_stack::kKv;
using dense_stack::OneSequence;
using dense_stack::kLayers;
using dense_stack::LayerW;
using dense_stack::LoadLayers;

// x, the last layer's gate and up outputs and SwiGLU's out of one prefill.
std::vector<std::vector<float>> Forward(GpuBackend* gpu, const std::vector<LayerW>& lw, const std::vector<float>& x0,
                                        int n, int ffn, bool separate_out) {
  dense_stack::StackOut o = dense_stack::RunStack(gpu, lw, x0, n, ffn, separate_out);
  return {o.x, o.gate, o.up, o.out};
}

using O = GpuBackend::DensePrefillOptions;

// Fused vs unfused prefills: every output bit for bit (no K split in either),
// each layer fused once, for the Q4_K_M-like and the Q8_0 mix, SwiGLU in place
// and out of place, with the overlap learning the pairs (second forward:
// the interleaved pair dequantized on the side stream) and with resident f16
// weights; fused_gate_up_unwritten leaves gate / up unwritten and nothing else
// changes.
TEST(GpuDenseSwiGLU, FusedPrefillBitIdenticalToUnfused) {
  RF_REQUIRE_GPU(gpu);
  if (!gpu::MatMulMmaAvailable()) GTEST_SKIP() << "device has no matrix cores: no dense path";
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{0, 1, 0, 0, 0});  // no K split: deterministic bits
  for (bool q8 : {false, true}) {
    const int ffn = q8 ? 992 : 1280;  // whole Q8_0 / Q6_K blocks for down
    const std::vector<LayerW> lw = LoadLayers(gpu.get(), rng, q8, ffn);
    for (int n : {200, 333}) {
      const auto x0 = RandomVec(rng, size_t(n) * kDim);
      for (bool separate : {false, true}) {
        const std::string what = std::string(q8 ? "Q8_0" : "Q4_K_M") + " n " + std::to_string(n) +
                                 (separate ? " out of place" : " in place");
        O off;
        off.fuse_gate_up_swiglu = false;
        gpu->SetDensePrefill(off);
        const auto want = Forward(gpu.get(), lw, x0, n, ffn, separate);
        for (float f : want[0]) ASSERT_TRUE(std::isfinite(f)) << what;
        O on;
        on.fuse_gate_up_swiglu = true;
        gpu->SetDensePrefill(on);
        for (int pass = 0; pass < 3; ++pass) {  // 1: pairs learned; 2: resident f16 weights
          if (pass == 2) gpu->SetDenseResidentF16(true);
          const GpuBackend::DensePrefillStats s0 = gpu->dense_prefill_stats();
          const auto got = Forward(gpu.get(), lw, x0, n, ffn, separate);
          const GpuBackend::DensePrefillStats s1 = gpu->dense_prefill_stats();
          EXPECT_EQ(s1.swiglu_fused - s0.swiglu_fused, kLayers) << what << " pass " << pass;
          std::printf("%s pass %d: %lld dequantizations overlapped, %lld in line\n", what.c_str(), pass,
                      static_cast<long long>(s1.prefetch_hits - s0.prefetch_hits),
                      static_cast<long long>(s1.prefetch_misses - s0.prefetch_misses));
          // Q (after the first), V (Q4_K_M) or K / V / O (Q8_0), the pair and
          // down of each layer are forked once the order and pairs are known.
          if (pass == 1) {
            EXPECT_GE(s1.prefetch_hits - s0.prefetch_hits, 3 * kLayers - 1) << what;
          }
          for (size_t b = 0; b < want.size(); ++b) {
            EXPECT_TRUE(SameBits(got[b], want[b])) << what << " pass " << pass << " buffer " << b;
          }
        }
        gpu->SetDenseResidentF16(false);
        O unwritten = on;
        unwritten.fused_gate_up_unwritten = true;
        gpu->SetDensePrefill(unwritten);
        const auto got = Forward(gpu.get(), lw, x0, n, ffn, separate);
        EXPECT_TRUE(SameBits(got[0], want[0])) << what << " unwritten: x";
        if (!separate) {
          EXPECT_TRUE(SameBits(got[1], want[1])) << what << " unwritten: SwiGLU out";
        } else {
          EXPECT_TRUE(SameBits(got[3], want[3])) << what << " unwritten: SwiGLU out";
          for (float f : got[1]) ASSERT_TRUE(std::isnan(f)) << what << " unwritten: gate written";
        }
        for (float f : got[2]) ASSERT_TRUE(std::isnan(f)) << what << " unwritten: up written";
      }
    }
  }
  gpu->SetDensePrefill(O{});
}

// The engine's f16 weight cache (UseSpareMemory): taken only when every copy
// fits in the spare memory offered, and then the prefill (resident copies,
// fused gate / up / SwiGLU, 224-row tiles) is bit for bit the plain one.
TEST(GpuDenseSwiGLU, SpareMemoryCacheFitsOrStaysOffAndChangesNoBits) {
  RF_REQUIRE_GPU(gpu);
  if (!gpu::MatMulMmaAvailable()) GTEST_SKIP() << "device has no matrix cores: no dense path";
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{0, 1, 0, 0, 0});  // no K split: deterministic bits
  const int ffn = 1280, n = 333;
  const std::vector<LayerW> lw = LoadLayers(gpu.get(), rng, false, ffn);  // ~10.5 MB of f16 copies
  const auto x0 = RandomVec(rng, size_t(n) * kDim);
  const auto want = Forward(gpu.get(), lw, x0, n, ffn, false);
  EXPECT_EQ(gpu->UseSpareMemory(size_t{1} << 20), 0u) << "10 MB of copies do not fit in 1 MB";
  EXPECT_FALSE(gpu->dense_prefill().fuse_gate_up_swiglu);
  const size_t used = gpu->UseSpareMemory(size_t{1} << 30);
  EXPECT_GT(used, size_t{8} << 20);
  EXPECT_LT(used, size_t{16} << 20);
  EXPECT_TRUE(gpu->dense_prefill().fuse_gate_up_swiglu);
  for (int pass = 0; pass < 2; ++pass) {  // 0 fills the copies, 1 reads them
    const GpuBackend::DensePrefillStats s0 = gpu->dense_prefill_stats();
    const auto got = Forward(gpu.get(), lw, x0, n, ffn, false);
    EXPECT_EQ(gpu->dense_prefill_stats().swiglu_fused - s0.swiglu_fused, kLayers) << "pass " << pass;
    for (size_t b = 0; b < want.size(); ++b) EXPECT_TRUE(SameBits(got[b], want[b])) << "pass " << pass << " buffer " << b;
  }
  gpu->SetDenseResidentF16(false);
  gpu->SetDensePrefill(O{});
}

// Held gate / up matmuls that no SwiGLU follows launch unchanged: a pair read
// back directly, a pair followed by another matmul on the same input, and a
// SwiGLU over other buffers; results equal the unfused backend's.
TEST(GpuDenseSwiGLU, HeldPairsWithoutSwiGLULaunchUnchanged) {
  RF_REQUIRE_GPU(gpu);
  if (!gpu::MatMulMmaAvailable()) GTEST_SKIP() << "device has no matrix cores: no dense path";
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{0, 1, 0, 0, 0});
  const int n = 257, rows = 300, cols = 512;
  auto load = [&](GgmlType type) {
    HostTensor t = MakeTensor(rng, type, rows, cols);
    auto w = gpu->LoadWeight(t.info);
    EXPECT_TRUE(w.ok()) << w.status();
    return w.ok() ? *w : Weight{};
  };
  // Q8_0: dense from 192 tokens (small Q4_K matrices stay in-loop to 1024).
  const Weight a = load(GgmlType::Q8_0), b = load(GgmlType::Q8_0), c = load(GgmlType::Q8_0);
  ASSERT_TRUE(gpu->InitKvCache(KvCacheShape{1, kKv, kHd, 16, 32}).ok());
  const auto x0 = RandomVec(rng, size_t(n) * cols);
  const std::vector<float> poison(size_t(n) * rows, std::nanf(""));
  std::vector<std::vector<float>> results[2];
  for (int fuse = 0; fuse < 2; ++fuse) {
    O o;
    o.fuse_gate_up_swiglu = fuse == 1;
    gpu->SetDensePrefill(o);
    Buf x(gpu.get(), x0), ya(gpu.get(), poison), yb(gpu.get(), poison), yc(gpu.get(), poison),
        s1(gpu.get(), poison), s2(gpu.get(), poison);
    ASSERT_TRUE(gpu->BeginStep(OneSequence(n, 16)).ok());
    const GpuBackend::DensePrefillStats st0 = gpu->dense_prefill_stats();
    gpu->MatMul(a, x.p, ya.p, n);  // a pair, read back
    gpu->MatMul(b, x.p, yb.p, n);
    ASSERT_TRUE(gpu->Synchronize().ok());
    results[fuse].push_back(ya.Get());
    results[fuse].push_back(yb.Get());
    gpu->MatMul(a, x.p, ya.p, n);  // three on one input
    gpu->MatMul(b, x.p, yb.p, n);
    gpu->MatMul(c, x.p, yc.p, n);
    gpu->SwiGLU(ya.p, yc.p, s1.p, int64_t(n) * rows);  // not the held pair's outputs
    gpu->MatMul(a, x.p, ya.p, n);
    gpu->MatMul(b, x.p, yb.p, n);
    gpu->SwiGLU(yb.p, ya.p, s2.p, int64_t(n) * rows);  // gate and up swapped
    ASSERT_TRUE(gpu->Synchronize().ok());
    EXPECT_EQ(gpu->dense_prefill_stats().swiglu_fused - st0.swiglu_fused, 0);
    for (Buf* r : {&ya, &yb, &yc, &s1, &s2}) results[fuse].push_back(r->Get());
  }
  for (size_t i = 0; i < results[0].size(); ++i) {
    for (float f : results[1][i]) ASSERT_TRUE(std::isfinite(f)) << "buffer " << i;
    EXPECT_TRUE(SameBits(results[1][i], results[0][i])) << "buffer " << i;
  }
  gpu->SetDensePrefill(O{});
}

}  // namespace
}  // namespace rocmforge::gputest
