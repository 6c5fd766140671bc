// The dense prefill path (kernels/dequantize_f16.hip, kernels/matmul_dense.hip):
// whole-matrix dequantization to f16 against the CPU's dequantization for every
// type, the f16 GEMM against a double-precision reference at sizes that are no
// multiple of any tile, and LaunchMatMul's path choice (dense taken only for
// large n with enough scratch, and then correct). Fresh random inputs every
// run; outputs start as NaN.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/gpu_api.h"
#include "tests/gpu/gpu_config_guard.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

// Distance in units in the last place between two finite halves of the same
// sign region (ordered as sign-magnitude integers).
int UlpDistance(uint16_t a, uint16_t b) {
  auto key = [](uint16_t h) { return (h & 0x8000) ? -static_cast<int>(h & 0x7fff) : static_cast<int>(h); };
  return std::abs(key(a) - key(b));
}

// Round-to-nearest-even float -> half bits (host reference), via the ulp grid.
uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  const float a = std::fabs(f);
  if (!(a < 65520.0f)) return static_cast<uint16_t>(sign | 0x7c00);
  if (a < std::ldexp(1.0f, -14)) {  // subnormal: multiples of 2^-24
    const float q = std::nearbyint(a * 16777216.0f);
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(q));
  }
  int e;
  std::frexp(a, &e);  // a in [2^(e-1), 2^e)
  const float ulp = std::ldexp(1.0f, e - 11);
  const float q = std::nearbyint(a / ulp) * ulp;  // may round up to 2^e
  int e2;
  const float m = std::frexp(q, &e2);
  const uint32_t exp = static_cast<uint32_t>(e2 - 1 + 15);
  const uint32_t man = static_cast<uint32_t>(std::ldexp(m, 11)) - 1024;
  return static_cast<uint16_t>(sign | (exp << 10) | man);
}

std::vector<float> Dequantize(const HostTensor& t, int64_t rows, int64_t cols) {
  std::vector<float> w(size_t(rows) * cols);
  const size_t row_bytes = RowBytes(t.info.type, cols);
  for (int64_t r = 0; r < rows; ++r) {
    quant::DequantizeRow(t.info.type, t.bytes.data() + r * row_bytes, w.data() + r * cols, cols);
  }
  return w;
}

// y[n][rows] = x . W^T in double precision, both operands first rounded to f16
// as the dense path rounds them (so the bound measures the GEMM itself).
std::vector<float> ReferenceF16Gemm(const std::vector<float>& w, int64_t rows, int64_t cols,
                                    const std::vector<float>& x, int n) {
  std::vector<float> wh(w.size()), xh(x.size());
  for (size_t i = 0; i < w.size(); ++i) wh[i] = HalfToFloat(FloatToHalf(w[i]));
  for (size_t i = 0; i < x.size(); ++i) xh[i] = HalfToFloat(FloatToHalf(x[i]));
  return DoubleGemm(wh, rows, cols, xh, n);
}

// An f16 GEMM's shape: W [rows][cols], x [n][cols].
struct GemmShape {
  int64_t rows, cols;
  int n;
};

// Random W and x for `sh`, as floats and as their f16 roundings on the device.
struct F16Operands {
  std::vector<float> wf, xf;
  DevMem w, x;

  F16Operands(std::mt19937& rng, const GemmShape& sh)
      : wf(RandomVec(rng, size_t(sh.rows) * sh.cols)),
        xf(RandomVec(rng, size_t(sh.n) * sh.cols)),
        w(wf.size() * 2),
        x(xf.size() * 2) {}

  // Copies the f16 roundings to the device; false if an upload fails.
  bool Upload(GpuBackend* gpu) const {
    std::vector<uint16_t> wh(wf.size()), xh(xf.size());
    for (size_t i = 0; i < wf.size(); ++i) wh[i] = FloatToHalf(wf[i]);
    for (size_t i = 0; i < xf.size(); ++i) xh[i] = FloatToHalf(xf[i]);
    return gpu->Upload(w.p, wh.data(), wh.size() * 2).ok() && gpu->Upload(x.p, xh.data(), xh.size() * 2).ok();
  }
};

