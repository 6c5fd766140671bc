// The matrix-core decode kernel (gpu::DecodeAttnConfig kernel 1; NVIDIA builds)
// against the CPU backend and the SIMT grouped kernel (kernel -1) on the same
// caches and queries: decode batches of 1, 3, 17 and 64 tokens at contexts
// 1..4097 (every split count the rule picks, plus forced targets that give
// 1 split and odd ones; single splits on 8-warp blocks, the default, and on
// 4-warp ones), alone and with a 30-token prefill chunk in the step,
// over scattered block tables, for GQA 2/3/4/8, MQA and MHA at head_dim 64 and
// 128. Queries at two scales: flat and peaked softmax. Per token, outputs
// poisoned with NaN. The two kernels compute the same f32 math in another
// order (the matrix-core kernel splits Q and P into f16 hi + lo parts; K and V
// are f16 in the cache): bound 1e-4 relative.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/backend/gpu/gpu_backend.h"
#include "kernels/gpu_api.h"
#include "tests/gpu/attention_test_util.h"
#include "tests/gpu/gpu_config_guard.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

class GpuAttentionDecodeMma : public ::testing::TestWithParam<AttnCase> {};

// Worst per-token relative error of a against b (rows of `width` values).
double WorstRow(const std::vector<float>& a, const std::vector<float>& b, int width) {
  double worst = 0.0;
  for (size_t r = 0; r * width < a.size(); ++r) {
    const std::vector<float> x(a.begin() + r * width, a.begin() + (r + 1) * width);
    const std::vector<float> y(b.begin() + r * width, b.begin() + (r + 1) * width);
    worst = std::max(worst, RelErr(x, y));
  }
  return worst;
}

// Layer 0's attention over `step` for queries q on backend b; outputs start as
// NaN, so a row the kernel leaves unwritten shows.
std::vector<float> AttentionOf(Backend* b, const StepBatch& step, const std::vector<float>& q, int n_heads,
                               int q_dim, float scale) {
  EXPECT_TRUE(b->BeginStep(step).ok());
  Buf qb(b, q), ob(b, std::vector<float>(size_t(step.n_tokens()) * q_dim, NAN));
  b->Attention(0, qb.p, ob.p, n_heads, scale);
  EXPECT_TRUE(b->Synchronize().ok());
  return ob.Get();
}

// The SIMT kernel against the CPU (1e-2), and the matrix-core kernel at each
// split target against the CPU (1e-2) and the SIMT kernel (1e-4), on the same
// step and queries.
void ExpectKernelsAgree(GpuBackend* gpu, Backend* cpu, const StepBatch& step, const std::vector<float>& q,
                        const AttnCase& c, const std::vector<int>& targets, const std::string& what) {
  const int q_dim = c.n_heads * c.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const std::vector<float> want = AttentionOf(cpu, step, q, c.n_heads, q_dim, scale);
  auto run_gpu = [&](gpu::DecodeAttnConfig cfg) {
    gpu::SetDecodeAttnConfig(cfg);
    return AttentionOf(gpu, step, q, c.n_heads, q_dim, scale);
  };
  const std::vector<float> simt = run_gpu(gpu::DecodeAttnConfig{-1, 0, 0});
  EXPECT_LE(WorstRow(simt, want, q_dim), 1e-2) << "simt, " << what;
  for (int target : targets) {
    const std::vector<float> mma = run_gpu(gpu::DecodeAttnConfig{1, 0, target});
    EXPECT_LE(WorstRow(mma, want, q_dim), 1e-2) << what << ", target " << target;
    EXPECT_LE(WorstRow(mma, simt, q_dim), 1e-4) << what << ", target " << target;
  }
  // The automatic rule without the short-context single split.
  const std::vector<float> split = run_gpu(gpu::DecodeAttnConfig{1, 0, 0, 0});
  EXPECT_LE(WorstRow(split, want, q_dim), 1e-2) << what << ", no one-split rule";
  EXPECT_LE(WorstRow(split, simt, q_dim), 1e-4) << what << ", no one-split rule";
  // One-split launches on 4-warp blocks (the default takes 8): forced (target
  // 1, every context up to 4097 keys) and by the automatic rule.
  for (int target : {1, 0}) {
    gpu::DecodeAttnConfig cfg{1, 0, target};
    cfg.one_split_warps = 4;
    const std::vector<float> got = run_gpu(cfg);
    const std::string how = ", 4-warp single split, target " + std::to_string(target);
    EXPECT_LE(WorstRow(got, want, q_dim), 1e-2) << what << how;
    EXPECT_LE(WorstRow(got, simt, q_dim), 1e-4) << what << how;
  }
}

