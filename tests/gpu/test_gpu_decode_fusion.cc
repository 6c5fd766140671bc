// Batch-1 decode fusions that fold small ops into a matvec's epilogue
// (GpuBackend::kFuseMatVecRopeKv): results must be bit for bit those of the
// separate kernels (the Q/K/V group matvec, then RoPE + KV store).
#include <cmath>
#include <cstring>

#include "tests/gpu/gpu_config_guard.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

StepBatch OneToken(int pos) {
  StepBatch b;
  BatchSeq s;
  s.token_start = 0;
  s.n_tokens = 1;
  s.kv_len = pos + 1;
  for (int i = 0; i < (pos + 16) / 16; ++i) s.block_table.push_back(i);
  b.tokens.push_back(0);
  b.positions.push_back(pos);
  b.slots.push_back(pos);
  b.logit_rows.push_back(0);
  b.seqs.push_back(s);
  return b;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// A cache of one layer reset with every value 1.0 in f16 (0x3c00), so a store
// to the wrong slot shows.
void ResetFilledCache(GpuBackend* gpu, const KvCacheShape& shape, size_t elems) {
  ASSERT_TRUE(gpu->InitKvCache(shape).ok());
  const std::vector<uint16_t> fill(elems, 0x3c00);
  ASSERT_TRUE(gpu->Upload(const_cast<uint16_t*>(gpu->KCache(0)), fill.data(), elems * 2).ok());
  ASSERT_TRUE(gpu->Upload(const_cast<uint16_t*>(gpu->VCache(0)), fill.data(), elems * 2).ok());
}

// What a Q/K/V step left: q, k, v and the layer's K and V caches.
struct QkvStep {
  std::vector<float> out[3];
  std::vector<uint16_t> kc, vc;
};
void ReadQkvStep(GpuBackend* gpu, Buf& q, Buf& k, Buf& v, size_t elems, QkvStep* r) {
  ASSERT_TRUE(gpu->Synchronize().ok());
  r->out[0] = q.Get();
  r->out[1] = k.Get();
  r->out[2] = v.Get();
  r->kc.resize(elems);
  r->vc.resize(elems);
  ASSERT_TRUE(gpu->Download(r->kc.data(), gpu->KCache(0), elems * 2).ok());
  ASSERT_TRUE(gpu->Download(r->vc.data(), gpu->VCache(0), elems * 2).ok());
}

// Two steps' results the same bit for bit and finite; with `stored`, the
// token's K and V slots written (not the fill value everywhere).
void ExpectSameQkv(const QkvStep& a, const QkvStep& b, bool stored, int pos, int kv_dim, const std::string& what) {
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(SameBits(a.out[i], b.out[i])) << what << " buffer " << i;
    for (float f : b.out[i]) ASSERT_TRUE(std::isfinite(f)) << what;
  }
  EXPECT_TRUE(a.kc == b.kc) << what << " K cache";
  EXPECT_TRUE(a.vc == b.vc) << what << " V cache";
  if (!stored) return;
  int k_changed = 0, v_changed = 0;
  for (int i = 0; i < kv_dim; ++i) {
    k_changed += b.kc[size_t(pos) * kv_dim + i] != 0x3c00;
    v_changed += b.vc[size_t(pos) * kv_dim + i] != 0x3c00;
  }
  EXPECT_GT(k_changed, kv_dim / 2) << what << ": K stored";
  EXPECT_GT(v_changed, kv_dim / 2) << what << ": V stored";
}

// One token's Q, K and V matvecs of x0 as the model issues them, then (with
// `rope`) RoPE of q and k and the KV store, into a freshly filled one-layer
// cache (blocks of 16, 64 of them); everything read back into *out.
struct QkvHeads {
  int n_heads, n_kv, hd, rot;
  RopeStyle style;
};
void RunQkvStep(GpuBackend* gpu, const std::vector<Weight>& w, const std::vector<float>& x0, int pos,
                const QkvHeads& h, bool rope, QkvStep* out) {
  const int q_rows = h.n_heads * h.hd, kv_dim = h.n_kv * h.hd;
  const size_t cache_elems = size_t(16) * 64 * kv_dim;
  ResetFilledCache(gpu, KvCacheShape{1, h.n_kv, h.hd, 16, 64}, cache_elems);
  if (::testing::Test::HasFatalFailure()) return;
  Buf x(gpu, x0), q(gpu, size_t(q_rows)), k(gpu, size_t(kv_dim)), v(gpu, size_t(kv_dim));
  ASSERT_TRUE(gpu->BeginStep(OneToken(pos)).ok());
  gpu->MatMul(w[0], x.p, q.p, 1);
  gpu->MatMul(w[1], x.p, k.p, 1);
  gpu->MatMul(w[2], x.p, v.p, 1);
  if (rope) {
    gpu->Rope(q.p, 1, h.n_heads, h.hd, h.rot, 5e5f, h.style);
    gpu->Rope(k.p, 1, h.n_kv, h.hd, h.rot, 5e5f, h.style);
    gpu->StoreKv(0, k.p, v.p);
  }
  ReadQkvStep(gpu, q, k, v, cache_elems, out);
}