// y = x . W^T by LaunchGemmF16 under the current DenseGemmConfig / DenseTileConfig,
// into an output that starts as NaN.
std::vector<float> RunGemmF16(GpuBackend* gpu, const F16Operands& ops, const GemmShape& sh) {
  Buf y(gpu, std::vector<float>(size_t(sh.n) * sh.rows, std::nanf("")));
  gpu::LaunchGemmF16(static_cast<const uint16_t*>(ops.w.p), sh.rows, sh.cols, static_cast<const uint16_t*>(ops.x.p),
                     y.p, sh.n, gpu->stream());
  EXPECT_TRUE(gpu::LastLaunchError().ok);
  EXPECT_TRUE(gpu->Synchronize().ok());
  return y.Get();
}

class GpuDense : public ::testing::TestWithParam<GgmlType> {};

// Every value of the f16 copy is the CPU's float dequantization rounded to f16
// (at most 1 ulp apart); rows not a multiple of anything, widths of one block up.
TEST_P(GpuDense, DequantizeMatchesCpu) {
  RF_REQUIRE_GPU(gpu);
  const GgmlType type = GetParam();
  ASSERT_TRUE(gpu::DequantizeF16Supported(type));
  std::mt19937 rng(std::random_device{}());
  const bool k_quant = GetTypeInfo(type)->block_size == 256;
  struct Shape {
    int64_t rows, cols;
  };
  const std::vector<Shape> shapes = k_quant ? std::vector<Shape>{{1, 256}, {17, 512}, {129, 768}, {300, 2816}}
                                            : std::vector<Shape>{{1, 32}, {17, 96}, {129, 800}, {300, 2848}};
  for (Shape sh : shapes) {
    HostTensor t = MakeTensor(rng, type, sh.rows, sh.cols, 0.7f);
    const auto want = Dequantize(t, sh.rows, sh.cols);
    DevMem w(t.bytes.size()), out(size_t(sh.rows) * sh.cols * 2 + 16);
    ASSERT_TRUE(gpu->Upload(w.p, t.bytes.data(), t.bytes.size()).ok());
    ASSERT_TRUE(gpu::Memset(out.p, 0xff, size_t(sh.rows) * sh.cols * 2, gpu->stream()).ok);  // NaN halves
    gpu::LaunchDequantizeF16(type, w.p, sh.rows, sh.cols, static_cast<uint16_t*>(out.p), gpu->stream());
    ASSERT_TRUE(gpu::LastLaunchError().ok);
    const auto got = DownloadHalves(gpu.get(), out.p, size_t(sh.rows) * sh.cols);
    int worst = 0;
    size_t worst_i = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(std::isfinite(HalfToFloat(got[i]))) << TypeName(type) << " element " << i;
      const int d = UlpDistance(got[i], FloatToHalf(want[i]));
      if (d > worst) worst = d, worst_i = i;
    }
    EXPECT_LE(worst, 1) << TypeName(type) << " rows " << sh.rows << " cols " << sh.cols << ": element "
                        << worst_i << " got " << HalfToFloat(got[worst_i]) << " want " << want[worst_i];
  }
}

