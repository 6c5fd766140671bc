// Weight prefetch on a side stream (GpuBackend::SetWeightPrefetch): a few
// Llama-like decode layers issued through the backend (norm, Q/K/V, KV store,
// attention, O, add + norm, gate/up, SwiGLU, down, add) at batch 1, so every
// batch-1 MatMul whose input producer is held forks a prefetch of its weights.
// The layer outputs must be bit-identical with the prefetch off and on (small
// and whole-matrix limits, the grid and the one-block prefetch kernel, the
// prefetch kernel at the highest stream priority), in
// automatic graphs captured once and replayed, without graphs, and under an
// explicit capture, for Q8_0 (never prefetched: the rule is K-quants only) and
// Q4_K weights.
#include <cmath>
#include <vector>

#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

constexpr int kDim = 512, kFf = 1536, kHeads = 8, kKvHeads = 2, kHeadDim = 64, kLayers = 3;
constexpr int kBlock = 16, kCtx = 300;

struct Layer {
  Weight norm1, wq, wk, wv, wo, norm2, wg, wu, wd;
};

TEST(GpuPrefetch, DecodeLayersBitIdenticalWithPrefetchAndGraphReplays) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_K}) {
    std::vector<HostTensor> host;
    host.reserve(kLayers * 9);
    std::vector<Layer> layers(kLayers);
    auto load = [&](int64_t rows, int64_t cols, GgmlType t) {
      host.push_back(MakeTensor(rng, t, rows, cols, rows == 1 ? 1.0f : 0.1f));
      auto w = gpu->LoadWeight(host.back().info);
      EXPECT_TRUE(w.ok()) << w.status();
      return w.ok() ? *w : Weight{};
    };
    for (Layer& l : layers) {
      l.norm1 = load(1, kDim, GgmlType::F32);
      l.wq = load(kHeads * kHeadDim, kDim, type);
      l.wk = load(kKvHeads * kHeadDim, kDim, type);
      l.wv = load(kKvHeads * kHeadDim, kDim, type);
      l.wo = load(kDim, kHeads * kHeadDim, type);
      l.norm2 = load(1, kDim, GgmlType::F32);
      l.wg = load(kFf, kDim, type);
      l.wu = load(kFf, kDim, type);
      l.wd = load(kDim, kFf, type);
    }
    const int blocks = (kCtx + kBlock - 1) / kBlock;
    ASSERT_TRUE(gpu->InitKvCache({kLayers, kKvHeads, kHeadDim, kBlock, blocks}).ok());
    std::vector<int32_t> table(blocks);
    for (int i = 0; i < blocks; ++i) table[i] = (i * 5) % blocks;  // scattered
    auto step = [&](int start, int n) {
      StepBatch b;
      BatchSeq s;
      s.n_tokens = n;
      s.kv_len = start + n;
      s.block_table = table;
      for (int i = 0; i < n; ++i) {
        const int pos = start + i;
        b.tokens.push_back(0);
        b.positions.push_back(pos);
        b.slots.push_back(table[pos / kBlock] * kBlock + pos % kBlock);
      }
      b.logit_rows.push_back(n - 1);
      b.seqs.push_back(s);
      return b;
    };
    const int kv = kKvHeads * kHeadDim;
    {  // the first kCtx - 1 positions of every layer's cache
      ASSERT_TRUE(gpu->BeginStep(step(0, kCtx - 1)).ok());
      Buf k(gpu.get(), RandomVec(rng, size_t(kCtx - 1) * kv));
      Buf v(gpu.get(), RandomVec(rng, size_t(kCtx - 1) * kv));
      for (int l = 0; l < kLayers; ++l) gpu->StoreKv(l, k.p, v.p);
      ASSERT_TRUE(gpu->Synchronize().ok());
    }
    const StepBatch decode = step(kCtx - 1, 1);
    const std::vector<float> x0 = RandomVec(rng, kDim);
    Buf x(gpu.get(), kDim), xn(gpu.get(), kDim), q(gpu.get(), kHeads * kHeadDim), k(gpu.get(), kv),
        v(gpu.get(), kv), att(gpu.get(), kHeads * kHeadDim), o(gpu.get(), kDim), g(gpu.get(), kFf),
        u(gpu.get(), kFf), h(gpu.get(), kFf);
    auto issue_layers = [&] {
      for (int li = 0; li < kLayers; ++li) {
        const Layer& l = layers[li];
        gpu->RmsNorm(x.p, l.norm1, xn.p, 1, kDim, 1e-5f);
        gpu->MatMul(l.wq, xn.p, q.p, 1);
        gpu->MatMul(l.wk, xn.p, k.p, 1);
        gpu->MatMul(l.wv, xn.p, v.p, 1);
        gpu->StoreKv(li, k.p, v.p);
        gpu->Attention(li, q.p, att.p, kHeads, 1.0f / std::sqrt(float(kHeadDim)));
        gpu->MatMul(l.wo, att.p, o.p, 1);
        gpu->Add(x.p, o.p, kDim);
        gpu->RmsNorm(x.p, l.norm2, xn.p, 1, kDim, 1e-5f);
        gpu->MatMul(l.wg, xn.p, g.p, 1);
        gpu->MatMul(l.wu, xn.p, u.p, 1);
        gpu->SwiGLU(g.p, u.p, h.p, kFf);
        gpu->MatMul(l.wd, h.p, o.p, 1);
        gpu->Add(x.p, o.p, kDim);
      }
    };
    // One decode step from x0: the final x (and the last layer's attention).
    auto run = [&](size_t attn_bytes, size_t other_bytes, bool graphs) {
      gpu->SetWeightPrefetch({attn_bytes, other_bytes, other_bytes});
      gpu->SetAutoGraphs(graphs);
      EXPECT_TRUE(gpu->Upload(x.p, x0.data(), x0.size() * sizeof(float)).ok());
      EXPECT_TRUE(gpu->BeginStep(decode).ok());
      issue_layers();
      EXPECT_TRUE(gpu->Synchronize().ok());
      std::vector<float> out = x.Get(), a = att.Get();
      out.insert(out.end(), a.begin(), a.end());
      return out;
    };
    const std::vector<float> want = run(0, 0, false);
    for (float f : want) ASSERT_TRUE(std::isfinite(f));
    const size_t whole = size_t(1) << 30;
    struct Setting { size_t attn, other; uint32_t chunk; bool high_priority = false; };
    const uint32_t chunk_default = gpu::GetL2PrefetchChunk();
    const bool priority_default = gpu::GetL2PrefetchHighPriority();
    for (Setting s : {Setting{0, 0, chunk_default}, Setting{4096, 4096, chunk_default},
                      Setting{whole, 0, chunk_default}, Setting{whole, whole, chunk_default},
                      Setting{0, 100000, chunk_default}, Setting{whole, whole, 0}, Setting{whole, whole, 16},
                      Setting{whole, whole, chunk_default, true}}) {
      gpu::SetL2PrefetchChunk(s.chunk);
      gpu::SetL2PrefetchHighPriority(s.high_priority);
      for (bool graphs : {false, true}) {
        const int replays_before = gpu->graphs_replayed();
        for (int rep = 0; rep < 3; ++rep) {
          EXPECT_EQ(run(s.attn, s.other, graphs), want)
              << TypeName(type) << " prefetch " << s.attn << "/" << s.other << " chunk " << s.chunk
              << " high priority " << gpu::GetL2PrefetchHighPriority() << " graphs " << graphs
              << " run " << rep;
        }
        if (graphs) {
          EXPECT_GE(gpu->graphs_replayed() - replays_before, 2);
        }
      }
    }
    // An explicit capture with the prefetch forks inside, replayed.
    gpu->SetWeightPrefetch({whole, whole, whole});
    gpu->SetAutoGraphs(false);
    ASSERT_TRUE(gpu->Upload(x.p, x0.data(), x0.size() * sizeof(float)).ok());
    ASSERT_TRUE(gpu->BeginStep(decode).ok());
    ASSERT_TRUE(gpu->BeginGraphCapture().ok());
    issue_layers();
    ASSERT_TRUE(gpu->EndGraphCapture().ok());
    for (int rep = 0; rep < 2; ++rep) {
      ASSERT_TRUE(gpu->Upload(x.p, x0.data(), x0.size() * sizeof(float)).ok());
      ASSERT_TRUE(gpu->ReplayGraph().ok());
      ASSERT_TRUE(gpu->Synchronize().ok());
      std::vector<float> out = x.Get(), a = att.Get();
      out.insert(out.end(), a.begin(), a.end());
      EXPECT_EQ(out, want) << TypeName(type) << " explicit capture, replay " << rep;
    }
    gpu::SetL2PrefetchChunk(chunk_default);
    gpu::SetL2PrefetchHighPriority(priority_default);
    gpu->SetWeightPrefetch(GpuBackend::WeightPrefetch{});
    gpu->SetAutoGraphs(true);
  }
}

}  // namespace
}  // namespace rocmforge::gputest
