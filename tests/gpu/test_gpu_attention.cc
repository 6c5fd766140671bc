// Paged attention on the GPU (f16 KV) against the CPU backend (f32 KV):
// varlen prefill batches over scattered block tables, a chunked prefill that
// continues a cached prefix, and decode steps at context lengths up to 4097
// (the split-K path), for MHA, GQA groups of 2, 3, 4 and 8 and MQA (up to 32
// query heads on one KV head), head_dim 64, 96 (the per-head kernel), 128 and
// 256; decode batches of 1/3/17/64 tokens at contexts 1..4097 with and without
// a prefill chunk in the step; the quantization for the output projection
// folded into the split merge; prefill chunks of 1..513 tokens at positions
// 0, 5 and 4000 between decode tokens (the token-tile kernel); runs of 1, 2,
// 31, 33 and 65 tokens at tile edges on both tile kernels (matrix cores and
// SIMT). Outputs are poisoned with NaN before each run.
#include <algorithm>
#include <cmath>

#include "tests/gpu/attention_test_util.h"
#include "tests/gpu/gpu_config_guard.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

class GpuAttention : public ::testing::TestWithParam<AttnCase> {};

// Runs one step on both backends: store K/V, then attention; returns rel. error
// (per_token: the worst token's, so one wrong token among thousands shows).
double RunBoth(Backend* gpu, Backend* cpu, const StepBatch& b, const AttnCase& c, std::mt19937& rng,
               bool attend = true, bool per_token = false) {
  EXPECT_TRUE(gpu->BeginStep(b).ok());
  EXPECT_TRUE(cpu->BeginStep(b).ok());
  const int n = b.n_tokens();
  const int kv_dim = c.n_kv_heads * c.head_dim, q_dim = c.n_heads * c.head_dim;
  const auto k = RandomVec(rng, size_t(n) * kv_dim), v = RandomVec(rng, size_t(n) * kv_dim);
  Buf kg(gpu, k), kc(cpu, k), vg(gpu, v), vc(cpu, v);
  gpu->StoreKv(0, kg.p, vg.p);
  cpu->StoreKv(0, kc.p, vc.p);
  if (!attend) {
    EXPECT_TRUE(gpu->Synchronize().ok());
    return 0.0;
  }
  const auto q = RandomVec(rng, size_t(n) * q_dim);
  const std::vector<float> poison(size_t(n) * q_dim, NAN);  // every output must be written
  Buf qg(gpu, q), qc(cpu, q), og(gpu, poison), oc(cpu, size_t(n) * q_dim);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  gpu->Attention(0, qg.p, og.p, c.n_heads, scale);
  cpu->Attention(0, qc.p, oc.p, c.n_heads, scale);
  EXPECT_TRUE(gpu->Synchronize().ok());
  if (!per_token) return RelErr(og.Get(), oc.Get());
  const std::vector<float> got = og.Get(), want = oc.Get();
  double worst = 0.0;
  for (int t = 0; t < n; ++t) {
    const auto row = [&](const std::vector<float>& v) {
      return std::vector<float>(v.begin() + size_t(t) * q_dim, v.begin() + size_t(t + 1) * q_dim);
    };
    worst = std::max(worst, RelErr(row(got), row(want)));
  }
  return worst;
}

// Sequences that end at `final_ctx` positions with `n_new` tokens each in the
// step: the step that fills their caches up to the step (no attention needed),
// the step itself, and the pool size they need. n_new defaults to 1 (decode).
struct DecodeAtContexts {
  int blocks = 0;
  std::vector<std::vector<int32_t>> tables;
  StepBatch fill, decode;
};
DecodeAtContexts MakeDecodeAtContexts(std::mt19937& rng, const std::vector<int>& final_ctx,
                                      std::vector<int> n_new = {}) {
  DecodeAtContexts d;
  if (n_new.empty()) n_new.assign(final_ctx.size(), 1);
  for (int x : final_ctx) d.blocks += (x + kBlock - 1) / kBlock;
  d.tables = ScatteredTables(rng, final_ctx, d.blocks);
  std::vector<int> fill_ctx;
  std::vector<std::vector<int32_t>> fill_tables;
  for (size_t s = 0; s < final_ctx.size(); ++s) {
    if (final_ctx[s] > n_new[s]) {  // a sequence whose whole context is new has nothing cached
      fill_ctx.push_back(final_ctx[s] - n_new[s]);
      fill_tables.push_back(d.tables[s]);
    }
  }
  d.fill = MakeStep(fill_ctx, fill_ctx, fill_tables);
  d.decode = MakeStep(final_ctx, n_new, d.tables);
  return d;
}

// Both backends' KV pools sized for `d`, with every position before its step
// stored (d.fill). False if a pool cannot be made.
bool PrepareKv(Backend* gpu, Backend* cpu, const DecodeAtContexts& d, const AttnCase& c,
               std::mt19937& rng) {
  const KvCacheShape shape{1, c.n_kv_heads, c.head_dim, kBlock, d.blocks};
  if (!gpu->InitKvCache(shape).ok() || !cpu->InitKvCache(shape).ok()) return false;
  if (d.fill.n_tokens() > 0) RunBoth(gpu, cpu, d.fill, c, rng, /*attend=*/false);
  return true;
}