TEST_P(GpuAttentionDecodeMma, MatchesCpuAndSimtKernel) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  const AttnCase c = GetParam();
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  const int q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
  for (int n : {1, 3, 17, 64}) {
    for (bool chunk : {false, true}) {
      std::uniform_int_distribution<int> any_ctx(1, 4097), short_ctx(1, 600);
      std::vector<int> ctx, n_new;
      for (int i = 0; i < n; ++i) ctx.push_back(n <= 3 ? any_ctx(rng) : short_ctx(rng));
      // One token of <= 256 keys: the automatic rule's single split (one_split_keys).
      if (n == 1 && !chunk) ctx[0] = std::uniform_int_distribution<int>(1, 256)(rng);
      if (n > 1) {  // the extremes: one key, and 4097 (65 tiles of 16 + 1)
        ctx[0] = 1;
        ctx[1] = 4097;
      }
      n_new.assign(ctx.size(), 1);
      if (chunk) {
        ctx.push_back(std::uniform_int_distribution<int>(30, 900)(rng));
        n_new.push_back(30);
      }
      int blocks = 0;
      for (int x : ctx) blocks += (x + kBlock - 1) / kBlock;
      const auto tables = ScatteredTables(rng, ctx, blocks);
      const KvCacheShape shape{1, c.n_kv_heads, c.head_dim, kBlock, blocks};
      ASSERT_TRUE(gpu->InitKvCache(shape).ok());
      ASSERT_TRUE(cpu->InitKvCache(shape).ok());
      // Every position (the step's own tokens too) stored in one fill step.
      ASSERT_TRUE(StoreRandomKv(rng, MakeStep(ctx, ctx, tables), kv_dim, {gpu.get(), cpu.get()}));
      const StepBatch step = MakeStep(ctx, n_new, tables);
      const int tokens = step.n_tokens();
      // Peaked softmax (q scale 6) once per shape: the CPU reference costs.
      for (float q_scale : {1.0f, 6.0f}) {
        if (q_scale != 1.0f && n != 17) continue;
        const auto q = RandomVec(rng, size_t(tokens) * q_dim, q_scale);
        // The automatic split rule (with and without the short-context
        // single split), one split (target 1 block), odd splits.
        ExpectKernelsAgree(gpu.get(), cpu.get(), step, q, c, {0, 1, 7 * c.n_kv_heads, 1000},
                           std::to_string(n) + " decode tokens" + (chunk ? " + a chunk" : "") + ", q scale " +
                               std::to_string(q_scale));
      }
    }
  }
}

// KV blocks of other sizes than the suites' 16: the matrix-core kernel reads a
// window of 32 block-table entries a lane and maps keys to pages by shifts
// (powers of two) or divisions (others), so pages of 1, 8, 32 and 48
// positions (a 16-key tile spans 16 pages, half a page, or a page's part),
// at contexts 1..1500 over scattered tables: against the SIMT kernel (1e-4)
// and the CPU (1e-2).
TEST(GpuAttentionDecodeMmaBlocks, OtherBlockSizesMatchSimtAndCpu) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  for (const AttnCase c : {AttnCase{32, 8, 128}, AttnCase{8, 2, 64}}) {
    const int q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
    for (int block : {1, 8, 32, 48}) {
      for (int n : {3, 17}) {
        std::uniform_int_distribution<int> any_ctx(1, 1500);
        std::vector<int> ctx;
        for (int i = 0; i < n; ++i) ctx.push_back(any_ctx(rng));
        ctx[0] = 1;
        ctx[1] = block * 33 + 5 <= 1500 ? block * 33 + 5 : 1500;  // past a 32-entry window
        const std::vector<int> n_new(ctx.size(), 1);
        int blocks = 0;
        for (int x : ctx) blocks += (x + block - 1) / block;
        const auto tables = ScatteredTables(rng, ctx, blocks, block);
        const KvCacheShape shape{1, c.n_kv_heads, c.head_dim, block, blocks};
        ASSERT_TRUE(gpu->InitKvCache(shape).ok());
        ASSERT_TRUE(cpu->InitKvCache(shape).ok());
        ASSERT_TRUE(StoreRandomKv(rng, MakeStep(ctx, ctx, tables, block), kv_dim, {gpu.get(), cpu.get()}));
        const StepBatch step = MakeStep(ctx, n_new, tables, block);
        const int tokens = step.n_tokens();
        const auto q = RandomVec(rng, size_t(tokens) * q_dim);
        ExpectKernelsAgree(gpu.get(), cpu.get(), step, q, c, {0, 1},
                           AttnCaseName(::testing::TestParamInfo<AttnCase>(c, 0)) + ", block " +
                               std::to_string(block) + ", " + std::to_string(n) + " tokens");
      }
    }
  }
}