// The Q, K, V weights of one layer, loaded.
std::vector<Weight> LoadQkv(GpuBackend* gpu, const HostTensor& wq, const HostTensor& wk, const HostTensor& wv) {
  std::vector<Weight> w;
  for (const HostTensor* t : {&wq, &wk, &wv}) {
    auto l = gpu->LoadWeight(t->info);
    EXPECT_TRUE(l.ok()) << l.status();
    if (l.ok()) w.push_back(*l);
  }
  return w;
}

struct Shape {
  GgmlType type;
  int cols, n_heads, n_kv, hd, rot;
  bool neox;
};

// Q, K, V matvecs + RoPE(Q), RoPE(K) + StoreKv at one token, with the
// epilogue fusion off and on, under several batch-1 matvec shapes (blocks of
// 2..32 rows, the pairs kernel for Q4_K / Q5_K, and 256 x 1, whose one-row
// blocks cannot carry the epilogue and fall back). NEOX falls back too.
TEST(GpuDecodeFusion, MatVecRopeKvBitIdenticalToSeparateKernels) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  const Shape shapes[] = {
      {GgmlType::Q8_0, 800, 6, 2, 128, 128, false},  {GgmlType::Q4_0, 416, 5, 1, 64, 32, false},
      {GgmlType::Q4_K, 768, 12, 4, 64, 64, false},   {GgmlType::Q5_K, 512, 3, 3, 96, 96, false},
      {GgmlType::Q6_K, 1280, 7, 1, 128, 64, false},  {GgmlType::Q8_0, 288, 4, 2, 64, 64, true},
  };
  struct Cfg {
    int tpr, rpt;
  };
  const Cfg cfgs[] = {{0, 0}, {128, 2}, {128, 4}, {64, 4}, {32, 1}, {32, 2}, {64, 1}, {256, 1}, {-2, 0}};
  const unsigned on = GpuBackend::kDefaultFusions | GpuBackend::kFuseMatVecRopeKv;
  const unsigned off = on & ~GpuBackend::kFuseMatVecRopeKv;
  for (const Shape& s : shapes) {
    const int q_rows = s.n_heads * s.hd, kv_dim = s.n_kv * s.hd;
    HostTensor wq = MakeTensor(rng, s.type, q_rows, s.cols), wk = MakeTensor(rng, s.type, kv_dim, s.cols),
               wv = MakeTensor(rng, s.type, kv_dim, s.cols);
    const std::vector<Weight> w = LoadQkv(gpu.get(), wq, wk, wv);
    ASSERT_EQ(w.size(), 3u);
    const auto x0 = RandomVec(rng, s.cols);
    const QkvHeads heads{s.n_heads, s.n_kv, s.hd, s.rot, s.neox ? RopeStyle::kNeox : RopeStyle::kNorm};
    for (const Cfg& c : cfgs) {
      gpu::MatVecConfig mc;
      mc.threads_per_row = c.tpr;
      mc.rows_per_thread = c.rpt;
      gpu::SetMatVecConfig(mc);
      if (c.tpr == 0 && !s.neox) {  // the default shapes carry the epilogue: the fused path is tested
        const gpu::MatVecPart parts[3] = {{w[0].data, nullptr, q_rows}, {w[1].data, nullptr, kv_dim},
                                          {w[2].data, nullptr, kv_dim}};
        EXPECT_TRUE(gpu::MatVecGroupRopeKvSupported(s.type, s.cols, parts, 3, s.hd, s.rot))
            << TypeName(s.type);
      }
      const int pos = static_cast<int>(rng() % 1000);
      QkvStep step[2];
      for (int fused = 0; fused < 2; ++fused) {
        gpu->SetFusions(fused == 1 ? on : off);
        RunQkvStep(gpu.get(), w, x0, pos, heads, true, &step[fused]);
        if (::testing::Test::HasFatalFailure()) return;
      }
      const std::string what = std::string(TypeName(s.type)) + " tpr " + std::to_string(c.tpr) + " rpt " +
                               std::to_string(c.rpt) + (s.neox ? " neox" : "") + " pos " + std::to_string(pos);
      ExpectSameQkv(step[0], step[1], true, pos, kv_dim, what);
    }
  }
  gpu->SetFusions(GpuBackend::kDefaultFusions);
}

