// Grouped batched GEMM (gpu::LaunchMatMulMmaGroup, GpuBackend's GemmGroup):
// several weights of one type reading the same activations in one launch.
// Without K splits (GemmConfig::splits = 1) every part must equal a separate
// LaunchMatMulMma of it bit for bit (the same kernel, the same summation);
// with the automatic splits (atomics, another split plan) within f16 rounding
// of both the separate launch and a double-precision reference. Parts have
// 1024, 4096 and odd row counts; outputs start as NaN; inputs are fresh random.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "kernels/gpu_api.h"
#include "tests/gpu/gpu_config_guard.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

std::vector<float> Reference(const HostTensor& t, int64_t rows, int64_t cols, const std::vector<float>& x, int n) {
  std::vector<float> w(size_t(rows) * cols);
  const size_t row_bytes = RowBytes(t.info.type, cols);
  for (int64_t r = 0; r < rows; ++r) {
    quant::DequantizeRow(t.info.type, t.bytes.data() + r * row_bytes, w.data() + r * cols, cols);
  }
  return DoubleGemm(w, rows, cols, x, n);
}

class GpuGemmGroup : public ::testing::TestWithParam<GgmlType> {};

TEST_P(GpuGemmGroup, GroupedLaunchEqualsSeparateLaunches) {
  RF_REQUIRE_GPU(gpu);
  const GgmlType type = GetParam();
  std::mt19937 rng(std::random_device{}());
  // Widths with room for K splits (v5: >= 2 spans a split; GemmMmaKernel: >= 8 steps).
  struct G {
    std::vector<int64_t> rows;
    int64_t cols;
  };
  const std::vector<G> groups = {{{1024, 333, 4096}, 1024}, {{4096, 1024, 1024}, 512}, {{77, 1029}, 2048}, {{200}, 2048}};
  const GpuConfigGuard restore_settings;
  for (const G& grp : groups) {
    const std::vector<int64_t>& rows = grp.rows;
    const int64_t cols = grp.cols;
    std::vector<HostTensor> ts;
    std::vector<Weight> ws;
    for (int64_t r : rows) {
      ts.push_back(MakeTensor(rng, type, r, cols));
      auto w = gpu->LoadWeight(ts.back().info);
      ASSERT_TRUE(w.ok()) << w.status();
      ws.push_back(*w);
    }
    for (int n : {9, 17, 32, 33, 64, 96, 128}) {
      const auto x = RandomVec(rng, size_t(n) * cols);
      Buf xg(gpu.get(), x);
      std::vector<std::unique_ptr<Buf>> ya, yb;
      std::vector<gpu::MatVecPart> parts;
      for (size_t i = 0; i < rows.size(); ++i) {
        const std::vector<float> poison(size_t(n) * rows[i], std::nanf(""));
        ya.push_back(std::make_unique<Buf>(gpu.get(), poison));
        yb.push_back(std::make_unique<Buf>(gpu.get(), poison));
        parts.push_back(gpu::MatVecPart{ws[i].data, ya.back()->p, rows[i]});
      }
      // The double reference on a few (it is slow): every n of the small parts, n 33 of all, 128 of most.
      std::vector<std::vector<float>> refs(rows.size());
      for (size_t i = 0; i < rows.size(); ++i) {
        if (rows[i] < 1000 || n == 33 || (n == 128 && rows[i] < 2000)) refs[i] = Reference(ts[i], rows[i], cols, x, n);
      }
      // splits 1: bit-identical; 0: automatic (atomics); narrow 2 / -1: the v4
      // kernel (separate launches inside) and the older GemmMmaKernel.
      for (gpu::GemmConfig cfg : {gpu::GemmConfig{0, 0, 0, 1}, gpu::GemmConfig{0, 0, 0, 0},
                                  gpu::GemmConfig{0, 0, 2, 1}, gpu::GemmConfig{0, 0, -1, 1},
                                  gpu::GemmConfig{0, 0, -1, 0}}) {
        gpu::SetGemmConfig(cfg);
        const std::string what = std::string(TypeName(type)) + " parts " + std::to_string(rows.size()) +
                                 " first rows " + std::to_string(rows[0]) + " n " + std::to_string(n) +
                                 " narrow " + std::to_string(cfg.narrow) + " splits " + std::to_string(cfg.splits);
        gpu::LaunchMatMulMmaGroup(type, cols, xg.p, n, parts.data(), static_cast<int>(parts.size()), gpu->stream());
        for (size_t i = 0; i < rows.size(); ++i) {
          gpu::LaunchMatMulMma(type, ws[i].data, rows[i], cols, xg.p, yb[i]->p, n, gpu->stream());
        }
        ASSERT_TRUE(gpu::LastLaunchError().ok) << what;
        ASSERT_TRUE(gpu->Synchronize().ok()) << what;
        for (size_t i = 0; i < rows.size(); ++i) {
          const auto a = ya[i]->Get(), b = yb[i]->Get();
          if (cfg.splits == 1) {
            EXPECT_TRUE(a == b) << "part " << i << " not bit-identical, " << what;
          } else {
            EXPECT_LE(RelErr(a, b), 1e-5) << "part " << i << ", " << what;
          }
          if (!refs[i].empty()) {
            EXPECT_LE(RelErr(a, refs[i]), 3e-3) << "part " << i << ", " << what;
          }
        }
      }
    }
  }
}

