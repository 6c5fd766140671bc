// The split-K merge folded into the grouped attention kernel
// (gpu::SetAttentionMergeFold): the last split of a head chunk to finish
// merges the partials (and quantizes them for the output projection), a token
// whose keys fit one split writes directly. Checked bit for bit against the
// unfused kernels (attention kernel + merge kernel, + quantize): the attention
// output and the output projection fed by the quantized activations, at
// batches of 1, 3, 17 and 130 tokens (the last runs unsplit) at contexts
// 1..4097 (split counts 1 to 32, one active split to all; the projection
// compared at batch <= 8, where it reads the quantized activations), for GQA groups of
// 4 and 8, MQA, MHA, group 3 (chunks whose width does not allow the Q8_K rule
// in the kernel: the merge kernel quantizes), head_dim 64, 96 (the per-head
// kernel: never folded), 128 and 256. The folded launches repeat (the split
// counters must be back at zero) and replay as automatic graphs.
#include <algorithm>
#include <cmath>

#include "tests/gpu/attention_test_util.h"
#include "tests/gpu/gpu_config_guard.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

class GpuAttentionFold : public ::testing::TestWithParam<AttnCase> {};

// Outputs of one decode step: attention, and the projection that reads it.
struct StepOut {
  std::vector<float> attn, y;
};

TEST_P(GpuAttentionFold, FoldedMergeEqualsMergeKernelBitForBit) {
  RF_REQUIRE_GPU(gpu);
  const AttnCase c = GetParam();
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  // The fold is the SIMT grouped kernel's: both sides of the comparison on it.
  gpu::SetDecodeAttnConfig(gpu::DecodeAttnConfig{-1, 0, 0});
  const int q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
  // (tokens, context of the first token): one key; 130 keys, the tg128
  // case (5 of 8 splits active); 4097 keys (all 32 splits); then batches.
  const std::pair<int, int> cases[] = {{1, 1}, {1, 130}, {1, 4097}, {3, 0}, {17, 0}, {130, 0}};
  for (const auto& [n, first_ctx] : cases) {
    // Contexts: the extremes (one key; one key past a 32-key split; 4097),
    // the rest random (shorter in the larger batches: filling the cache costs).
    std::uniform_int_distribution<int> any_ctx(1, n <= 3 ? 4097 : n <= 17 ? 600 : 200);
    std::vector<int> ctx;
    for (int i = 0; i < n; ++i) ctx.push_back(any_ctx(rng));
    const int extremes[] = {1, 33, 4097};
    if (n == 1) {
      ctx[0] = first_ctx;
    } else {
      for (int i = 0; i < 3; ++i) ctx[i] = extremes[i];
    }
    int blocks = 0;
    for (int x : ctx) blocks += (x + kBlock - 1) / kBlock;
    const std::vector<std::vector<int32_t>> tables = ScatteredTables(rng, ctx, blocks);
    KvCacheShape shape{1, c.n_kv_heads, c.head_dim, kBlock, blocks};
    ASSERT_TRUE(gpu->InitKvCache(shape).ok());
    // Fill every position (the decode tokens' own K/V included) in one step.
    ASSERT_TRUE(StoreRandomKv(rng, MakeStep(ctx, ctx, tables), kv_dim, {gpu.get()}));
    const StepBatch step = MakeStep(ctx, std::vector<int>(n, 1), tables);
    const auto q = RandomVec(rng, size_t(n) * q_dim);
    for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_K}) {
      if (q_dim % GetTypeInfo(type)->block_size != 0) continue;  // e.g. 6 x 96 is no Q4_K row
      HostTensor wo = MakeTensor(rng, type, 96, q_dim);
      auto w = gpu->LoadWeight(wo.info);
      ASSERT_TRUE(w.ok()) << w.status();
      // The same buffers in every run, so repeated runs replay one graph.
      Buf qg(gpu.get(), q), og(gpu.get(), size_t(n) * q_dim), yg(gpu.get(), size_t(n) * 96);
      const std::vector<float> poison_attn(size_t(n) * q_dim, NAN), poison_y(size_t(n) * 96, NAN);
      auto run = [&](bool fold, bool fusions) {
        gpu::SetAttentionMergeFold(fold);
        gpu->SetFusion(fusions);
        EXPECT_TRUE(gpu->Upload(og.p, poison_attn.data(), poison_attn.size() * sizeof(float)).ok());
        EXPECT_TRUE(gpu->Upload(yg.p, poison_y.data(), poison_y.size() * sizeof(float)).ok());
        EXPECT_TRUE(gpu->BeginStep(step).ok());
        gpu->Attention(0, qg.p, og.p, c.n_heads, 1.0f / std::sqrt(float(c.head_dim)));
        gpu->MatMul(*w, og.p, yg.p, n);
        EXPECT_TRUE(gpu->Synchronize().ok());
        return StepOut{og.Get(), yg.Get()};
      };
      for (bool fusions : {true, false}) {
        const StepOut want = run(false, fusions);
        for (float x : want.attn) ASSERT_TRUE(std::isfinite(x)) << "unfused output not written";
        for (int rep = 0; rep < 3; ++rep) {  // counters reset; graph replays
          const StepOut got = run(true, fusions);
          EXPECT_EQ(got.attn, want.attn) << n << " tokens, " << TypeName(type) << ", fusions "
                                         << fusions << ", run " << rep;
          // The projection on the small-batch kernels reads the quantized
          // activations (folded or not); from kMmqMinTokens (MMQ) or past
          // kSmallBatchMax a GEMM runs, whose K-split sums are not
          // bit-reproducible between runs: every value written (the outputs
          // start as NaN) and equal within rounding.
          if (n <= gpu::kSmallBatchMax && !gpu::MatMulMmqTakes(type, w->data, q_dim, n)) {
            EXPECT_EQ(got.y, want.y) << n << " tokens, " << TypeName(type) << ", fusions "
                                     << fusions << ", run " << rep;
          } else {
            EXPECT_LE(RelErr(got.y, want.y), 1e-5) << n << " tokens, " << TypeName(type)
                                                   << ", fusions " << fusions << ", run " << rep;
          }
        }
        // And back: the unfused path still runs after the folded one.
        EXPECT_EQ(run(false, fusions).attn, want.attn);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Heads, GpuAttentionFold,
                         ::testing::Values(AttnCase{32, 8, 128}, AttnCase{8, 2, 64},
                                           AttnCase{32, 1, 128}, AttnCase{8, 8, 128},
                                           AttnCase{12, 4, 64}, AttnCase{8, 4, 256},
                                           AttnCase{6, 2, 96}),
                         AttnCaseName);

}  // namespace
}  // namespace rocmforge::gputest
