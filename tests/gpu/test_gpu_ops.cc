// Row and elementwise ops of the GPU backend against the CPU backend on fresh
// random inputs of awkward sizes: embedding (every weight type), RMSNorm (+
// fused residual add), RoPE in both orders at positions up to 5000, bias add,
// SwiGLU, add and row gather; the fused kernels (norm / SwiGLU + activation
// quantization, RoPE + KV store) against the CPU and the unfused kernels, and
// the backend with its fusions on against itself with them off.
#include <cstring>
#include <initializer_list>
#include <numeric>

#include "engine/common/fp16.h"
#include "kernels/act_quant_launch.h"
#include "tests/gpu/gpu_config_guard.h"
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
                        GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q2_K, GgmlType::Q3_K}) {
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

// ---- fused kernels ----------------------------------------------------------

// Host mirror of the device's ActQ8 (kernels/quant_device.h).
struct HostActQ8 {
  float d;
  float s;
  int8_t qs[32];
};
static_assert(sizeof(HostActQ8) == 40);

// Raw device bytes, freed with the backend.
struct DevBytes {
  Backend* b;
  void* p = nullptr;
  size_t n;
  DevBytes(Backend* be, size_t bytes) : b(be), n(bytes) {
    auto a = be->Alloc(bytes);
    EXPECT_TRUE(a.ok());
    p = a.ok() ? *a : nullptr;
  }
  ~DevBytes() { b->Free(p); }
  template <typename T>
  std::vector<T> Get() const {
    std::vector<T> v(n / sizeof(T));
    EXPECT_TRUE(b->Download(v.data(), p, v.size() * sizeof(T)).ok());
    return v;
  }
};

// Expects the GPU's slices of `values` (n rows of `cols`) to hold exactly the
// integers and scales the CPU reference quantizer makes from the same floats.
void ExpectSameQuantization(GgmlType weight_type, const std::vector<float>& values, int n,
                            int64_t cols, const std::vector<HostActQ8>& got,
                            const std::string& what) {
  const bool q8k = quant::ActivationType(weight_type) == GgmlType::Q8_K;
  std::vector<uint8_t> row(quant::ActivationRowBytes(weight_type, cols));
  int bad = 0;
  for (int r = 0; r < n; ++r) {
    quant::QuantizeActivation(weight_type, values.data() + r * cols, row.data(), cols);
    for (int64_t j = 0; j < cols / 32; ++j) {
      const HostActQ8& g = got[r * cols / 32 + j];
      float d;
      const int8_t* q;
      if (q8k) {
        const auto* b = reinterpret_cast<const BlockQ8_K*>(row.data()) + j / 8;
        d = b->d;
        q = b->qs + (j % 8) * 32;
      } else {
        const auto* b = reinterpret_cast<const BlockQ8_0*>(row.data()) + j;
        d = Fp16ToFp32(b->d);
        q = b->qs;
      }
      int sum = 0;
      for (int i = 0; i < 32; ++i) sum += q[i];
      const bool same = g.d == d && g.s == d * static_cast<float>(sum) &&
                        std::memcmp(g.qs, q, 32) == 0;
      if (!same && ++bad <= 3) {
        ADD_FAILURE() << what << ": slice " << j << " of row " << r << " differs (d " << g.d
                      << " vs " << d << ")";
      }
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

// A row that is not whole blocks of its type is refused at load (kernels read
// whole blocks, so it would be read past its end).
TEST(GpuOps, LoadWeightRefusesPartialBlocks) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(3);
  HostTensor ok = MakeTensor(rng, GgmlType::Q4_K, 4, 512);
  EXPECT_TRUE(gpu->LoadWeight(ok.info).ok());
  HostTensor bad = MakeTensor(rng, GgmlType::Q4_K, 4, 512);
  bad.info.dims[0] = 576;  // 2.25 super-blocks a row
  const auto w = gpu->LoadWeight(bad.info);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("whole Q4_K blocks"), std::string_view::npos) << w.status();
}

// The grid of the activation-quantizing fusion tests: f(type, width, n) for
// each width of each case and n = 1, 3, 8 rows.
struct QuantCase {
  GgmlType type;
  std::vector<int> widths;
};
template <typename F>
void ForEachQuantCase(std::initializer_list<QuantCase> cases, F f) {
  for (const QuantCase& c : cases) {
    for (int width : c.widths) {
      for (int n : {1, 3, 8}) f(c.type, width, n);
    }
  }
}

TEST(GpuOps, FusedNormQuantizeMatchesCpu) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  std::mt19937 rng(std::random_device{}());
  ForEachQuantCase({{GgmlType::Q8_0, {96, 352, 4096, 8192}}, {GgmlType::Q4_K, {256, 768, 4096, 8192}}},
                   [&](GgmlType type, int dim, int n) {
    ASSERT_TRUE(gpu::RmsNormQuantizeSupported(type, dim));
    for (int variant = 0; variant < 4; ++variant) {  // {plain, add} x {8-per-lane, register kernel}
      const bool add = variant % 2 == 1;
      gpu::SetRmsNormQuantKernel(variant < 2 ? gpu::NormQuantKernel::kRunLayout : gpu::NormQuantKernel::kRegister);
      const std::string what = std::string(TypeName(type)) + (add ? " add" : "") + " dim " +
                               std::to_string(dim) + " n " + std::to_string(n) +
                               (variant < 2 ? "" : " register kernel");
      HostTensor w = MakeTensor(rng, GgmlType::F32, 1, dim);
      auto wg = gpu->LoadWeight(w.info);
      auto wc = cpu->LoadWeight(w.info);
      ASSERT_TRUE(wg.ok() && wc.ok());
      const auto x = RandomVec(rng, size_t(n) * dim, 2.0f);
      const auto r = RandomVec(rng, size_t(n) * dim, 1.0f);
      Buf xg(gpu.get(), x), xc(cpu.get(), x), rg(gpu.get(), r), rc(cpu.get(), r);
      Buf og(gpu.get(), x.size()), oc(cpu.get(), x.size());
      DevBytes xq(gpu.get(), size_t(n) * dim / 32 * sizeof(HostActQ8));
      const auto* wd = static_cast<const float*>(wg->data);
      if (add) {
        gpu::LaunchAddRmsNormQuantize(xg.p, rg.p, wd, og.p, n, dim, 1e-5f, type, xq.p, gpu->stream());
        cpu->AddRmsNorm(xc.p, rc.p, *wc, oc.p, n, dim, 1e-5f);
        EXPECT_LE(RelErr(xg.Get(), xc.Get()), 1e-6) << what;
      } else {
        gpu::LaunchRmsNormQuantize(xg.p, wd, og.p, n, dim, 1e-5f, type, xq.p, gpu->stream());
        cpu->RmsNorm(xc.p, *wc, oc.p, n, dim, 1e-5f);
      }
      const std::vector<float> out = og.Get();
      EXPECT_LE(RelErr(out, oc.Get()), 1e-5) << what;
      ExpectSameQuantization(type, out, n, dim, xq.Get<HostActQ8>(), what);
    }
    gpu::SetRmsNormQuantKernel(gpu::NormQuantKernel::kByRule);  // the default
  });
}

TEST(GpuOps, FusedSwiGLUQuantizeMatchesCpu) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  std::mt19937 rng(std::random_device{}());
  ForEachQuantCase({{GgmlType::Q4_0, {96, 352, 2816}}, {GgmlType::Q6_K, {256, 768, 2816}}},
                   [&](GgmlType type, int cols, int n) {
    const std::string what =
        std::string(TypeName(type)) + " cols " + std::to_string(cols) + " n " + std::to_string(n);
    const int64_t total = int64_t(n) * cols;
    const auto g = RandomVec(rng, total, 3.0f), u = RandomVec(rng, total, 1.0f);
    Buf gg(gpu.get(), g), gc(cpu.get(), g), ug(gpu.get(), u), uc(cpu.get(), u);
    DevBytes xq(gpu.get(), size_t(total) / 32 * sizeof(HostActQ8));
    // In place, as the model calls it (out = gate).
    gpu::LaunchSwiGLUQuantize(gg.p, ug.p, gg.p, total, type, xq.p, gpu->stream());
    cpu->SwiGLU(gc.p, uc.p, gc.p, total);
    const std::vector<float> out = gg.Get();
    EXPECT_LE(RelErr(out, gc.Get()), 1e-5) << what;
    ExpectSameQuantization(type, out, n, cols, xq.Get<HostActQ8>(), what);
  });
}

