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
    for (bool add : {false, true}) {
      const std::string what = std::string(TypeName(type)) + (add ? " add" : "") + " dim " +
                               std::to_string(dim) + " n " + std::to_string(n);
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

}  // namespace
}  // namespace rocmforge::gputest