// Attention feeding the output projection (an MMQ GEMM split over K) with the
// projection's outputs zeroed by the attention's merge + quantization
// (GpuBackend::SetProducerZeroing; the merge kernel where the keys split, the
// quantization kernel where they do not) and by the GEMM's own zeroing kernel:
// bit for bit the same attention output and projection. Batches of 8 and 32
// tokens at contexts 1..700 on both kernels (split keys: the merge kernel
// zeroes; the matrix-core kernel forced to one split: the attention kernel
// itself quantizes and zeroes), and against the unfused launches;
// the projection outputs start as garbage, so a missing
// zero shows; three runs with zeroing on (the first learns that the GEMM
// splits K), and the producer must have zeroed the group in the last two.
TEST(GpuAttentionZeroing, MergeZeroesOutputProjectionLikeGemm) {
  RF_REQUIRE_GPU(gpu);
  if (!gpu::MatMulMmqSupported(GgmlType::Q4_K)) GTEST_SKIP() << "no int8 MMQ GEMM on this device";
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  gpu::GemmConfig gc = restore_settings.gemm();
  gc.narrow = 3;  // MMQ
  gc.splits = 2;
  gpu::SetGemmConfig(gc);
  const AttnCase c{8, 2, 128};
  const int q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim, rows = 384;
  HostTensor wo = MakeTensor(rng, GgmlType::Q4_K, rows, q_dim);
  auto w = gpu->LoadWeight(wo.info);
  ASSERT_TRUE(w.ok()) << w.status();
  for (int n : {8, 32}) {
    std::uniform_int_distribution<int> any_ctx(1, 700);
    std::vector<int> ctx;
    for (int i = 0; i < n; ++i) ctx.push_back(any_ctx(rng));
    int blocks = 0;
    for (int x : ctx) blocks += (x + kBlock - 1) / kBlock;
    const auto tables = ScatteredTables(rng, ctx, blocks);
    ASSERT_TRUE(gpu->InitKvCache(KvCacheShape{1, c.n_kv_heads, c.head_dim, kBlock, blocks}).ok());
    ASSERT_TRUE(StoreRandomKv(rng, MakeStep(ctx, ctx, tables), kv_dim, {gpu.get()}));
    const StepBatch step = MakeStep(ctx, std::vector<int>(ctx.size(), 1), tables);
    const auto q0 = RandomVec(rng, size_t(n) * q_dim);
    const std::vector<float> garbage(size_t(n) * rows, 1e3f);
    // SIMT, matrix cores (split keys: the merge kernel zeroes), matrix cores
    // with one split (no merge kernel: the quantization kernel zeroes).
    for (gpu::DecodeAttnConfig cfg : {gpu::DecodeAttnConfig{-1, 0, 0, 0}, gpu::DecodeAttnConfig{1, 0, 0, 0},
                                      gpu::DecodeAttnConfig{1, 0, 1, 0}}) {
      gpu::SetDecodeAttnConfig(cfg);
      auto run = [&](bool zeroing, std::vector<std::vector<float>>* out, bool fused = true) {
        gpu->SetFusions(fused ? GpuBackend::kDefaultFusions : 0u);
        gpu->SetProducerZeroing(zeroing);
        ASSERT_TRUE(gpu->BeginStep(step).ok());
        Buf q(gpu.get(), q0), o(gpu.get(), size_t(n) * q_dim), y(gpu.get(), garbage);
        gpu->Attention(0, q.p, o.p, c.n_heads, 0.09f);
        gpu->MatMul(*w, o.p, y.p, n);
        ASSERT_TRUE(gpu->Synchronize().ok());
        *out = {o.Get(), y.Get()};
      };
      std::vector<std::vector<float>> ref, got, plain;
      run(false, &ref);
      // Unfused (attention, then the projection's own quantization and
      // zeroing) gives the same bits as the fused producer.
      run(false, &plain, /*fused=*/false);
      for (size_t i = 0; i < ref.size(); ++i) {
        EXPECT_EQ(0, std::memcmp(ref[i].data(), plain[i].data(), ref[i].size() * sizeof(float)))
            << "fused vs unfused, " << n << " tokens, buffer " << i;
      }
      const std::string what = std::to_string(n) + " tokens, kernel " + std::to_string(cfg.kernel) +
                               ", target " + std::to_string(cfg.target_blocks);
      int zeroed = 0;
      for (int rep = 0; rep < 3; ++rep) {
        const int before = gpu->producer_zeroed_groups();
        run(true, &got);
        zeroed += rep > 0 ? gpu->producer_zeroed_groups() - before : 0;
        for (size_t i = 0; i < ref.size(); ++i) {
          EXPECT_EQ(0, std::memcmp(ref[i].data(), got[i].data(), ref[i].size() * sizeof(float)))
              << what << " rep " << rep << " buffer " << i;
        }
      }
      EXPECT_EQ(zeroed, 2) << what;
      for (float f : got[1]) ASSERT_TRUE(std::isfinite(f) && std::fabs(f) < 1e3f) << what;
    }
  }
}

// The shapes the matrix-core kernel takes (head_dim 64 / 128; chunks of 1, 2,
// 4 and 8 query heads); the others fall back to the kernels GpuAttention covers.
INSTANTIATE_TEST_SUITE_P(Heads, GpuAttentionDecodeMma, ::testing::ValuesIn(kMmaAttnCases), AttnCaseName);

}  // namespace
}  // namespace rocmforge::gputest