// LaunchMatMul with dense scratch: the dense path is taken for large n and
// agrees with a double reference on f16-rounded operands; too little scratch
// or small n leaves it alone. Row counts 1, 17, 129, 4099.
TEST_P(GpuDense, LaunchMatMulDensePathMatchesReference) {
  RF_REQUIRE_GPU(gpu);
  if (!gpu::MatMulMmaAvailable()) GTEST_SKIP() << "device has no matrix cores: the dense path never runs";
  const GgmlType type = GetParam();
  std::mt19937 rng(std::random_device{}());
  const bool k_quant = GetTypeInfo(type)->block_size == 256;
  struct Shape {
    int64_t rows, cols;
    std::vector<int> ns;
  };
  const std::vector<Shape> shapes =
      k_quant ? std::vector<Shape>{{1, 256, {513}}, {17, 512, {255}}, {129, 768, {513, 64}}, {4099, 256, {129, 96}}}
              : std::vector<Shape>{{1, 32, {513}}, {17, 96, {255}}, {129, 800, {513, 64}}, {4099, 224, {129, 96}}};
  const GpuConfigGuard restore_settings;
  for (const Shape& sh : shapes) {
    HostTensor t = MakeTensor(rng, type, sh.rows, sh.cols);
    auto wg = gpu->LoadWeight(t.info);
    ASSERT_TRUE(wg.ok()) << wg.status();
    const auto wf = Dequantize(t, sh.rows, sh.cols);
    for (int n : sh.ns) {
      const std::string what = std::string(TypeName(type)) + " rows " + std::to_string(sh.rows) + " cols " +
                               std::to_string(sh.cols) + " n " + std::to_string(n);
      const auto x = RandomVec(rng, size_t(n) * sh.cols);
      const auto ref16 = ReferenceF16Gemm(wf, sh.rows, sh.cols, x, n);
      Buf xg(gpu.get(), x);
      const std::vector<float> poison(size_t(n) * sh.rows, std::nanf(""));
      DevMem w16(gpu::MatMulDenseWeightBytes(type, sh.rows, sh.cols) + 256);
      DevMem x16(gpu::MatMulDenseActivationBytes(sh.cols, n));
      gpu::DenseScratch d;
      d.w16 = w16.p;
      d.w16_bytes = gpu::MatMulDenseWeightBytes(type, sh.rows, sh.cols) + 256;
      d.x16 = x16.p;
      d.x16_bytes = gpu::MatMulDenseActivationBytes(sh.cols, n);
      DevMem qscratch(gpu::MatMulScratchBytes(sh.cols, n));
      // Auto tile and split, both row tiles, and a forced K split; min_n 9 (the
      // floor) so the batched-decode sizes (64, 96) take the path too.
      for (gpu::DenseGemmConfig cfg : {gpu::DenseGemmConfig{0, 0, 9, 0, 0}, gpu::DenseGemmConfig{128, 1, 9, 0, 0},
                                       gpu::DenseGemmConfig{256, 0, 9, 0, 0}, gpu::DenseGemmConfig{0, 3, 9, 0, 0},
                                       gpu::DenseGemmConfig{0, 0, 9, 32, -1}}) {
        gpu::SetDenseGemmConfig(cfg);
        const bool takes = gpu::MatMulDenseTakes(type, wg->data, sh.rows, sh.cols, n, d);
        EXPECT_EQ(takes, type != GgmlType::F32) << what;
        Buf y(gpu.get(), poison);
        gpu::LaunchMatMul(type, wg->data, sh.rows, sh.cols, xg.p, y.p, n, qscratch.p, d, gpu->stream());
        ASSERT_TRUE(gpu::LastLaunchError().ok);
        ASSERT_TRUE(gpu->Synchronize().ok());
        const auto got = y.Get();
        const std::string cfg_s = " tile " + std::to_string(cfg.row_tile) + " splits " + std::to_string(cfg.splits);
        // The old paths (F32) round differently: only f16 accuracy is asked of them here.
        EXPECT_LE(RelErr(got, ref16), takes ? 1e-4 : 1e-2) << "vs f16-rounded double reference, " << what << cfg_s;
      }
      // Too little scratch, or small n: not taken (the old paths run).
      gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{});
      gpu::DenseScratch small = d;
      small.x16_bytes = 16;
      EXPECT_FALSE(gpu::MatMulDenseTakes(type, wg->data, sh.rows, sh.cols, n, small)) << what;
      if (type != GgmlType::F16) {
        small = d;
        small.w16_bytes = 16;
        EXPECT_FALSE(gpu::MatMulDenseTakes(type, wg->data, sh.rows, sh.cols, n, small)) << what;
      }
      const int below = gpu::DenseMinTokensFor(type, sh.rows, sh.cols) - 1;
      EXPECT_FALSE(gpu::MatMulDenseTakes(type, wg->data, sh.rows, sh.cols, std::min(below, n), d)) << what;
      EXPECT_FALSE(gpu::MatMulDenseTakes(type, wg->data, sh.rows, sh.cols, gpu::kSmallBatchMax, d)) << what;
      // The three crossovers: per shape, prepared operands, resident weights
      // (which lower only the general one; each rule's first n takes the path,
      // the n before it does not).
      if (type != GgmlType::F32) {
        gpu::DenseScratch rule = d;
        rule.x16_bytes = gpu::MatMulDenseActivationBytes(sh.cols, n);
        for (int r = 0; r < 3; ++r) {
          rule.operands_prepared = r == 1;
          rule.weights_resident = r == 2;
          const int per_shape = gpu::DenseMinTokensFor(type, sh.rows, sh.cols);
          const int first = r == 0   ? per_shape
                            : r == 1 ? std::min(per_shape, gpu::kDenseMinTokens)
                            : per_shape == gpu::kDenseMinTokens ? gpu::DenseMinTokensResident()
                                                                : per_shape;
          if (first > n) continue;  // the scratch is sized for n
          EXPECT_TRUE(gpu::MatMulDenseTakes(type, wg->data, sh.rows, sh.cols, first, rule)) << what << " rule " << r;
          EXPECT_FALSE(gpu::MatMulDenseTakes(type, wg->data, sh.rows, sh.cols, first - 1, rule)) << what << " rule " << r;
        }
      }
    }
  }
}