// The activation quantization alone (LaunchQuantizeActivation: 8 values per
// lane where the array is 16-byte aligned and whole slices / groups, else one
// value per thread) and with spans to zero (its `zero` argument): the
// CPU reference's integers and scales, and the spans zeroed.
TEST(GpuOps, QuantizeActivationMatchesCpu) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  ForEachQuantCase({{GgmlType::Q8_0, {96, 352, 4096}}, {GgmlType::Q4_K, {256, 768, 14336}}},
                   [&](GgmlType type, int cols, int n) {
    const int64_t total = int64_t(n) * cols;
    const auto x = RandomVec(rng, size_t(total) + 4, 2.0f);
    Buf xg(gpu.get(), x);
    for (int offset : {0, 1}) {  // 1: a misaligned array takes the per-value kernel
      const std::string what = std::string(TypeName(type)) + " cols " + std::to_string(cols) + " n " +
                               std::to_string(n) + " offset " + std::to_string(offset);
      DevBytes xq(gpu.get(), size_t(total) / 32 * sizeof(HostActQ8));
      gpu::LaunchQuantizeActivation(type, xg.p + offset, total, xq.p, gpu->stream());
      const std::vector<float> in(x.begin() + offset, x.begin() + offset + total);
      ExpectSameQuantization(type, in, n, cols, xq.Get<HostActQ8>(), what);
    }
    Buf z0(gpu.get(), RandomVec(rng, 1000)), z1(gpu.get(), RandomVec(rng, 37));
    gpu::ZeroSpans z;
    z.p[0] = z0.p, z.count[0] = 1000, z.p[1] = z1.p, z.count[1] = 37, z.n = 2;
    DevBytes xq(gpu.get(), size_t(total) / 32 * sizeof(HostActQ8));
    gpu::LaunchQuantizeActivation(type, xg.p, total, xq.p, gpu->stream(), z);
    const std::string what = std::string(TypeName(type)) + " zeroing cols " + std::to_string(cols);
    ExpectSameQuantization(type, std::vector<float>(x.begin(), x.begin() + total), n, cols, xq.Get<HostActQ8>(),
                           what);
    EXPECT_EQ(z0.Get(), std::vector<float>(1000, 0.0f)) << what;
    EXPECT_EQ(z1.Get(), std::vector<float>(37, 0.0f)) << what;
  });
}