// The backend holds consecutive batched MatMuls with the same x, type and
// width (at most three) and launches them as one group: a layer's matmuls
// with grouping on must equal grouping off, bit for bit without K splits and
// within rounding with them. The layer mixes types as Q4_K_M does (V in
// Q6_K), has a fourth matmul on the same x (a new group), and chains outputs
// into inputs so a held group must launch before its outputs are read, and
// the held producers of a group's input (SwiGLU before the down projection)
// must launch before the group.
TEST(GpuGemmGroupBackend, GroupingOnEqualsOff) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  const int64_t dim = 512, kv = 256, ffn = 768;
  struct W {
    GgmlType type;
    int64_t rows, cols;
  };
  const std::vector<W> spec = {{GgmlType::Q4_K, dim, dim}, {GgmlType::Q4_K, kv, dim}, {GgmlType::Q6_K, kv, dim},
                               {GgmlType::Q4_K, 129, dim}, {GgmlType::Q4_K, dim, dim}, {GgmlType::Q4_K, ffn, dim},
                               {GgmlType::Q4_K, ffn, dim}, {GgmlType::Q6_K, dim, ffn}};
  std::vector<HostTensor> ts;
  std::vector<Weight> w;
  for (const W& s : spec) {
    // Small weights: every output stays far inside the f16 range of the GEMM's
    // activations (an overflow to inf would hide an ordering error as NaN).
    ts.push_back(MakeTensor(rng, s.type, s.rows, s.cols, 0.05f));
    auto l = gpu->LoadWeight(ts.back().info);
    ASSERT_TRUE(l.ok()) << l.status();
    w.push_back(*l);
  }
  const GpuConfigGuard restore_settings;
  for (int splits : {1, 0}) {
    gpu::GemmConfig cfg;
    cfg.splits = splits;
    gpu::SetGemmConfig(cfg);
    for (int n : {9, 32, 64, 96, 128}) {
      const auto x0 = RandomVec(rng, size_t(n) * dim);
      std::vector<std::vector<float>> results[2];
      for (int grouped = 0; grouped < 2; ++grouped) {
        gpu->SetGemmGrouping(grouped == 1);
        Buf x(gpu.get(), x0), q(gpu.get(), size_t(n) * dim), k(gpu.get(), size_t(n) * kv),
            v(gpu.get(), size_t(n) * kv), e(gpu.get(), size_t(n) * 129), o(gpu.get(), size_t(n) * dim),
            g(gpu.get(), size_t(n) * ffn), u(gpu.get(), size_t(n) * ffn), d(gpu.get(), size_t(n) * dim);
        gpu->MatMul(w[0], x.p, q.p, n);
        gpu->MatMul(w[1], x.p, k.p, n);
        gpu->MatMul(w[2], x.p, v.p, n);  // another type: a new group
        gpu->MatMul(w[3], x.p, e.p, n);  // back to Q4_K on the same x
        gpu->MatMul(w[4], q.p, o.p, n);  // reads a held group's output
        gpu->MatMul(w[5], o.p, g.p, n);
        gpu->MatMul(w[6], o.p, u.p, n);
        gpu->SwiGLU(g.p, u.p, g.p, int64_t(n) * ffn);
        gpu->MatMul(w[7], g.p, d.p, n);
        ASSERT_TRUE(gpu->Synchronize().ok());
        for (Buf* r : {&q, &k, &v, &e, &o, &g, &d}) results[grouped].push_back(r->Get());
      }
      for (size_t i = 0; i < results[0].size(); ++i) {
        for (float f : results[1][i]) ASSERT_TRUE(std::isfinite(f)) << "buffer " << i << " n " << n;
        if (splits == 1) {
          EXPECT_TRUE(results[0][i] == results[1][i]) << "buffer " << i << " n " << n;
        } else {
          EXPECT_LE(RelErr(results[1][i], results[0][i]), 1e-4) << "buffer " << i << " n " << n;
        }
      }
    }
  }
  gpu->SetGemmGrouping(true);
}

INSTANTIATE_TEST_SUITE_P(Types, GpuGemmGroup,
                         ::testing::Values(GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::F16,
                                           GgmlType::Q4_0, GgmlType::F32),
                         [](const ::testing::TestParamInfo<GgmlType>& i) { return std::string(TypeName(i.param)); });

}  // namespace
}  // namespace rocmforge::gputest