// Through the backend's MatMul (its own scratch, sized at LoadWeight): n above
// the default crossover takes the dense path; the result matches the double
// reference on the unrounded operands within f16 accuracy.
TEST_P(GpuDense, BackendMatMulLargeN) {
  RF_REQUIRE_GPU(gpu);
  const GgmlType type = GetParam();
  std::mt19937 rng(std::random_device{}());
  const bool k_quant = GetTypeInfo(type)->block_size == 256;
  const int64_t rows = 333, cols = k_quant ? 768 : 800;
  const int n = gpu::kDenseMinTokens + 1;
  HostTensor t = MakeTensor(rng, type, rows, cols);
  auto wg = gpu->LoadWeight(t.info);
  ASSERT_TRUE(wg.ok()) << wg.status();
  const auto x = RandomVec(rng, size_t(n) * cols);
  Buf xg(gpu.get(), x), y(gpu.get(), std::vector<float>(size_t(n) * rows, std::nanf("")));
  gpu->MatMul(*wg, xg.p, y.p, n);
  ASSERT_TRUE(gpu->Synchronize().ok());
  const auto wf = Dequantize(t, rows, cols);
  std::vector<float> ref(size_t(n) * rows);
  for (int i = 0; i < n; ++i) {
    for (int64_t r = 0; r < rows; ++r) {
      double acc = 0.0;
      for (int64_t k = 0; k < cols; ++k) acc += double(x[size_t(i) * cols + k]) * wf[r * cols + k];
      ref[size_t(i) * rows + r] = static_cast<float>(acc);
    }
  }
  EXPECT_LE(RelErr(y.Get(), ref), 3e-3) << TypeName(type);
}

// The f16 GEMM alone on random f16 operands: every row tile, K step, split, and n on
// both sides of the 128-token tile, rows / cols that fit no tile.
TEST(GpuDenseGemm, GemmF16AwkwardSizes) {
  RF_REQUIRE_GPU(gpu);
  if (!gpu::MatMulMmaAvailable()) GTEST_SKIP() << "device has no matrix cores";
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  for (GemmShape sh : {GemmShape{1, 40, 129}, GemmShape{17, 1000, 255}, GemmShape{129, 32, 513},
                       GemmShape{4099, 264, 129}, GemmShape{300, 4104, 200}}) {
    const F16Operands ops(rng, sh);
    ASSERT_TRUE(ops.Upload(gpu.get()));
    const auto ref = ReferenceF16Gemm(ops.wf, sh.rows, sh.cols, ops.xf, sh.n);
    // {row tile, splits, min_n, K step, overlap}: every kernel variant, with and
    // without K splits; the last three with 4 pipeline stages (DenseTileConfig).
    const gpu::DenseGemmConfig cfgs[] = {
        gpu::DenseGemmConfig{128, 1, 0, 0, 0},  gpu::DenseGemmConfig{256, 1, 0, 0, 0},
        gpu::DenseGemmConfig{0, 0, 0, 0, 0},    gpu::DenseGemmConfig{128, 5, 0, 0, 0},
        gpu::DenseGemmConfig{128, 1, 0, 32, 1}, gpu::DenseGemmConfig{256, 3, 0, 32, 0},
        gpu::DenseGemmConfig{128, 2, 0, 0, 1},  gpu::DenseGemmConfig{256, 1, 0, 32, -1},
        gpu::DenseGemmConfig{128, 1, 0, 32, -1}, gpu::DenseGemmConfig{256, 1, 0, 0, -1},
        gpu::DenseGemmConfig{224, 1, 0, 0, 0},  gpu::DenseGemmConfig{224, 3, 0, 0, 0},
        gpu::DenseGemmConfig{224, 1, 0, 0, 0},  gpu::DenseGemmConfig{256, 1, 0, 0, 0},
        gpu::DenseGemmConfig{224, 2, 0, 0, 0}};
    constexpr int kCfgs = sizeof(cfgs) / sizeof(cfgs[0]), kDeepFrom = kCfgs - 3;
    for (int ci = 0; ci < kCfgs; ++ci) {
      const gpu::DenseGemmConfig& cfg = cfgs[ci];
      gpu::SetDenseGemmConfig(cfg);
      gpu::SetDenseTileConfig(gpu::DenseTileConfig{0, ci >= kDeepFrom ? 4 : 3, 0});
      EXPECT_LE(RelErr(RunGemmF16(gpu.get(), ops, sh), ref), 1e-4) << "rows " << sh.rows << " cols " << sh.cols << " n " << sh.n
                                            << " tile " << cfg.row_tile << " splits " << cfg.splits
                                            << " k step " << cfg.k_step << " overlap " << cfg.overlap
                                            << (ci >= kDeepFrom ? " 4 stages" : "");
    }
  }
}

