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
  const Cfg cfgs[] = {{0, 0}, {128, 2}, {64, 4}, {32, 1}, {64, 1}, {256, 1}, {-2, 0}};
  const unsigned on = GpuBackend::kDefaultFusions | GpuBackend::kFuseMatVecRopeKv;
  const unsigned off = on & ~GpuBackend::kFuseMatVecRopeKv;
  for (const Shape& s : shapes) {
    const int q_rows = s.n_heads * s.hd, kv_dim = s.n_kv * s.hd;
    HostTensor wq = MakeTensor(rng, s.type, q_rows, s.cols), wk = MakeTensor(rng, s.type, kv_dim, s.cols),
               wv = MakeTensor(rng, s.type, kv_dim, s.cols);
    std::vector<Weight> w;
    for (HostTensor* t : {&wq, &wk, &wv}) {
      auto l = gpu->LoadWeight(t->info);
      ASSERT_TRUE(l.ok()) << l.status();
      w.push_back(*l);
    }
    const auto x0 = RandomVec(rng, s.cols);
    const KvCacheShape cache_shape{1, s.n_kv, s.hd, 16, 64};
    const size_t cache_elems = size_t(16) * 64 * kv_dim;
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
      std::vector<float> out[2][3];
      std::vector<uint16_t> kc[2], vc[2];
      for (int fused = 0; fused < 2; ++fused) {
        gpu->SetFusions(fused == 1 ? on : off);
        ASSERT_TRUE(gpu->InitKvCache(cache_shape).ok());
        // Non-zero cache contents, so a store to the wrong slot shows.
        const std::vector<uint16_t> fill(cache_elems, 0x3c00);
        ASSERT_TRUE(gpu->Upload(const_cast<uint16_t*>(gpu->KCache(0)), fill.data(), cache_elems * 2).ok());
        ASSERT_TRUE(gpu->Upload(const_cast<uint16_t*>(gpu->VCache(0)), fill.data(), cache_elems * 2).ok());
        Buf x(gpu.get(), x0), q(gpu.get(), size_t(q_rows)), k(gpu.get(), size_t(kv_dim)),
            v(gpu.get(), size_t(kv_dim));
        ASSERT_TRUE(gpu->BeginStep(OneToken(pos)).ok());
        gpu->MatMul(w[0], x.p, q.p, 1);
        gpu->MatMul(w[1], x.p, k.p, 1);
        gpu->MatMul(w[2], x.p, v.p, 1);
        const RopeStyle style = s.neox ? RopeStyle::kNeox : RopeStyle::kNorm;
        gpu->Rope(q.p, 1, s.n_heads, s.hd, s.rot, 5e5f, style);
        gpu->Rope(k.p, 1, s.n_kv, s.hd, s.rot, 5e5f, style);
        gpu->StoreKv(0, k.p, v.p);
        ASSERT_TRUE(gpu->Synchronize().ok());
        out[fused][0] = q.Get();
        out[fused][1] = k.Get();
        out[fused][2] = v.Get();
        kc[fused].resize(cache_elems);
        vc[fused].resize(cache_elems);
        ASSERT_TRUE(gpu->Download(kc[fused].data(), gpu->KCache(0), cache_elems * 2).ok());
        ASSERT_TRUE(gpu->Download(vc[fused].data(), gpu->VCache(0), cache_elems * 2).ok());
      }
      const std::string what = std::string(TypeName(s.type)) + " tpr " + std::to_string(c.tpr) + " rpt " +
                               std::to_string(c.rpt) + (s.neox ? " neox" : "") + " pos " + std::to_string(pos);
      for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(SameBits(out[0][i], out[1][i])) << what << " buffer " << i;
        for (float f : out[1][i]) ASSERT_TRUE(std::isfinite(f)) << what;
      }
      EXPECT_TRUE(kc[0] == kc[1]) << what << " K cache";
      EXPECT_TRUE(vc[0] == vc[1]) << what << " V cache";
      // The token's slot was written (by both): not the fill value everywhere.
      int changed = 0;
      for (int i = 0; i < kv_dim; ++i) changed += kc[1][size_t(pos) * kv_dim + i] != 0x3c00;
      EXPECT_GT(changed, kv_dim / 2) << what;
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