// Q and K in Q4_K with V in Q6_K (Q4_K_M's layers) at one token, the two
// types' groups as one launch (kFuseMixedMatVec) or two, with the RoPE + KV
// store after them (then the combined launch's epilogue) and without: q, k,
// v and the caches bit for bit, under every Q4_K shape the combined kernel
// is built for (MatVecConfig::shape of the Q + K rows' class).
TEST(GpuDecodeFusion, MixedTypeGroupBitIdenticalToTwoLaunches) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  const int cols = 1024, n_heads = 8, n_kv = 2, hd = 128, q_rows = n_heads * hd, kv_dim = n_kv * hd;
  HostTensor wq = MakeTensor(rng, GgmlType::Q4_K, q_rows, cols), wk = MakeTensor(rng, GgmlType::Q4_K, kv_dim, cols),
             wv = MakeTensor(rng, GgmlType::Q6_K, kv_dim, cols);
  const std::vector<Weight> w = LoadQkv(gpu.get(), wq, wk, wv);
  ASSERT_EQ(w.size(), 3u);
  const gpu::MatVecPart qk[2] = {{w[0].data, nullptr, q_rows}, {w[1].data, nullptr, kv_dim}};
  if (!gpu::MatVecMixedGroupTakes(GgmlType::Q4_K, qk, 2, GgmlType::Q6_K, {w[2].data, nullptr, kv_dim}, cols, hd,
                                  hd)) {
    GTEST_SKIP() << "no combined Q4_K + Q6_K kernel at these shapes on this device";
  }
  const auto x0 = RandomVec(rng, cols);
  const unsigned off = GpuBackend::kDefaultFusions & ~unsigned{GpuBackend::kFuseMixedMatVec};
  // {0, 1}: the automatic shape; the rest as kernels/matmul_small_batch.hip's kMixShapesA.
  for (const gpu::MatVecConfig::Shape shape : {gpu::MatVecConfig::Shape{0, 1}, gpu::MatVecConfig::Shape{64, 1},
                                               gpu::MatVecConfig::Shape{32, 1}, gpu::MatVecConfig::Shape{32, 2},
                                               gpu::MatVecConfig::Shape{64, 2}, gpu::MatVecConfig::Shape{32, 4}}) {
    gpu::MatVecConfig mc;
    mc.shape[gpu::MatVecConfig::kQ4KOutProj] = shape;  // q_rows + kv_dim = 1280 rows
    gpu::SetMatVecConfig(mc);
    EXPECT_TRUE(gpu::MatVecMixedGroupTakes(GgmlType::Q4_K, qk, 2, GgmlType::Q6_K, {w[2].data, nullptr, kv_dim}, cols,
                                           hd, hd))
        << "Q4_K " << shape.tpr << " x " << shape.rpt;
    for (bool rope : {true, false}) {
      const int pos = static_cast<int>(rng() % 1000);
      QkvStep step[2];
      for (int fused = 0; fused < 2; ++fused) {
        gpu->SetFusions(fused == 1 ? off | GpuBackend::kFuseMixedMatVec : off);
        RunQkvStep(gpu.get(), w, x0, pos, QkvHeads{n_heads, n_kv, hd, hd, RopeStyle::kNorm}, rope, &step[fused]);
        if (::testing::Test::HasFatalFailure()) return;
      }
      const std::string what = std::string(rope ? "with" : "without") + " RoPE + KV store, pos " +
                               std::to_string(pos) + ", Q4_K " + std::to_string(shape.tpr) + " x " +
                               std::to_string(shape.rpt);
      ExpectSameQkv(step[0], step[1], rope, pos, kv_dim, what);
    }
  }
  gpu->SetFusions(GpuBackend::kDefaultFusions);
}