// The fused producers with spans to zero: the same outputs as without
// (bit for bit) and the spans zeroed.
TEST(GpuOps, FusedProducersZeroSpans) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  const gpu::Stream st = gpu->stream();
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_K}) {
    for (int n : {1, 5, 32}) {
      const int dim = type == GgmlType::Q8_0 ? 352 : 768;
      const std::string what = std::string(TypeName(type)) + " n " + std::to_string(n);
      const size_t total = size_t(n) * dim;
      const auto x0 = RandomVec(rng, total, 2.0f), r0 = RandomVec(rng, total), w0 = RandomVec(rng, dim);
      Buf w(gpu.get(), w0), r(gpu.get(), r0);
      std::vector<float> outs[2][2];
      std::vector<HostActQ8> qs[2];
      for (int zeroing = 0; zeroing < 2; ++zeroing) {
        Buf x(gpu.get(), x0), out(gpu.get(), total), z0(gpu.get(), RandomVec(rng, 3000)),
            z1(gpu.get(), RandomVec(rng, 514));
        DevBytes xq(gpu.get(), total / 32 * sizeof(HostActQ8));
        gpu::ZeroSpans z;
        z.p[0] = z0.p, z.count[0] = 3000, z.p[1] = z1.p + 1, z.count[1] = 513, z.n = 2;  // the second misaligned
        if (zeroing == 1) {
          gpu::LaunchAddRmsNormQuantize(x.p, r.p, w.p, out.p, n, dim, 1e-5f, type, xq.p, st, z);
          EXPECT_EQ(z0.Get(), std::vector<float>(3000, 0.0f)) << what;
          const std::vector<float> z1v = z1.Get();
          EXPECT_EQ(std::vector<float>(z1v.begin() + 1, z1v.end()), std::vector<float>(513, 0.0f)) << what;
        } else {
          gpu::LaunchAddRmsNormQuantize(x.p, r.p, w.p, out.p, n, dim, 1e-5f, type, xq.p, st);
        }
        outs[zeroing][0] = x.Get();
        outs[zeroing][1] = out.Get();
        qs[zeroing] = xq.Get<HostActQ8>();
      }
      EXPECT_EQ(outs[0][0], outs[1][0]) << what;
      EXPECT_EQ(outs[0][1], outs[1][1]) << what;
      EXPECT_EQ(std::memcmp(qs[0].data(), qs[1].data(), qs[0].size() * sizeof(HostActQ8)), 0) << what;
      // SwiGLU + quantization with zeroing, in place as the model calls it.
      const size_t ff = size_t(n) * 1280;
      const auto g0 = RandomVec(rng, ff, 3.0f), u0 = RandomVec(rng, ff);
      Buf ga(gpu.get(), g0), gb(gpu.get(), g0), u(gpu.get(), u0), zz(gpu.get(), RandomVec(rng, 999));
      DevBytes qa(gpu.get(), ff / 32 * sizeof(HostActQ8)), qb(gpu.get(), ff / 32 * sizeof(HostActQ8));
      gpu::ZeroSpans z;
      z.p[0] = zz.p, z.count[0] = 999, z.n = 1;
      gpu::LaunchSwiGLUQuantize(ga.p, u.p, ga.p, int64_t(ff), type, qa.p, st);
      gpu::LaunchSwiGLUQuantize(gb.p, u.p, gb.p, int64_t(ff), type, qb.p, st, z);
      EXPECT_EQ(ga.Get(), gb.Get()) << what;
      const auto qva = qa.Get<HostActQ8>(), qvb = qb.Get<HostActQ8>();
      EXPECT_EQ(std::memcmp(qva.data(), qvb.data(), qva.size() * sizeof(HostActQ8)), 0) << what;
      EXPECT_EQ(zz.Get(), std::vector<float>(999, 0.0f)) << what;
    }
  }
}