// Without a K split every tile and pipeline depth accumulates each output in
// the same order (64-wide K steps, 16-wide MMA slices in sequence), so the
// 128 x 224 tile and 4 stages give the old 128 x 256 / 3-stage results bit
// for bit; and the automatic choice with the 224 tile allowed (a shape where
// it is taken on a 132-SM H100, 14336 x 520 at n = 512, and ones where it is
// not) equals the automatic choice without it.
TEST(GpuDenseGemm, Tile224AndDeepPipelineBitIdentical) {
  RF_REQUIRE_GPU(gpu);
  if (!gpu::MatMulMmaAvailable()) GTEST_SKIP() << "device has no matrix cores";
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  gpu::SetDenseWgmma(false);  // the mma.sync kernel's variants (the wgmma one: test_gpu_matmul_dense_wgmma.cc)
  for (GemmShape sh : {GemmShape{14336, 520, 512}, GemmShape{4099, 264, 129}, GemmShape{300, 1032, 200}}) {
    const F16Operands ops(rng, sh);
    ASSERT_TRUE(ops.Upload(gpu.get()));
    auto run = [&](gpu::DenseGemmConfig cfg, gpu::DenseTileConfig tiles) {
      gpu::SetDenseGemmConfig(cfg);
      gpu::SetDenseTileConfig(tiles);
      return RunGemmF16(gpu.get(), ops, sh);
    };
    const auto want = run(gpu::DenseGemmConfig{256, 1, 0, 0, 0}, gpu::DenseTileConfig{-1, 3, 0});
    for (float f : want) ASSERT_TRUE(std::isfinite(f));
    const std::string what = std::to_string(sh.rows) + "x" + std::to_string(sh.cols) + " n " + std::to_string(sh.n);
    auto same = [&](const std::vector<float>& got, const char* how) {
      ASSERT_EQ(got.size(), want.size());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0) << what << " " << how;
    };
    same(run(gpu::DenseGemmConfig{224, 1, 0, 0, 0}, gpu::DenseTileConfig{-1, 3, 0}), "224 tile");
    same(run(gpu::DenseGemmConfig{224, 1, 0, 0, 0}, gpu::DenseTileConfig{-1, 4, 0}), "224 tile, 4 stages");
    same(run(gpu::DenseGemmConfig{256, 1, 0, 0, 0}, gpu::DenseTileConfig{-1, 4, 0}), "256 tile, 4 stages");
    same(run(gpu::DenseGemmConfig{128, 1, 0, 0, 0}, gpu::DenseTileConfig{-1, 3, 0}), "128 tile");
    // Automatic tiles (K split only on short grids: none of these shapes at
    // 1 split), 224 allowed or not.
    same(run(gpu::DenseGemmConfig{0, 1, 0, 0, 0}, gpu::DenseTileConfig{1, 0, 0}), "auto, 224 allowed");
    same(run(gpu::DenseGemmConfig{0, 1, 0, 0, 0}, gpu::DenseTileConfig{-1, 0, 0}), "auto, no 224");
    same(run(gpu::DenseGemmConfig{0, 1, 0, 0, 0}, gpu::DenseTileConfig{1, 4, 128}), "auto, short grids 128");
  }
}

// The activation conversion: exact round-to-nearest-even, odd totals and an
// unaligned source included.
TEST(GpuDenseGemm, ConvertF16RoundsToNearest) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  for (int64_t total : {1, 7, 1000, 4097 * 3}) {
    auto v = RandomVec(rng, size_t(total) + 1, 3.0f);
    v[0] = 1e-7f;  // a subnormal half
    Buf x(gpu.get(), v);
    DevMem out(size_t(total) * 2 + 16);
    for (int off : {0, 1}) {
      const int64_t cnt = total - off > 0 ? total - off : total;
      gpu::LaunchConvertF16(x.p + off, cnt, static_cast<uint16_t*>(out.p), gpu->stream());
      ASSERT_TRUE(gpu::LastLaunchError().ok);
      const auto got = DownloadHalves(gpu.get(), out.p, size_t(cnt));
      for (int64_t i = 0; i < cnt; ++i) {
        ASSERT_EQ(got[i], FloatToHalf(v[i + off])) << "total " << total << " offset " << off << " i " << i;
      }
    }
  }
}

