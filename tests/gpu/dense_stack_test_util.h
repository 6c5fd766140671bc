// A 2-layer Llama-shaped stack (dim 512, 8 heads over 2 KV heads of 64) run as
// one backend prefill, for the dense prefill tests: whole-step behaviour
// (learned matmul order, fused gate / up / SwiGLU, resident f16 weights)
// compared between options on the same random weights and inputs.
#pragma once

#include <cmath>
#include <random>
#include <vector>

#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest::dense_stack {

constexpr int kDim = 512, kHeads = 8, kKv = 2, kHd = 64, kKvDim = kKv * kHd, kLayers = 2;

// One sequence of n tokens from position 0 (KV slots 0..n-1), its last row sampled.
inline StepBatch OneSequence(int n, int block_size) {
  StepBatch b;
  BatchSeq s;
  s.token_start = 0;
  s.n_tokens = n;
  s.kv_len = n;
  for (int i = 0; i < (n + block_size - 1) / block_size; ++i) s.block_table.push_back(i);
  for (int i = 0; i < n; ++i) {
    b.tokens.push_back(0);
    b.positions.push_back(i);
    b.slots.push_back(i);
  }
  b.logit_rows.push_back(n - 1);
  b.seqs.push_back(s);
  return b;
}

struct LayerW {
  Weight q, k, v, o, gate, up, down, n1, n2;
};

// A Q4_K_M-like mix (Q Q8_0; K, O, gate, up Q4_K; V, down Q6_K: K and O are
// small Q4_K matrices, in-loop GEMM unless dense_small_q4k) or all Q8_0; ffn
// a whole number of down's blocks, not a multiple of any row tile.
inline std::vector<LayerW> LoadLayers(GpuBackend* gpu, std::mt19937& rng, bool q8, int ffn) {
  using G = GgmlType;
  std::vector<LayerW> lw(kLayers);
  for (LayerW& l : lw) {
    auto load = [&](G type, int64_t rows, int64_t cols, Weight* out, const char* name) {
      HostTensor t = MakeTensor(rng, type, rows, cols, 0.5f, name);
      auto w = gpu->LoadWeight(t.info);
      EXPECT_TRUE(w.ok()) << w.status();
      if (w.ok()) *out = *w;
    };
    load(G::Q8_0, kDim, kDim, &l.q, "blk.0.attn_q.weight");
    load(q8 ? G::Q8_0 : G::Q4_K, kKvDim, kDim, &l.k, "blk.0.attn_k.weight");
    load(q8 ? G::Q8_0 : G::Q6_K, kKvDim, kDim, &l.v, "blk.0.attn_v.weight");
    load(q8 ? G::Q8_0 : G::Q4_K, kDim, kDim, &l.o, "blk.0.attn_output.weight");
    load(q8 ? G::Q8_0 : G::Q4_K, ffn, kDim, &l.gate, "blk.0.ffn_gate.weight");
    load(q8 ? G::Q8_0 : G::Q4_K, ffn, kDim, &l.up, "blk.0.ffn_up.weight");
    load(q8 ? G::Q8_0 : G::Q6_K, kDim, ffn, &l.down, "blk.0.ffn_down.weight");
    load(G::F32, 1, kDim, &l.n1, "n1");
    load(G::F32, 1, kDim, &l.n2, "n2");
  }
  return lw;
}

// What one prefill leaves: the residual stream x and, of the last layer, the
// attention output, the gate and up outputs and SwiGLU's out (NaN where
// nothing wrote: gate / up / out start as NaN).
struct StackOut {
  std::vector<float> x, attn, gate, up, out;
};

// One prefill of the stack over x0 (fresh KV cache); SwiGLU writes out of
// place when `separate_out`, else over the gate.
inline StackOut RunStack(GpuBackend* gpu, const std::vector<LayerW>& lw, const std::vector<float>& x0, int n,
                        int ffn, bool separate_out) {
  EXPECT_TRUE(gpu->InitKvCache(KvCacheShape{kLayers, kKv, kHd, 16, 32}).ok());
  const std::vector<float> poison(size_t(n) * ffn, std::nanf(""));
  Buf x(gpu, x0), h(gpu, size_t(n) * kDim), q(gpu, size_t(n) * kDim), k(gpu, size_t(n) * kKvDim),
      v(gpu, size_t(n) * kKvDim), attn(gpu, size_t(n) * kDim), g(gpu, poison), u(gpu, poison), s(gpu, poison);
  EXPECT_TRUE(gpu->BeginStep(OneSequence(n, 16)).ok());
  for (int li = 0; li < kLayers; ++li) {
    const LayerW& l = lw[li];
    if (li > 0) gpu->Add(x.p, h.p, int64_t(n) * kDim);
    gpu->RmsNorm(x.p, l.n1, h.p, n, kDim, 1e-5f);
    gpu->MatMul(l.q, h.p, q.p, n);
    gpu->MatMul(l.k, h.p, k.p, n);
    gpu->MatMul(l.v, h.p, v.p, n);
    gpu->Rope(q.p, n, kHeads, kHd, kHd, 5e5f, RopeStyle::kNorm);
    gpu->Rope(k.p, n, kKv, kHd, kHd, 5e5f, RopeStyle::kNorm);
    gpu->StoreKv(li, k.p, v.p);
    gpu->Attention(li, q.p, attn.p, kHeads, 0.125f);
    gpu->MatMul(l.o, attn.p, h.p, n);
    gpu->AddRmsNorm(x.p, h.p, l.n2, h.p, n, kDim, 1e-5f);
    gpu->MatMul(l.gate, h.p, g.p, n);
    gpu->MatMul(l.up, h.p, u.p, n);
    float* out = separate_out ? s.p : g.p;
    gpu->SwiGLU(g.p, u.p, out, int64_t(n) * ffn);
    gpu->MatMul(l.down, out, h.p, n);
  }
  gpu->Add(x.p, h.p, int64_t(n) * kDim);
  EXPECT_TRUE(gpu->Synchronize().ok());
  return {x.Get(), attn.Get(), g.Get(), u.Get(), s.Get()};
}

}  // namespace rocmforge::gputest::dense_stack