// The fused RoPE + KV store kernel against RoPE and StoreKv run separately
// (the backend with fusions off): identical floats and cache bytes; the
// rotated rows also against the CPU.
TEST(GpuOps, FusedRopeStoreKvMatchesUnfused) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  std::mt19937 rng(std::random_device{}());
  for (int head_dim : {64, 128}) {
    for (bool neox : {false, true}) {
      for (int n : {1, 3, 8}) {
        const int n_heads = 6, n_kv = 2, kv_dim = n_kv * head_dim, blocks = 320;
        const int rot = neox ? head_dim / 2 : head_dim;  // partial rotation too
        const int start = static_cast<int>(rng() % 5000);
        const std::string what = "hd " + std::to_string(head_dim) + (neox ? " neox" : " norm") +
                                 " n " + std::to_string(n) + " pos " + std::to_string(start);
        KvCacheShape shape{1, n_kv, head_dim, 16, blocks};
        ASSERT_TRUE(gpu->InitKvCache(shape).ok());
        ASSERT_TRUE(cpu->InitKvCache(shape).ok());
        StepBatch b = OneSeqBatch(n, start, 16);
        ASSERT_TRUE(gpu->BeginStep(b).ok());
        ASSERT_TRUE(cpu->BeginStep(b).ok());
        const auto q = RandomVec(rng, size_t(n) * n_heads * head_dim);
        const auto k = RandomVec(rng, size_t(n) * kv_dim), v = RandomVec(rng, size_t(n) * kv_dim);
        const RopeStyle style = neox ? RopeStyle::kNeox : RopeStyle::kNorm;
        const float base = 5e5f;
        // Unfused reference on the GPU.
        gpu->SetFusion(false);
        Buf q1(gpu.get(), q), k1(gpu.get(), k), v1(gpu.get(), v);
        gpu->Rope(q1.p, n, n_heads, head_dim, rot, base, style);
        gpu->Rope(k1.p, n, n_kv, head_dim, rot, base, style);
        gpu->StoreKv(0, k1.p, v1.p);
        ASSERT_TRUE(gpu->Synchronize().ok());
        const size_t cache_elems = size_t(blocks) * 16 * kv_dim;
        std::vector<uint16_t> kc1(cache_elems), vc1(cache_elems), kc2(cache_elems), vc2(cache_elems);
        ASSERT_TRUE(gpu->Download(kc1.data(), gpu->KCache(0), cache_elems * 2).ok());
        ASSERT_TRUE(gpu->Download(vc1.data(), gpu->VCache(0), cache_elems * 2).ok());
        gpu->SetFusion(true);
        ASSERT_TRUE(gpu->InitKvCache(shape).ok());  // zeroed again
        ASSERT_TRUE(gpu->BeginStep(b).ok());
        // The fused kernel itself.
        Buf q2(gpu.get(), q), k2(gpu.get(), k), v2(gpu.get(), v);
        DevBytes pos(gpu.get(), n * sizeof(int32_t)), slots(gpu.get(), n * sizeof(int32_t));
        ASSERT_TRUE(gpu->Upload(pos.p, b.positions.data(), n * sizeof(int32_t)).ok());
        ASSERT_TRUE(gpu->Upload(slots.p, b.slots.data(), n * sizeof(int32_t)).ok());
        gpu::LaunchRopeStoreKv(q2.p, k2.p, v2.p, static_cast<const int32_t*>(pos.p),
                               static_cast<const int32_t*>(slots.p), n, n_heads, n_kv, head_dim, rot,
                               base, neox, const_cast<uint16_t*>(gpu->KCache(0)),
                               const_cast<uint16_t*>(gpu->VCache(0)), gpu->stream());
        ASSERT_TRUE(gpu->Synchronize().ok());
        ASSERT_TRUE(gpu->Download(kc2.data(), gpu->KCache(0), cache_elems * 2).ok());
        ASSERT_TRUE(gpu->Download(vc2.data(), gpu->VCache(0), cache_elems * 2).ok());
        EXPECT_EQ(q2.Get(), q1.Get()) << what;
        EXPECT_EQ(k2.Get(), k1.Get()) << what;
        EXPECT_TRUE(kc1 == kc2) << "K cache, " << what;
        EXPECT_TRUE(vc1 == vc2) << "V cache, " << what;
        // And the rotation against the CPU.
        Buf qc(cpu.get(), q);
        cpu->Rope(qc.p, n, n_heads, head_dim, rot, base, style);
        EXPECT_LE(RelErr(q2.Get(), qc.Get()), 1e-4) << what;
      }
    }
  }
}