TEST_P(GpuAttention, VarlenPrefillAndChunkedContinuation) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  const AttnCase c = GetParam();
  std::mt19937 rng(std::random_device{}());
  KvCacheShape shape{1, c.n_kv_heads, c.head_dim, kBlock, 200};
  ASSERT_TRUE(gpu->InitKvCache(shape).ok());
  ASSERT_TRUE(cpu->InitKvCache(shape).ok());
  const std::vector<int> final_ctx = {1, 17, 333, 1000};
  auto tables = ScatteredTables(rng, final_ctx, 200);
  // Step 1: prefill everything but the last 50 tokens of the long sequence.
  std::vector<int> ctx = {1, 17, 333, 950}, n_new = {1, 17, 333, 950};
  EXPECT_LE(RunBoth(gpu.get(), cpu.get(), MakeStep(ctx, n_new, tables), c, rng), 1e-2);
  // Step 2: a 50-token chunk over the cached 950, plus decode tokens of the others.
  std::vector<int> ctx2 = {2, 18, 334, 1000}, n2 = {1, 1, 1, 50};
  EXPECT_LE(RunBoth(gpu.get(), cpu.get(), MakeStep(ctx2, n2, tables), c, rng), 1e-2);
}

TEST_P(GpuAttention, DecodeAtLongContextsSplitK) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  const AttnCase c = GetParam();
  std::mt19937 rng(std::random_device{}());
  const DecodeAtContexts d = MakeDecodeAtContexts(rng, {4097, 600, 2049});
  ASSERT_TRUE(PrepareKv(gpu.get(), cpu.get(), d, c, rng));
  EXPECT_LE(RunBoth(gpu.get(), cpu.get(), d.decode, c, rng), 1e-2);
}

// Decode batches of 1, 3, 17 and 64 tokens, each sequence at its own context
// (1 to 4097), alone and with a 100-token prefill chunk of another sequence in
// the same step: small steps take the split-K path, large ones (tokens x KV
// heads >= 1024) run unsplit.
TEST_P(GpuAttention, DecodeBatchesAtMixedContextsWithAndWithoutPrefill) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  const AttnCase c = GetParam();
  std::mt19937 rng(std::random_device{}());
  for (int n : {1, 3, 17, 64}) {
    for (bool chunk : {false, true}) {
      std::uniform_int_distribution<int> any_ctx(1, 4097), short_ctx(1, 400);
      std::vector<int> final_ctx;
      for (int i = 0; i < n; ++i) final_ctx.push_back(n <= 3 ? any_ctx(rng) : short_ctx(rng));
      if (n > 1) {  // the extremes
        final_ctx[0] = 4097;
        final_ctx[1] = 1;
      }
      std::vector<int> n_new(final_ctx.size(), 1);
      if (chunk) {
        final_ctx.push_back(std::uniform_int_distribution<int>(100, 900)(rng));
        n_new.push_back(100);
      }
      const DecodeAtContexts d = MakeDecodeAtContexts(rng, final_ctx, n_new);
      ASSERT_TRUE(PrepareKv(gpu.get(), cpu.get(), d, c, rng));
      EXPECT_LE(RunBoth(gpu.get(), cpu.get(), d.decode, c, rng), 1e-2)
          << n << " decode tokens" << (chunk ? " + a prefill chunk" : "");
    }
  }
}

// Prefill chunks of awkward lengths (1, 7, 17, 100, 513) starting at awkward
// positions (0, 5, 4000) between decode tokens of other sequences in one
// step: the token-tile kernel (batches of >= 256 tokens) takes the chunks'
// runs, tiles straddle chunk and sequence boundaries, lone tokens fall to the
// grouped kernel. Steps with few KV-head blocks per token run split-K (MQA at
// 4000). Checked per token, so one wrong token among hundreds shows.
TEST_P(GpuAttention, PrefillChunksAtAwkwardPositionsBetweenDecodeTokens) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  const AttnCase c = GetParam();
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> decode_ctx(1, 700);
  // 513 tokens over a 4000-token prefix only for the narrow shapes (CPU time).
  const bool narrow = c.n_heads * c.head_dim <= 1024;
  for (int start : {0, 5, 4000}) {
    std::vector<int> final_ctx, n_new;
    final_ctx.push_back(decode_ctx(rng));  // a decode token first, so tiles are shifted
    n_new.push_back(1);
    for (int len : {1, 7, 17, 100, 513}) {
      if (start == 4000 && len == 513 && !narrow) {
        final_ctx.push_back(300);  // a cheap prompt instead, so the step has >= 256 tokens
        n_new.push_back(300);
        continue;
      }
      final_ctx.push_back(start + len);
      n_new.push_back(len);
      final_ctx.push_back(decode_ctx(rng));
      n_new.push_back(1);
    }
    const DecodeAtContexts d = MakeDecodeAtContexts(rng, final_ctx, n_new);
    ASSERT_TRUE(PrepareKv(gpu.get(), cpu.get(), d, c, rng));
    EXPECT_LE(RunBoth(gpu.get(), cpu.get(), d.decode, c, rng, /*attend=*/true, /*per_token=*/true),
              1e-2)
        << "chunks at " << start;
  }
}

