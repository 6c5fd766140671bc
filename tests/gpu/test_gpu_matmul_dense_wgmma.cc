// The Hopper dense GEMM (kernels/matmul_dense_wgmma.hip: TMA + wgmma, sm_90a),
// taken by LaunchGemmF16 / LaunchGemmF16SwiGLU while SetDenseWgmma is on:
// against a double-precision reference at sizes that fit no tile (rows 1 ..
// 8200, n 129 .. 1030, K tails), both tile widths (128 x 256 for wide grids,
// 128 x 128 + K splits for short ones), forced and automatic K splits, the
// SwiGLU epilogue (out, out16, gate, up); the mma.sync kernel agrees; the
// fused SwiGLU equals two plain GEMMs + LaunchSwiGLUF16 bit for bit. Fresh
// random inputs every run; outputs start as NaN. Skipped where the device has
// no wgmma path (not an sm_90 GPU).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/gpu_api.h"
#include "kernels/matmul_dense_wgmma.h"
#include "tests/gpu/gpu_config_guard.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

struct Shape {
  int64_t rows, cols;
  int n;
};

std::string Name(const Shape& sh) {
  return "rows " + std::to_string(sh.rows) + " cols " + std::to_string(sh.cols) + " n " + std::to_string(sh.n);
}

// Random f16 operands on the device (converted there by LaunchConvertF16) and
// their exact float values on the host.
struct Operands {
  DevMem w, x;
  std::vector<float> wf, xf;
  Operands(GpuBackend* gpu, std::mt19937& rng, const Shape& sh)
      : w(size_t(sh.rows) * sh.cols * 2 + 16), x(size_t(sh.n) * sh.cols * 2 + 16) {
    auto make = [&](DevMem& dst, size_t count, std::vector<float>* host) {
      Buf f(gpu, RandomVec(rng, count));
      gpu::LaunchConvertF16(f.p, static_cast<int64_t>(count), static_cast<uint16_t*>(dst.p), gpu->stream());
      EXPECT_TRUE(gpu::LastLaunchError().ok);
      const auto h = DownloadHalves(gpu, dst.p, count);
      host->resize(count);
      for (size_t i = 0; i < count; ++i) (*host)[i] = HalfToFloat(h[i]);
    };
    make(w, size_t(sh.rows) * sh.cols, &wf);
    make(x, size_t(sh.n) * sh.cols, &xf);
  }
  const uint16_t* wh() const { return static_cast<const uint16_t*>(w.p); }
  const uint16_t* xh() const { return static_cast<const uint16_t*>(x.p); }
};

std::vector<float> RunPlain(GpuBackend* gpu, const Operands& ops, const Shape& sh) {
  Buf y(gpu, std::vector<float>(size_t(sh.n) * sh.rows, std::nanf("")));
  gpu::LaunchGemmF16(ops.wh(), sh.rows, sh.cols, ops.xh(), y.p, sh.n, gpu->stream());
  EXPECT_TRUE(gpu::LastLaunchError().ok);
  EXPECT_TRUE(gpu->Synchronize().ok());
  return y.Get();
}

struct SwiGLUOut {
  std::vector<float> out, gate, up;
  std::vector<uint16_t> out16, want16;  // want16: LaunchConvertF16 of out
};

SwiGLUOut RunSwiGLU(GpuBackend* gpu, const Operands& ops, const Shape& sh, bool gate_up) {
  const size_t vals = size_t(sh.n) * (sh.rows / 2);
  const std::vector<float> poison(vals, std::nanf(""));
  Buf o(gpu, poison), g(gpu, poison), u(gpu, poison);
  DevMem o16(vals * 2 + 16), r16(vals * 2 + 16);
  const gpu::Stream st = gpu->stream();
  EXPECT_TRUE(gpu::Memset(o16.p, 0xff, vals * 2, st).ok);
  gpu::LaunchGemmF16SwiGLU(ops.wh(), sh.rows, sh.cols, ops.xh(), o.p, static_cast<uint16_t*>(o16.p),
                           gate_up ? g.p : nullptr, gate_up ? u.p : nullptr, sh.n, st);
  gpu::LaunchConvertF16(o.p, static_cast<int64_t>(vals), static_cast<uint16_t*>(r16.p), st);
  EXPECT_TRUE(gpu::LastLaunchError().ok);
  EXPECT_TRUE(gpu->Synchronize().ok());
  return SwiGLUOut{o.Get(), g.Get(), u.Get(), DownloadHalves(gpu, o16.p, vals), DownloadHalves(gpu, r16.p, vals)};
}

// Restores the wgmma row tile and SwiGLU epilogue settings at scope exit.
struct TileGuard {
  const int tile = gpu::GetDenseWgmmaTile();
  const bool staged = gpu::GetDenseWgmmaStagedSwiGLU();
  ~TileGuard() {
    gpu::SetDenseWgmmaTile(tile);
    gpu::SetDenseWgmmaStagedSwiGLU(staged);
  }
};