// Two batch-1 Llama layers issued as the model issues them, with the matvecs
// that compute their own input off and on: the residual add in the O / down
// matvec's epilogue (kFuseResidualMatVec) under the default matvec shapes,
// and that plus RmsNorm + quantize inside the Q/K/V and gate/up launches
// (kFuseNormMatVec) with every batch-1 group on the bulk-copy kernel (the
// kernel the norm-in launches run on): every buffer and both caches bit for
// bit. The first layer's V is Q6_K (Q/K one group, V its own), the second's
// Q4_K (one Q/K/V group with the RoPE + KV store epilogue), as in Q4_K_M;
// then a Q8_0 model.
TEST(GpuDecodeFusion, NormAndResidualInMatVecBitIdentical) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  struct Model {
    GgmlType main, v0, down;
    int dim, n_heads, n_kv, hd, ffn;
  };
  for (const Model& m : {Model{GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q6_K, 2048, 16, 4, 128, 2816},
                         Model{GgmlType::Q8_0, GgmlType::Q8_0, GgmlType::Q8_0, 1024, 8, 2, 128, 1568}}) {
    const int dim = m.dim, kv = m.n_kv * m.hd, ffn = m.ffn;
    struct Layer {
      HostTensor q, k, v, o, gate, up, down, attn_norm, ffn_norm;
    };
    std::vector<Layer> host;
    for (int l = 0; l < 2; ++l) {
      host.push_back(Layer{MakeTensor(rng, m.main, dim, dim), MakeTensor(rng, m.main, kv, dim),
                           MakeTensor(rng, l == 0 ? m.v0 : m.main, kv, dim), MakeTensor(rng, m.main, dim, dim),
                           MakeTensor(rng, m.main, ffn, dim), MakeTensor(rng, m.main, ffn, dim),
                           MakeTensor(rng, m.down, dim, ffn), MakeTensor(rng, GgmlType::F32, 1, dim),
                           MakeTensor(rng, GgmlType::F32, 1, dim)});
    }
    std::vector<std::vector<Weight>> w(2);
    for (int l = 0; l < 2; ++l) {
      Layer& h = host[size_t(l)];
      for (HostTensor* t : {&h.q, &h.k, &h.v, &h.o, &h.gate, &h.up, &h.down, &h.attn_norm, &h.ffn_norm}) {
        auto lw = gpu->LoadWeight(t->info);
        ASSERT_TRUE(lw.ok()) << lw.status();
        w[size_t(l)].push_back(*lw);
      }
    }
    const auto x0 = RandomVec(rng, size_t(dim), 2.0f);
    const KvCacheShape cache_shape{2, m.n_kv, m.hd, 16, 64};
    const size_t cache_elems = size_t(16) * 64 * kv;
    const int pos = 17 + static_cast<int>(rng() % 900);
    // Outputs of one run: x, h, q, k, v, attention, gate, up, then the caches.
    auto run = [&](unsigned fusions, std::vector<std::vector<float>>* out,
                   std::vector<std::vector<uint16_t>>* caches) {
      gpu->SetFusions(fusions);
      ASSERT_TRUE(gpu->InitKvCache(cache_shape).ok());
      std::mt19937 fill_rng(7);  // the same earlier positions in both runs
      std::vector<uint16_t> fill(cache_elems);
      for (uint16_t& f : fill) f = static_cast<uint16_t>(0x3000 + fill_rng() % 0x800);
      for (int l = 0; l < 2; ++l) {
        ASSERT_TRUE(gpu->Upload(const_cast<uint16_t*>(gpu->KCache(l)), fill.data(), cache_elems * 2).ok());
        ASSERT_TRUE(gpu->Upload(const_cast<uint16_t*>(gpu->VCache(l)), fill.data(), cache_elems * 2).ok());
      }
      Buf x(gpu.get(), x0), h(gpu.get(), size_t(dim)), q(gpu.get(), size_t(dim)), k(gpu.get(), size_t(kv)),
          v(gpu.get(), size_t(kv)), attn(gpu.get(), size_t(dim)), g(gpu.get(), size_t(ffn)),
          u(gpu.get(), size_t(ffn));
      ASSERT_TRUE(gpu->BeginStep(OneToken(pos)).ok());
      for (int l = 0; l < 2; ++l) {
        const std::vector<Weight>& lw = w[size_t(l)];
        gpu->RmsNorm(x.p, lw[7], h.p, 1, dim, 1e-5f);
        gpu->MatMul(lw[0], h.p, q.p, 1);
        gpu->MatMul(lw[1], h.p, k.p, 1);
        gpu->MatMul(lw[2], h.p, v.p, 1);
        gpu->Rope(q.p, 1, m.n_heads, m.hd, m.hd, 5e5f, RopeStyle::kNorm);
        gpu->Rope(k.p, 1, m.n_kv, m.hd, m.hd, 5e5f, RopeStyle::kNorm);
        gpu->StoreKv(l, k.p, v.p);
        gpu->Attention(l, q.p, attn.p, m.n_heads, 0.088f);
        gpu->MatMul(lw[3], attn.p, h.p, 1);
        gpu->AddRmsNorm(x.p, h.p, lw[8], h.p, 1, dim, 1e-5f);
        gpu->MatMul(lw[4], h.p, g.p, 1);
        gpu->MatMul(lw[5], h.p, u.p, 1);
        gpu->SwiGLU(g.p, u.p, g.p, ffn);
        gpu->MatMul(lw[6], g.p, h.p, 1);
        gpu->Add(x.p, h.p, dim);
      }
      ASSERT_TRUE(gpu->Synchronize().ok());
      out->clear();
      for (Buf* b : {&x, &h, &q, &k, &v, &attn, &g, &u}) out->push_back(b->Get());
      caches->assign(4, std::vector<uint16_t>(cache_elems));
      for (int l = 0; l < 2; ++l) {
        ASSERT_TRUE(gpu->Download((*caches)[size_t(2 * l)].data(), gpu->KCache(l), cache_elems * 2).ok());
        ASSERT_TRUE(gpu->Download((*caches)[size_t(2 * l + 1)].data(), gpu->VCache(l), cache_elems * 2).ok());
      }
    };
    const unsigned base =
        GpuBackend::kDefaultFusions & ~unsigned{GpuBackend::kFuseResidualMatVec | GpuBackend::kFuseNormMatVec};
    for (int stream = 0; stream < 2; ++stream) {
      gpu::MatVecConfig mc;
      mc.stream = stream;
      gpu::SetMatVecConfig(mc);
      const unsigned fused = base | GpuBackend::kFuseResidualMatVec | (stream ? GpuBackend::kFuseNormMatVec : 0u);
      if (stream == 1) {
        const gpu::MatVecPart probe{w[0][4].data, nullptr, ffn};
        if (!gpu::MatVecNormInTakes(m.main, &probe, 1, dim, false)) {
          std::printf("[ SKIPPED  ] %s norm-in launches: the bulk-copy kernel needs an sm_90 device and code\n",
                      std::string(TypeName(m.main)).c_str());
          continue;
        }
      }
      std::vector<std::vector<float>> ref, got;
      std::vector<std::vector<uint16_t>> ref_c, got_c;
      run(base, &ref, &ref_c);
      if (::testing::Test::HasFatalFailure()) return;
      run(fused, &got, &got_c);
      if (::testing::Test::HasFatalFailure()) return;
      const std::string what =
          std::string(TypeName(m.main)) + (stream ? " bulk-copy, residual + norm" : " residual");
      for (size_t i = 0; i < ref.size(); ++i) {
        EXPECT_TRUE(SameBits(ref[i], got[i])) << what << " buffer " << i;
        for (float f : got[i]) ASSERT_TRUE(std::isfinite(f)) << what << " buffer " << i;
      }
      for (size_t i = 0; i < ref_c.size(); ++i) EXPECT_TRUE(ref_c[i] == got_c[i]) << what << " cache " << i;
    }
  }
  gpu->SetFusions(GpuBackend::kDefaultFusions);
}