// Token-tile edges on both tile kernels (gpu::PrefillAttnConfig: the matrix-core
// one and the SIMT one): runs of 1, 2, 31, 33 and 65 tokens (a tile holds 32 /
// heads-per-block tokens, so runs end and straddle tiles at every offset; the
// matrix-core kernel takes 64 keys a pass, so contexts end mid-pass) starting
// at positions 0, 3, 37 and 300 between decode tokens, plus a 129-token prompt
// so the step has >= 256 tokens (where tiles are taken). Per token, vs the CPU.
TEST_P(GpuAttention, TileEdgesOnBothTileKernels) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  const AttnCase c = GetParam();
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> decode_ctx(1, 500);
  const GpuConfigGuard restore_settings;
  for (int kernel : {1, -1}) {
    gpu::SetPrefillAttnConfig(gpu::PrefillAttnConfig{kernel});
    for (int start : {0, 3, 37, 300}) {
      std::vector<int> final_ctx, n_new;
      auto add = [&](int ctx, int n) {
        final_ctx.push_back(ctx);
        n_new.push_back(n);
      };
      add(decode_ctx(rng), 1);
      for (int len : {1, 2, 31, 33, 65}) {
        add(start + len, len);
        if (len != 31) add(decode_ctx(rng), 1);  // the 31- and 33-token runs back to back
      }
      add(129, 129);
      const DecodeAtContexts d = MakeDecodeAtContexts(rng, final_ctx, n_new);
      ASSERT_TRUE(PrepareKv(gpu.get(), cpu.get(), d, c, rng));
      EXPECT_LE(RunBoth(gpu.get(), cpu.get(), d.decode, c, rng, /*attend=*/true, /*per_token=*/true),
                1e-2)
          << "tile kernel " << kernel << ", runs at " << start;
    }
  }
}

// Attention followed by the output projection at batch <= 8: the backend
// folds the projection's activation quantization into the split-K merge.
// With fusions on and off the attention output and the projection must be
// bit-identical (decode tokens at long contexts, so the merge runs). The
// projection runs without a K split: split parts added by atomics (MMQ from
// 3 tokens) do not reproduce bit for bit, and two unfused runs that happened
// to agree made an earlier version of this test fail at random.
TEST_P(GpuAttention, QuantizeFoldedIntoMergeMatchesUnfused) {
  RF_REQUIRE_GPU(gpu);
  const AttnCase c = GetParam();
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  gpu::GemmConfig one_split = restore_settings.gemm();
  one_split.splits = 1;
  gpu::SetGemmConfig(one_split);
  const DecodeAtContexts d = MakeDecodeAtContexts(rng, {1500, 77, 700});
  auto cpu = MakeCpu();
  ASSERT_TRUE(PrepareKv(gpu.get(), cpu.get(), d, c, rng));
  const StepBatch& step = d.decode;
  const int n = step.n_tokens(), q_dim = c.n_heads * c.head_dim;
  const auto q = RandomVec(rng, size_t(n) * q_dim);
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_K}) {
    if (q_dim % GetTypeInfo(type)->block_size != 0) continue;  // e.g. 6 x 96 is no Q4_K row
    HostTensor wo = MakeTensor(rng, type, 96, q_dim);
    auto w = gpu->LoadWeight(wo.info);
    ASSERT_TRUE(w.ok()) << w.status();
    // Runs 0 and 2 unfused, run 1 fused.
    std::vector<float> attn[3], y[3];
    for (int run = 0; run < 3; ++run) {
      gpu->SetFusion(run == 1);
      ASSERT_TRUE(gpu->BeginStep(step).ok());
      Buf qg(gpu.get(), q), og(gpu.get(), size_t(n) * q_dim), yg(gpu.get(), size_t(n) * 96);
      gpu->Attention(0, qg.p, og.p, c.n_heads, 0.1f);
      gpu->MatMul(*w, og.p, yg.p, n);
      ASSERT_TRUE(gpu->Synchronize().ok());
      attn[run] = og.Get();
      y[run] = yg.Get();
    }
    EXPECT_EQ(attn[0], attn[1]) << TypeName(type);
    EXPECT_EQ(attn[0], attn[2]) << TypeName(type);
    EXPECT_EQ(y[0], y[2]) << TypeName(type) << ": the unfused projection does not reproduce itself";
    EXPECT_EQ(y[0], y[1]) << TypeName(type);
  }
}

INSTANTIATE_TEST_SUITE_P(Heads, GpuAttention, ::testing::ValuesIn(AllAttnCases()), AttnCaseName);

}  // namespace
}  // namespace rocmforge::gputest