// One Llama-style layer of ops (Add; RmsNorm; Q, K, V matvecs; RoPE Q and K;
// StoreKv; Attention; wo; AddRmsNorm; gate, up; SwiGLU; down) on the backend
// with fusions on and off, deferred as a decode graph: bit-identical results,
// so every fused path the backend picks computes what the unfused ops do.
TEST(GpuOps, FusionOnAndOffGiveIdenticalLayers) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q8_0}) {
    for (int n : {1, 3, 8}) {
      const int dim = 512, n_heads = 8, n_kv = 2, hd = 64, ffn = 768, kv_dim = n_kv * hd;
      HostTensor wq = MakeTensor(rng, type, dim, dim), wk = MakeTensor(rng, type, kv_dim, dim),
                 wv = MakeTensor(rng, type, kv_dim, dim), wo = MakeTensor(rng, type, dim, dim),
                 wg = MakeTensor(rng, type, ffn, dim), wu = MakeTensor(rng, type, ffn, dim),
                 wd = MakeTensor(rng, type, dim, ffn), n1 = MakeTensor(rng, GgmlType::F32, 1, dim),
                 n2 = MakeTensor(rng, GgmlType::F32, 1, dim);
      std::vector<Weight> w;
      for (HostTensor* t : {&wq, &wk, &wv, &wo, &wg, &wu, &wd, &n1, &n2}) {
        auto l = gpu->LoadWeight(t->info);
        ASSERT_TRUE(l.ok()) << l.status();
        w.push_back(*l);
      }
      const auto x0 = RandomVec(rng, size_t(n) * dim), h0 = RandomVec(rng, size_t(n) * dim);
      const int start = 100 + static_cast<int>(rng() % 300);
      std::vector<std::vector<float>> results[2];
      std::vector<uint16_t> caches[2];
      for (int fused = 0; fused < 2; ++fused) {
        gpu->SetFusion(fused == 1);
        KvCacheShape shape{1, n_kv, hd, 16, 32};
        ASSERT_TRUE(gpu->InitKvCache(shape).ok());
        Buf x(gpu.get(), x0), h(gpu.get(), h0), q(gpu.get(), size_t(n) * dim),
            k(gpu.get(), size_t(n) * kv_dim), v(gpu.get(), size_t(n) * kv_dim),
            attn(gpu.get(), size_t(n) * dim), g(gpu.get(), size_t(n) * ffn), u(gpu.get(), size_t(n) * ffn);
        StepBatch b = OneSeqBatch(n, start, 16);
        ASSERT_TRUE(gpu->BeginStep(b).ok());
        gpu->Add(x.p, h.p, int64_t(n) * dim);
        gpu->RmsNorm(x.p, w[7], h.p, n, dim, 1e-5f);
        gpu->MatMul(w[0], h.p, q.p, n);
        gpu->MatMul(w[1], h.p, k.p, n);
        gpu->MatMul(w[2], h.p, v.p, n);
        gpu->Rope(q.p, n, n_heads, hd, hd, 1e4f, RopeStyle::kNorm);
        gpu->Rope(k.p, n, n_kv, hd, hd, 1e4f, RopeStyle::kNorm);
        gpu->StoreKv(0, k.p, v.p);
        gpu->Attention(0, q.p, attn.p, n_heads, 0.125f);
        gpu->MatMul(w[3], attn.p, h.p, n);
        gpu->AddRmsNorm(x.p, h.p, w[8], h.p, n, dim, 1e-5f);
        gpu->MatMul(w[4], h.p, g.p, n);
        gpu->MatMul(w[5], h.p, u.p, n);
        gpu->SwiGLU(g.p, u.p, g.p, int64_t(n) * ffn);
        gpu->MatMul(w[6], g.p, h.p, n);
        ASSERT_TRUE(gpu->Synchronize().ok());
        for (Buf* r : {&x, &h, &q, &k, &attn, &g}) results[fused].push_back(r->Get());
        const size_t cache_elems = size_t(32) * 16 * kv_dim;
        caches[fused].resize(cache_elems);
        ASSERT_TRUE(gpu->Download(caches[fused].data(), gpu->KCache(0), cache_elems * 2).ok());
      }
      for (size_t i = 0; i < results[0].size(); ++i) {
        EXPECT_EQ(results[0][i], results[1][i]) << TypeName(type) << " n " << n << " buffer " << i;
        for (float f : results[1][i]) ASSERT_TRUE(std::isfinite(f));
      }
      EXPECT_TRUE(caches[0] == caches[1]) << TypeName(type) << " n " << n;
    }
  }
}