// The MMQ groups of a batched step (Add + RMSNorm -> Q, K (Q4_K) and V (Q6_K,
// a second group on the same x); SwiGLU -> down) with the GEMM outputs zeroed
// by the producer of their input (GpuBackend::SetProducerZeroing) and by the
// GEMM's own zeroing kernel: bit for bit the same results. Two K splits, so
// the atomics add two partial sums to zero in either order (the same float).
// The outputs start as garbage, so a zero missing on either side shows; the
// step runs three times with zeroing on (the first learns which groups split
// K) and the producers must have zeroed some groups.
TEST(GpuDecodeFusion, ProducerZeroingMatchesGemmZeroing) {
  RF_REQUIRE_GPU(gpu);
  if (!gpu::MatMulMmqSupported(GgmlType::Q4_K) || !gpu::MatMulMmqSupported(GgmlType::Q6_K)) {
    GTEST_SKIP() << "no int8 MMQ GEMM on this device";
  }
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  gpu::GemmConfig gc = restore_settings.gemm();
  gc.narrow = 3;  // MMQ
  gc.splits = 2;
  gpu::SetGemmConfig(gc);
  const int dim = 768, kv = 256, ffn = 1280;
  HostTensor wq = MakeTensor(rng, GgmlType::Q4_K, dim, dim), wk = MakeTensor(rng, GgmlType::Q4_K, kv, dim),
             wv = MakeTensor(rng, GgmlType::Q6_K, kv, dim), wd = MakeTensor(rng, GgmlType::Q6_K, dim, ffn),
             nw = MakeTensor(rng, GgmlType::F32, 1, dim);
  std::vector<Weight> w;
  for (HostTensor* t : {&wq, &wk, &wv, &wd, &nw}) {
    auto l = gpu->LoadWeight(t->info);
    ASSERT_TRUE(l.ok()) << l.status();
    w.push_back(*l);
  }
  ASSERT_TRUE(gpu->InitKvCache(KvCacheShape{1, 1, 64, 16, 4}).ok());  // for BeginStep
  for (int n : {8, 21, 32}) {
    // Norm + Q8_K quantization fused (a fused producer zeroes) and not (the
    // stand-alone quantization zeroes).
    const unsigned unfused_norm = GpuBackend::kAllFusions & ~unsigned{GpuBackend::kFuseNormQuantizeKBatch};
    for (unsigned fusions : {unsigned{GpuBackend::kAllFusions}, unfused_norm}) {
      const auto x0 = RandomVec(rng, size_t(n) * dim, 2.0f), r0 = RandomVec(rng, size_t(n) * dim);
      const auto g0 = RandomVec(rng, size_t(n) * ffn, 3.0f), u0 = RandomVec(rng, size_t(n) * ffn);
      const std::vector<float> garbage(size_t(n) * dim, 1e3f);
      auto run = [&](bool zeroing, std::vector<std::vector<float>>* out) {
        gpu->SetFusions(fusions);
        gpu->SetProducerZeroing(zeroing);
        Buf x(gpu.get(), x0), r(gpu.get(), r0), h(gpu.get(), size_t(n) * dim), g(gpu.get(), g0), u(gpu.get(), u0);
        Buf q(gpu.get(), garbage), k(gpu.get(), garbage), v(gpu.get(), garbage), d(gpu.get(), garbage);
        ASSERT_TRUE(gpu->BeginStep(OneToken(0)).ok());  // no attention: any step metadata
        gpu->Add(x.p, r.p, int64_t(n) * dim);
        gpu->RmsNorm(x.p, w[4], h.p, n, dim, 1e-5f);
        gpu->MatMul(w[0], h.p, q.p, n);
        gpu->MatMul(w[1], h.p, k.p, n);
        gpu->MatMul(w[2], h.p, v.p, n);
        gpu->SwiGLU(g.p, u.p, g.p, int64_t(n) * ffn);
        gpu->MatMul(w[3], g.p, d.p, n);
        ASSERT_TRUE(gpu->Synchronize().ok());
        out->clear();
        for (Buf* b : {&x, &h, &q, &k, &v, &g, &d}) out->push_back(b->Get());
        out->at(3).resize(size_t(n) * kv);
        out->at(4).resize(size_t(n) * kv);
      };
      std::vector<std::vector<float>> ref, got;
      run(false, &ref);
      const std::string what = "n " + std::to_string(n) + " fusions " + std::to_string(fusions);
      const int before = gpu->producer_zeroed_groups();
      for (int rep = 0; rep < 3; ++rep) {
        run(true, &got);
        for (size_t i = 0; i < ref.size(); ++i) {
          EXPECT_TRUE(SameBits(ref[i], got[i])) << what << " rep " << rep << " buffer " << i;
        }
      }
      // Q/K, V and down each split K: zeroed by their producers in reps 1 and 2.
      EXPECT_GE(gpu->producer_zeroed_groups() - before, 6) << what;
      for (const auto& b : got) {
        for (float f : b) ASSERT_TRUE(std::isfinite(f)) << what;
      }
    }
  }
  gpu->SetProducerZeroing(true);
  gpu->SetFusions(GpuBackend::kDefaultFusions);
}

}  // namespace
}  // namespace rocmforge::gputest