// The pieces the backend's dense-prefill options launch separately compute
// what the plain path does, bit for bit: the dequantization in other grids
// (one row per block, as on the side stream, and a short grid) and the GEMM
// on an f16 input converted beforehand (LaunchMatMulDenseX16).
TEST_P(GpuDense, DequantizeGridsAndX16InputMatchPlainPath) {
  RF_REQUIRE_GPU(gpu);
  if (!gpu::MatMulMmaAvailable()) GTEST_SKIP() << "device has no matrix cores: the dense path never runs";
  const GgmlType type = GetParam();
  std::mt19937 rng(std::random_device{}());
  const bool k_quant = GetTypeInfo(type)->block_size == 256;
  const int64_t rows = 333, cols = k_quant ? 768 : 800;
  const int n = 257;
  HostTensor t = MakeTensor(rng, type, rows, cols);
  const size_t halves = size_t(rows) * cols;
  DevMem w(t.bytes.size()), a(halves * 2 + 16), b(halves * 2 + 16);
  ASSERT_TRUE(gpu->Upload(w.p, t.bytes.data(), t.bytes.size()).ok());
  gpu::LaunchDequantizeF16(type, w.p, rows, cols, static_cast<uint16_t*>(a.p), gpu->stream());
  const auto want = DownloadHalves(gpu.get(), a.p, halves);
  for (int64_t blocks : {rows, int64_t{7}, int64_t{1}}) {
    ASSERT_TRUE(gpu::Memset(b.p, 0xff, halves * 2, gpu->stream()).ok);  // NaN halves
    gpu::LaunchDequantizeF16Blocks(type, w.p, rows, cols, static_cast<uint16_t*>(b.p), blocks, gpu->stream());
    ASSERT_TRUE(gpu::LastLaunchError().ok);
    EXPECT_TRUE(DownloadHalves(gpu.get(), b.p, halves) == want) << TypeName(type) << " blocks " << blocks;
  }
  // GEMM from an f16 input made beforehand vs the plain path (no K split:
  // atomics would reorder the last bits).
  const GpuConfigGuard restore_settings;
  gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{0, 1, 0, 0, 0});
  const auto x = RandomVec(rng, size_t(n) * cols);
  Buf xg(gpu.get(), x);
  DevMem w16(gpu::MatMulDenseWeightBytes(type, rows, cols) + 256), x16(gpu::MatMulDenseActivationBytes(cols, n));
  gpu::DenseScratch d;
  d.w16 = w16.p;
  d.w16_bytes = gpu::MatMulDenseWeightBytes(type, rows, cols) + 256;
  d.x16 = x16.p;
  d.x16_bytes = gpu::MatMulDenseActivationBytes(cols, n);
  const std::vector<float> poison(size_t(n) * rows, std::nanf(""));
  Buf y1(gpu.get(), poison), y2(gpu.get(), poison);
  gpu::LaunchMatMulDense(type, w.p, rows, cols, xg.p, y1.p, n, d, gpu->stream());
  ASSERT_TRUE(gpu::Memset(x16.p, 0xff, d.x16_bytes, gpu->stream()).ok);
  gpu::LaunchConvertF16(xg.p, int64_t(n) * cols, static_cast<uint16_t*>(x16.p), gpu->stream());
  gpu::LaunchMatMulDenseX16(type, w.p, rows, cols, static_cast<const uint16_t*>(x16.p), y2.p, n, d, gpu->stream());
  ASSERT_TRUE(gpu::LastLaunchError().ok);
  ASSERT_TRUE(gpu->Synchronize().ok());
  const auto r1 = y1.Get(), r2 = y2.Get();
  ASSERT_EQ(r1.size(), r2.size());
  EXPECT_EQ(std::memcmp(r1.data(), r2.data(), r1.size() * sizeof(float)), 0) << TypeName(type);
  for (float f : r2) ASSERT_TRUE(std::isfinite(f)) << TypeName(type);
}

INSTANTIATE_TEST_SUITE_P(Types, GpuDense,
                         ::testing::Values(GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0,
                                           GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                                           GgmlType::Q2_K, GgmlType::Q3_K),
                         [](const ::testing::TestParamInfo<GgmlType>& i) {
                           return std::string(TypeName(i.param));
                         });

}  // namespace
}  // namespace rocmforge::gputest