// The producers that also write f16 for a dense GEMM (RMSNorm, Add + RMSNorm,
// SwiGLU): float outputs bit for bit those of the plain kernels, and the f16
// copy bit for bit LaunchConvertF16 of them (round to nearest even), at row
// widths up to the register kernel's 8192 and odd totals.
TEST(GpuOps, F16ProducersMatchConvertAfter) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  const gpu::Stream st = gpu->stream();
  auto same_bits = [](const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  };
  auto halves = [&](const void* p, size_t count) {
    std::vector<uint16_t> v(count);
    EXPECT_TRUE(gpu->Download(v.data(), p, count * sizeof(uint16_t)).ok());
    return v;
  };
  for (int dim : {520, 4104, 8192}) {
    ASSERT_TRUE(gpu::RmsNormF16Supported(dim));
    for (int n : {1, 37, 200}) {
      const size_t total = size_t(n) * dim;
      const auto x0 = RandomVec(rng, total, 2.0f), r0 = RandomVec(rng, total, 2.0f), w0 = RandomVec(rng, dim);
      Buf wb(gpu.get(), w0), res(gpu.get(), r0), out_a(gpu.get(), total), out_b(gpu.get(), total);
      auto ha = gpu->Alloc(total * 2 + 16), hb = gpu->Alloc(total * 2 + 16);
      ASSERT_TRUE(ha.ok() && hb.ok());
      auto* h16a = static_cast<uint16_t*>(*ha);
      auto* h16b = static_cast<uint16_t*>(*hb);
      const std::string what = "dim " + std::to_string(dim) + " n " + std::to_string(n);
      {  // RMSNorm
        Buf x(gpu.get(), x0);
        ASSERT_TRUE(gpu::Memset(h16b, 0xff, total * 2, st).ok);
        gpu::LaunchRmsNorm(x.p, wb.p, out_a.p, n, dim, 1e-5f, st);
        gpu::LaunchConvertF16(out_a.p, int64_t(total), h16a, st);
        gpu::LaunchRmsNormF16(x.p, wb.p, out_b.p, h16b, n, dim, 1e-5f, st);
        ASSERT_TRUE(gpu::LastLaunchError().ok);
        EXPECT_TRUE(same_bits(out_a.Get(), out_b.Get())) << "RmsNorm " << what;
        EXPECT_TRUE(halves(h16a, total) == halves(h16b, total)) << "RmsNorm f16 " << what;
      }
      {  // x += residual; out = RmsNorm(x)
        Buf xa(gpu.get(), x0), xb(gpu.get(), x0);
        ASSERT_TRUE(gpu::Memset(h16b, 0xff, total * 2, st).ok);
        gpu::LaunchAddRmsNorm(xa.p, res.p, wb.p, out_a.p, n, dim, 1e-5f, st);
        gpu::LaunchConvertF16(out_a.p, int64_t(total), h16a, st);
        gpu::LaunchAddRmsNormF16(xb.p, res.p, wb.p, out_b.p, h16b, n, dim, 1e-5f, st);
        ASSERT_TRUE(gpu::LastLaunchError().ok);
        EXPECT_TRUE(same_bits(xa.Get(), xb.Get())) << "AddRmsNorm x " << what;
        EXPECT_TRUE(same_bits(out_a.Get(), out_b.Get())) << "AddRmsNorm " << what;
        EXPECT_TRUE(halves(h16a, total) == halves(h16b, total)) << "AddRmsNorm f16 " << what;
      }
      {  // SwiGLU over every value (odd totals)
        Buf g(gpu.get(), x0);
        const int64_t cnt = int64_t(total) - (n % 2);
        ASSERT_TRUE(gpu::Memset(h16b, 0xff, total * 2, st).ok);
        gpu::LaunchSwiGLU(g.p, res.p, out_a.p, cnt, st);
        gpu::LaunchConvertF16(out_a.p, cnt, h16a, st);
        gpu::LaunchSwiGLUF16(g.p, res.p, out_b.p, h16b, cnt, st);
        ASSERT_TRUE(gpu::LastLaunchError().ok);
        auto a = out_a.Get(), b = out_b.Get();
        a.resize(size_t(cnt));
        b.resize(size_t(cnt));
        EXPECT_TRUE(same_bits(a, b)) << "SwiGLU " << what;
        EXPECT_TRUE(halves(h16a, size_t(cnt)) == halves(h16b, size_t(cnt))) << "SwiGLU f16 " << what;
      }
      gpu->Free(*ha);
      gpu->Free(*hb);
    }
  }
}