#define RF_REQUIRE_WGMMA() \
  if (!gpu::DenseWgmmaAvailable()) GTEST_SKIP() << "no wgmma path on this device"

TEST(GpuDenseWgmma, GemmMatchesReferenceAtAwkwardSizes) {
  RF_REQUIRE_GPU(gpu);
  RF_REQUIRE_WGMMA();
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  const TileGuard restore_tile;
  gpu::SetDenseWgmma(true);
  double worst_plain = 0.0, worst_swiglu = 0.0;
  int checks = 0;
  // Short grids (128 x 128 tiles, K splits) and wide ones (>= 132 tiles of 128 x 256).
  for (Shape sh :
       {Shape{1, 64, 129}, Shape{17, 4104, 200}, Shape{129, 4096, 513}, Shape{255, 4104, 129}, Shape{4099, 64, 513},
        Shape{300, 4104, 200}, Shape{1024, 4096, 256}, Shape{4099, 200, 1030}, Shape{8200, 64, 513}}) {
    const Operands ops(gpu.get(), rng, sh);
    const auto ref = DoubleGemm(ops.wf, sh.rows, sh.cols, ops.xf, sh.n);
    for (int tile : {0, 128, 224, 256}) {
      gpu::SetDenseWgmmaTile(tile);
      for (int splits : {0, 1, 3}) {
        gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{0, splits, 0, 0, 0});
        const double e = RelErr(RunPlain(gpu.get(), ops, sh), ref);
        EXPECT_LE(e, 1e-4) << Name(sh) << " tile " << tile << " splits " << splits;
        worst_plain = std::max(worst_plain, e);
        ++checks;
      }
    }
    // SwiGLU: rows 2i / 2i + 1 are gate / up (an even count of rows).
    if (sh.rows % 2 == 0 || sh.rows > 1) {
      const Shape sw{sh.rows - sh.rows % 2, sh.cols, sh.n};
      const int64_t half = sw.rows / 2;
      std::vector<float> rg(size_t(sw.n) * half), ru(rg.size()), ro(rg.size());
      for (int t = 0; t < sw.n; ++t) {
        for (int64_t c = 0; c < half; ++c) {
          const double g = ref[size_t(t) * sh.rows + 2 * c], u = ref[size_t(t) * sh.rows + 2 * c + 1];
          rg[size_t(t) * half + c] = static_cast<float>(g);
          ru[size_t(t) * half + c] = static_cast<float>(u);
          ro[size_t(t) * half + c] = static_cast<float>(g / (1.0 + std::exp(-g)) * u);
        }
      }
      gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{});
      for (int tile : {0, 128, 224, 256}) {
        gpu::SetDenseWgmmaTile(tile);
        for (int variant = 0; variant < 4; ++variant) {
          const bool gate_up = variant % 2 == 0;
          gpu::SetDenseWgmmaStagedSwiGLU(variant < 2);
          const SwiGLUOut r = RunSwiGLU(gpu.get(), ops, sw, gate_up);
          const std::string what = Name(sw) + " SwiGLU tile " + std::to_string(tile) +
                                   (gpu::GetDenseWgmmaStagedSwiGLU() ? " staged" : " direct") +
                                   (gate_up ? " + gate/up" : "");
          const double e = RelErr(r.out, ro);
          EXPECT_LE(e, 1e-4) << what;
          worst_swiglu = std::max(worst_swiglu, e);
          ++checks;
          EXPECT_TRUE(r.out16 == r.want16) << what << ": out16 is not out rounded to nearest";
          if (gate_up) {
            EXPECT_LE(RelErr(r.gate, rg), 1e-4) << what;
            EXPECT_LE(RelErr(r.up, ru), 1e-4) << what;
          } else {
            for (float f : r.gate) ASSERT_TRUE(std::isnan(f)) << what << ": gate written";
          }
        }
      }
    }
  }
  std::printf("wgmma vs double reference: %d checks, worst rel err plain %.3g, SwiGLU out %.3g\n", checks, worst_plain,
              worst_swiglu);
}