// Two Llama layers in engine/model/model.cc's op order at prefill sizes (200
// and 333 tokens: the dense path) with each dense-prefill option
// (GpuBackend::SetDensePrefill) alone and all together against all off:
// bit-identical activations and KV caches, and each option did its work;
// with small Q4_K matrices dense too, against all off with every matmul dense.
// Two passes per setting (the second with the matmul order learned, so the
// overlapped dequantizations hit). Weight mixes: all Q8_0 (every matmul
// dense, K and V reuse Q's f16 input), and a Q4_K_M-like one whose K and O
// (small Q4_K) stay on the grouped in-loop GEMM between dense matmuls.
TEST(GpuOps, DensePrefillOptionsGiveIdenticalForwards) {
  RF_REQUIRE_GPU(gpu);
  if (!gpu::MatMulMmaAvailable()) GTEST_SKIP() << "device has no matrix cores: no dense path";
  const GpuConfigGuard restore_settings;  // the dense GEMM settings are also restored per block
  std::mt19937 rng(std::random_device{}());
  const int dim = 512, n_heads = 8, n_kv = 2, hd = 64, ffn = 1280, kv_dim = n_kv * hd, layers = 2;
  struct Mix {
    const char* name;
    GgmlType q, k, v, o, gate_up, down;
  };
  using G = GgmlType;
  for (const Mix& m : {Mix{"Q8_0", G::Q8_0, G::Q8_0, G::Q8_0, G::Q8_0, G::Q8_0, G::Q8_0},
                       Mix{"Q4_K_M-like", G::Q8_0, G::Q4_K, G::Q6_K, G::Q4_K, G::Q4_K, G::Q6_K}}) {
    struct LayerW {
      Weight q, k, v, o, gate, up, down, n1, n2;
    };
    std::vector<LayerW> lw(layers);
    for (LayerW& l : lw) {
      auto load = [&](G type, int64_t rows, int64_t cols, Weight* out) {
        HostTensor t = MakeTensor(rng, type, rows, cols);
        auto w = gpu->LoadWeight(t.info);
        ASSERT_TRUE(w.ok()) << w.status();
        *out = *w;
      };
      load(m.q, dim, dim, &l.q);
      load(m.k, kv_dim, dim, &l.k);
      load(m.v, kv_dim, dim, &l.v);
      load(m.o, dim, dim, &l.o);
      load(m.gate_up, ffn, dim, &l.gate);
      load(m.gate_up, ffn, dim, &l.up);
      load(m.down, dim, ffn, &l.down);
      load(G::F32, 1, dim, &l.n1);
      load(G::F32, 1, dim, &l.n2);
    }
    for (int n : {200, 333}) {
      const auto x0 = RandomVec(rng, size_t(n) * dim);
      using O = GpuBackend::DensePrefillOptions;
      // 0..4: the three bit-identical options; 5: with small Q4_K dense,
      // against 6: all off with every matmul dense from 192 tokens
      // (DenseGemmConfig::min_n), the same paths then.
      const O opts[] = {O{false, false, false, false}, O{true, false, false, false}, O{false, true, false, false},
                        O{false, false, true, false},  O{true, true, true, false},   O{true, true, true, true},
                        O{false, false, false, false}};
      constexpr int kOpts = 7;
      std::vector<std::vector<float>> results[kOpts];
      std::vector<uint16_t> caches[kOpts];
      GpuBackend::DensePrefillStats did[kOpts];
      const gpu::DenseGemmConfig dense_saved = gpu::GetDenseGemmConfig();
      for (int v = 0; v < kOpts; ++v) {
        gpu->SetDensePrefill(opts[v]);
        gpu::DenseGemmConfig dc = dense_saved;
        if (v == 6) dc.min_n = gpu::kDenseMinTokens;
        gpu::SetDenseGemmConfig(dc);
        ASSERT_TRUE(gpu->InitKvCache(KvCacheShape{layers, n_kv, hd, 16, 32}).ok());
        Buf x(gpu.get(), x0), h(gpu.get(), size_t(n) * dim), q(gpu.get(), size_t(n) * dim),
            k(gpu.get(), size_t(n) * kv_dim), vv(gpu.get(), size_t(n) * kv_dim), attn(gpu.get(), size_t(n) * dim),
            g(gpu.get(), size_t(n) * ffn), u(gpu.get(), size_t(n) * ffn);
        ASSERT_TRUE(gpu->BeginStep(OneSeqBatch(n, 0, 16)).ok());
        const GpuBackend::DensePrefillStats s0 = gpu->dense_prefill_stats();
        for (int pass = 0; pass < 2; ++pass) {
          ASSERT_TRUE(gpu->Upload(x.p, x0.data(), x0.size() * sizeof(float)).ok());
          for (int li = 0; li < layers; ++li) {
            const LayerW& l = lw[li];
            if (li > 0) gpu->Add(x.p, h.p, int64_t(n) * dim);  // the previous layer's residual
            gpu->RmsNorm(x.p, l.n1, h.p, n, dim, 1e-5f);
            gpu->MatMul(l.q, h.p, q.p, n);
            gpu->MatMul(l.k, h.p, k.p, n);
            gpu->MatMul(l.v, h.p, vv.p, n);
            gpu->Rope(q.p, n, n_heads, hd, hd, 5e5f, RopeStyle::kNorm);
            gpu->Rope(k.p, n, n_kv, hd, hd, 5e5f, RopeStyle::kNorm);
            gpu->StoreKv(li, k.p, vv.p);
            gpu->Attention(li, q.p, attn.p, n_heads, 0.125f);
            gpu->MatMul(l.o, attn.p, h.p, n);
            gpu->AddRmsNorm(x.p, h.p, l.n2, h.p, n, dim, 1e-5f);
            gpu->MatMul(l.gate, h.p, g.p, n);
            gpu->MatMul(l.up, h.p, u.p, n);
            gpu->SwiGLU(g.p, u.p, g.p, int64_t(n) * ffn);
            gpu->MatMul(l.down, g.p, h.p, n);
          }
          gpu->Add(x.p, h.p, int64_t(n) * dim);
          ASSERT_TRUE(gpu->Synchronize().ok());
        }
        const GpuBackend::DensePrefillStats s1 = gpu->dense_prefill_stats();
        did[v] = GpuBackend::DensePrefillStats{s1.x16_reused - s0.x16_reused, s1.f16_produced - s0.f16_produced,
                                               s1.prefetch_hits - s0.prefetch_hits,
                                               s1.prefetch_misses - s0.prefetch_misses};
        for (Buf* r : {&x, &h, &q, &k, &vv, &attn, &g, &u}) results[v].push_back(r->Get());
        const size_t cache_elems = size_t(32) * 16 * kv_dim;
        for (int li = 0; li < layers; ++li) {
          for (const uint16_t* c : {gpu->KCache(li), gpu->VCache(li)}) {
            std::vector<uint16_t> part(cache_elems);
            ASSERT_TRUE(gpu->Download(part.data(), c, cache_elems * 2).ok());
            caches[v].insert(caches[v].end(), part.begin(), part.end());
          }
        }
      }
      gpu->SetDensePrefill(O{});
      gpu::SetDenseGemmConfig(dense_saved);
      const std::string what = std::string(m.name) + " n " + std::to_string(n);
      for (int v = 1; v < kOpts - 1; ++v) {
        const int ref = v == 5 ? 6 : 0;
        for (size_t i = 0; i < results[0].size(); ++i) {
          ASSERT_EQ(results[v][i].size(), results[ref][i].size());
          EXPECT_EQ(
              std::memcmp(results[v][i].data(), results[ref][i].data(), results[ref][i].size() * sizeof(float)), 0)
              << what << " options " << v << " buffer " << i;
        }
        EXPECT_TRUE(caches[v] == caches[ref]) << what << " options " << v;
      }
      for (const auto& r : results[6]) {
        for (float f : r) ASSERT_TRUE(std::isfinite(f)) << what;
      }
      for (const auto& r : results[0]) {
        for (float f : r) ASSERT_TRUE(std::isfinite(f)) << what;
      }
      // Each option ran: V (and K when dense) and up reuse the f16 input; the
      // norms and SwiGLU write it; the second pass's weights were dequantized
      // beside the GEMM before them.
      EXPECT_GE(did[1].x16_reused, 2 * 2 * layers) << what;
      EXPECT_GE(did[2].f16_produced, 2 * 3 * layers) << what;
      EXPECT_GT(did[3].prefetch_hits, 0) << what;
      EXPECT_GT(did[4].x16_reused, 0) << what;
      EXPECT_GT(did[4].f16_produced, 0) << what;
      EXPECT_GT(did[4].prefetch_hits, 0) << what;
      EXPECT_EQ(did[0].x16_reused + did[0].f16_produced + did[0].prefetch_hits, 0) << what;
      // With small Q4_K dense every matmul of a layer is dense: K and V reuse Q's input.
      EXPECT_GE(did[5].x16_reused, 2 * 3 * layers) << what;
    }
  }
}

}  // namespace
}  // namespace rocmforge::gputest