// The mma.sync kernel and the wgmma one agree (both f32 sums of the same products).
TEST(GpuDenseWgmma, AgreesWithMmaSyncKernel) {
  RF_REQUIRE_GPU(gpu);
  RF_REQUIRE_WGMMA();
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{});
  for (Shape sh : {Shape{4096, 4096, 512}, Shape{1000, 1032, 333}, Shape{14336, 512, 160}}) {
    const Operands ops(gpu.get(), rng, sh);
    gpu::SetDenseWgmma(false);
    const auto old_y = RunPlain(gpu.get(), ops, sh);
    gpu::SetDenseWgmma(true);
    const auto new_y = RunPlain(gpu.get(), ops, sh);
    EXPECT_LE(RelErr(new_y, old_y), 1e-5) << Name(sh);
    std::printf("wgmma vs mma.sync %s: rel diff %.3g\n", Name(sh).c_str(), RelErr(new_y, old_y));
    const Shape sw{sh.rows, sh.cols, sh.n};
    gpu::SetDenseWgmma(false);
    const SwiGLUOut a = RunSwiGLU(gpu.get(), ops, sw, true);
    gpu::SetDenseWgmma(true);
    const SwiGLUOut b = RunSwiGLU(gpu.get(), ops, sw, true);
    EXPECT_LE(RelErr(b.out, a.out), 1e-5) << Name(sh) << " SwiGLU";
    EXPECT_LE(RelErr(b.gate, a.gate), 1e-5) << Name(sh) << " SwiGLU gate";
  }
}

// Without K splits the fused SwiGLU GEMM gives exactly the two plain GEMMs'
// gate / up and LaunchSwiGLUF16's out / out16 (what the backend's fused
// prefill relies on), whichever tile width each launch picks.
TEST(GpuDenseWgmma, FusedSwiGLUEqualsPlainGemmsBitForBit) {
  RF_REQUIRE_GPU(gpu);
  RF_REQUIRE_WGMMA();
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  const TileGuard restore_tile;
  gpu::SetDenseWgmma(true);
  gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{0, 1, 0, 0, 0});
  // 4096 x 256 at n = 512: the plain GEMMs take 128-row tiles, the fused one 256.
  for (Shape sh : {Shape{300, 1032, 200}, Shape{6656, 256, 640}, Shape{137, 64, 129}, Shape{4096, 256, 512}}) {
    const Shape pair{2 * sh.rows, sh.cols, sh.n};
    const Operands ops(gpu.get(), rng, pair);
    // Gate / up matrices split from the interleaved pair (rows 2i / 2i + 1).
    DevMem g16(size_t(sh.rows) * sh.cols * 2 + 16), u16(size_t(sh.rows) * sh.cols * 2 + 16);
    const auto hp = DownloadHalves(gpu.get(), ops.w.p, size_t(pair.rows) * sh.cols);
    std::vector<uint16_t> hg(size_t(sh.rows) * sh.cols), hu(hg.size());
    for (int64_t r = 0; r < sh.rows; ++r) {
      std::memcpy(&hg[size_t(r) * sh.cols], &hp[size_t(2 * r) * sh.cols], sh.cols * 2);
      std::memcpy(&hu[size_t(r) * sh.cols], &hp[size_t(2 * r + 1) * sh.cols], sh.cols * 2);
    }
    ASSERT_TRUE(gpu->Upload(g16.p, hg.data(), hg.size() * 2).ok());
    ASSERT_TRUE(gpu->Upload(u16.p, hu.data(), hu.size() * 2).ok());
    const size_t vals = size_t(sh.n) * sh.rows;
    const std::vector<float> poison(vals, std::nanf(""));
    Buf rg(gpu.get(), poison), ru(gpu.get(), poison), ro(gpu.get(), poison);
    DevMem r16(vals * 2 + 16);
    const gpu::Stream st = gpu->stream();
    gpu::LaunchGemmF16(static_cast<const uint16_t*>(g16.p), sh.rows, sh.cols, ops.xh(), rg.p, sh.n, st);
    gpu::LaunchGemmF16(static_cast<const uint16_t*>(u16.p), sh.rows, sh.cols, ops.xh(), ru.p, sh.n, st);
    gpu::LaunchSwiGLUF16(rg.p, ru.p, ro.p, static_cast<uint16_t*>(r16.p), int64_t(vals), st);
    ASSERT_TRUE(gpu::LastLaunchError().ok);
    ASSERT_TRUE(gpu->Synchronize().ok());
    auto same = [](const std::vector<float>& a, const std::vector<float>& b) {
      return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
    };
    const auto want_o = ro.Get(), want_g = rg.Get(), want_u = ru.Get();
    const auto want_16 = DownloadHalves(gpu.get(), r16.p, vals);
    for (float v : want_o) ASSERT_TRUE(std::isfinite(v)) << Name(sh);
    for (bool staged : {true, false}) {
      gpu::SetDenseWgmmaStagedSwiGLU(staged);
      const SwiGLUOut f = RunSwiGLU(gpu.get(), ops, pair, true);
      const std::string what = Name(sh) + (staged ? " staged" : " direct");
      EXPECT_TRUE(same(f.gate, want_g)) << what << ": gate";
      EXPECT_TRUE(same(f.up, want_u)) << what << ": up";
      EXPECT_TRUE(same(f.out, want_o)) << what << ": out";
      EXPECT_TRUE(f.out16 == want_16) << what << ": out16";
    }
  }
}

}  // namespace
}  // namespace rocmforge::gputest
