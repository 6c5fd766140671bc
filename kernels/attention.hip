// Paged attention over the f16 KV cache for a variable-length batch (prefill
// chunks and decode tokens alike): causal by construction, since each token
// sees exactly its first token_ctx cached positions. GQA/MQA read the shared
// KV head in place (no per-head copies). Long contexts are split across blocks
// (split-K over the block table) and merged by a second kernel with the usual
// log-sum-exp rescaling.
//
// Two attention kernels write the same outputs and split-K partials: the
// GQA-grouped one (kernels/attention_grouped.hip; one block per KV head serves
// its query heads, for head_dim 64/128/256) and AttentionKernel below (one
// block per query head, any even head_dim <= 256), which takes the other
// shapes, or every shape with RF_ATTN=old in the environment (for comparison).
// On NVIDIA the grouped blocks run on the matrix cores instead
// (attention_grouped.hip, DecodeMmaKernel; gpu::DecodeAttnConfig, default for
// head_dim 64/128): its split rule aims at one wave of resident blocks, and
// with one split it quantizes its own output for the output projection (and
// zeroes that GEMM's K-split outputs), so no merge or quantize kernel runs.
// In batches of >= 256 tokens, runs of >= 2 consecutive tokens of one
// sequence inside a tile of the batch (prefill chunks) take the token-tile
// kernel (kernels/attention_prefill.hip) beside the grouped one, for head_dim
// 64/128 (RF_ATTN=grouped: never; RF_ATTN=tiles: in every batch).
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kernels/act_quant_device.h"
#include "kernels/act_quant_launch.h"
#include "kernels/attention_device.h"
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"

namespace rocmforge::gpu {
namespace {

constexpr int kThreads = 128;
constexpr int kMaxHeadDim = 256;
constexpr int kMaxDimsPerLane = kMaxHeadDim / 32;
constexpr int kKeysPerSplit = 512;
constexpr int kMaxSplits = 32;
constexpr int kKeyGroup = 4;
// Small batches split further (down to kMinKeysPerSplit keys) until about
// kTargetBlocks blocks run, so a decode token's few heads use more than a few SMs.
constexpr int kMinKeysPerSplit = 16;
constexpr int kTargetBlocks = 512;

struct Partial {  // layout of one split's result in scratch (attention_device.h)
  static __device__ float* At(float* base, int64_t idx, int head_dim) {
    return attn::PartialAt(base, idx, head_dim);
  }
};

// grid: (n_heads, n_tokens, n_splits). Each wave takes keys round-robin and
// keeps an online softmax; waves merge through shared memory at the end.
__global__ void __launch_bounds__(kThreads)
    AttentionKernel(const float* q, float* out, AttnBatch b, int n_heads, int n_kv_heads,
                    int head_dim, float scale, const __half* k_cache, const __half* v_cache,
                    int block_size, int keys_per_split, float* partials) {
  __shared__ float q_s[kMaxHeadDim];
  __shared__ float wave_m[kMaxWaves], wave_l[kMaxWaves];
  __shared__ float wave_acc[kMaxWaves > 8 ? 8 : kMaxWaves][kMaxHeadDim];  // <= 128/32 waves
  const int h = blockIdx.x, t = blockIdx.y, split = blockIdx.z;
  const int lane = threadIdx.x % kWaveSize, wave = threadIdx.x / kWaveSize;
  const int n_waves = blockDim.x / kWaveSize;
  const int kv_h = h / (n_heads / n_kv_heads);
  const int kv_dim = n_kv_heads * head_dim;
  const int ctx = b.token_ctx[t];
  const int seq = b.token_seq[t];
  const int32_t* table = b.block_tables + b.seq_table_off[seq];
  const int key_begin = split * keys_per_split;
  const int key_end = min(ctx, key_begin + keys_per_split);

  const float* qh = q + (static_cast<int64_t>(t) * n_heads + h) * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) q_s[d] = qh[d] * scale;
  __syncthreads();

  float m = -INFINITY, l = 0.0f;
  float acc[kMaxDimsPerLane];
#pragma unroll
  for (int i = 0; i < kMaxDimsPerLane; ++i) acc[i] = 0.0f;
  // Keys in groups of kKeyGroup per wave: the K and V loads of the whole group
  // are in flight together (one key at a time left each wave waiting on a
  // round trip per key: ~28 us per decode layer).
  for (int j0 = key_begin + wave; j0 < key_end; j0 += kKeyGroup * n_waves) {
    float sc[kKeyGroup];
    float vv[kKeyGroup][kMaxDimsPerLane];  // V rows loaded with K, before the reductions
#pragma unroll
    for (int u = 0; u < kKeyGroup; ++u) {
      const int j = j0 + u * n_waves;
      float part = 0.0f;
#pragma unroll
      for (int i = 0; i < kMaxDimsPerLane; ++i) vv[u][i] = 0.0f;
      if (j < key_end) {
        const int64_t slot = static_cast<int64_t>(table[j / block_size]) * block_size + j % block_size;
        const __half* kr = k_cache + slot * kv_dim + kv_h * head_dim;
        const __half* vr = v_cache + slot * kv_dim + kv_h * head_dim;
#pragma unroll
        for (int i = 0; i < kMaxDimsPerLane; ++i) {
          const int d = lane + i * kWaveSize;
          if (d < head_dim) {
            part += q_s[d] * __half2float(kr[d]);
            vv[u][i] = __half2float(vr[d]);
          }
        }
      }
      sc[u] = WaveSum(part);  // j is uniform across the wave
    }
    // Key u = 0 is always visible, so m_new is finite.
    float m_new = m;
#pragma unroll
    for (int u = 0; u < kKeyGroup; ++u) {
      if (j0 + u * n_waves < key_end) m_new = fmaxf(m_new, sc[u]);
    }
    const float corr = expf(m - m_new);  // 0 on the first group (m = -inf)
    float p[kKeyGroup];
    l *= corr;
#pragma unroll
    for (int u = 0; u < kKeyGroup; ++u) {
      p[u] = j0 + u * n_waves < key_end ? expf(sc[u] - m_new) : 0.0f;
      l += p[u];
    }
#pragma unroll
    for (int i = 0; i < kMaxDimsPerLane; ++i) acc[i] *= corr;
#pragma unroll
    for (int u = 0; u < kKeyGroup; ++u) {
#pragma unroll
      for (int i = 0; i < kMaxDimsPerLane; ++i) acc[i] += p[u] * vv[u][i];  // p = 0 past the end
    }
    m = m_new;
  }
  if (lane == 0) {
    wave_m[wave] = m;
    wave_l[wave] = l;
  }
#pragma unroll
  for (int i = 0; i < kMaxDimsPerLane; ++i) {
    const int d = lane + i * kWaveSize;
    if (d < head_dim) wave_acc[wave][d] = acc[i];
  }
  __syncthreads();
  float gm = -INFINITY;
  for (int w = 0; w < n_waves; ++w) gm = fmaxf(gm, wave_m[w]);
  float gl = 0.0f;
  for (int w = 0; w < n_waves; ++w) {
    if (wave_m[w] != -INFINITY) gl += wave_l[w] * expf(wave_m[w] - gm);
  }
  const int64_t out_idx = static_cast<int64_t>(t) * n_heads + h;
  if (partials == nullptr) {
    float* o = out + out_idx * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
      float v = 0.0f;
      for (int w = 0; w < n_waves; ++w) {
        if (wave_m[w] != -INFINITY) v += wave_acc[w][d] * expf(wave_m[w] - gm);
      }
      o[d] = gl > 0.0f ? v / gl : 0.0f;
    }
  } else {
    float* p = Partial::At(partials, out_idx * gridDim.z + split, head_dim);
    if (threadIdx.x == 0) {
      p[0] = gm;
      p[1] = gl;
    }
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
      float v = 0.0f;
      for (int w = 0; w < n_waves; ++w) {
        if (wave_m[w] != -INFINITY) v += wave_acc[w][d] * expf(wave_m[w] - gm);
      }
      p[2 + d] = v;
    }
  }
}

// grid: (n_heads, n_tokens). Merges the splits of one (token, head).
// PDL (LaunchKernel): waits for the attention kernel before anything else.
__global__ void CombineSplitsKernel(const float* partials, float* out, int n_heads, int head_dim,
                                    int n_splits) {
  GridDependencyBegin();
  const int64_t idx = static_cast<int64_t>(blockIdx.y) * n_heads + blockIdx.x;
  const float* base = partials + idx * n_splits * (head_dim + 2);
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    out[idx * head_dim + d] = attn::MergeSplitValue<false>(base, n_splits, head_dim, d);
  }
}

// CombineSplitsKernel fused with the quantization of its output for the wo
// matmul. grid: (dim / 256, n_tokens), 256 threads, one output value each
// (the merge does exactly the per-value work of CombineSplitsKernel, in the
// same order, so `out` is bit-identical to it); a block's 256 values are one
// Q8_K group or eight Q8_0 slices, quantized as quantize_activation.hip does.
// (A first version merged a whole token in one block: 4 values per thread of
// serial split loops on one SM made decode 8% slower than not fusing.)
constexpr int kCombineThreads = 256;

// Also zeroes `zero` (the output projection's K-split outputs, grid-stride).
template <int kRule>
__global__ void __launch_bounds__(kCombineThreads)
    CombineSplitsQuantKernel(const float* partials, float* out, int n_heads, int head_dim,
                             int n_splits, ActQ8* xq, ZeroSpans zero) {
  GridDependencyBegin();  // PDL, as CombineSplitsKernel
  const int t = blockIdx.y;
  const int dim = n_heads * head_dim;
  const int i = blockIdx.x * kCombineThreads + threadIdx.x;  // dim is a multiple of 256
  const int h = i / head_dim, d = i % head_dim;
  const int64_t idx = static_cast<int64_t>(t) * n_heads + h;
  const float* base = partials + idx * n_splits * (head_dim + 2);
  const float o = attn::MergeSplitValue<false>(base, n_splits, head_dim, d);
  const int64_t flat = static_cast<int64_t>(t) * dim + i;
  out[flat] = o;
  float regs[1] = {o};
  BlockQuantizeRow<kCombineThreads, 1, kRule>(regs, flat - threadIdx.x, kCombineThreads, xq);
  ZeroSpansGridStride(zero);
}

int SplitCount(int n_tokens, int n_heads, int max_ctx) {
  // Enough blocks already fill the device: split only small batches.
  if (static_cast<int64_t>(n_tokens) * n_heads >= 1024) return 1;
  int splits = (max_ctx + kKeysPerSplit - 1) / kKeysPerSplit;
  const int64_t blocks = static_cast<int64_t>(n_tokens) * n_heads;
  const int64_t want = blocks > 0 ? (kTargetBlocks + blocks - 1) / blocks : 1;
  const int by_keys = (max_ctx + kMinKeysPerSplit - 1) / kMinKeysPerSplit;
  const int more = static_cast<int>(want < by_keys ? want : by_keys);
  if (more > splits) splits = more;
  if (splits > kMaxSplits) splits = kMaxSplits;
  return splits < 1 ? 1 : splits;
}

// RF_ATTN in the environment (for comparisons, read once): "old" = the per-head
// AttentionKernel everywhere, "grouped" = never token tiles, "tiles" = token
// tiles in every batch of >= 2 tokens; anything else = the automatic choice.
enum class AttnPath { kAuto, kOld, kGrouped, kTiles };
AttnPath AttnPathFromEnv() {
  static const AttnPath path = [] {
    const char* e = std::getenv("RF_ATTN");
    if (e == nullptr) return AttnPath::kAuto;
    if (std::strcmp(e, "old") == 0) return AttnPath::kOld;
    if (std::strcmp(e, "grouped") == 0) return AttnPath::kGrouped;
    if (std::strcmp(e, "tiles") == 0) return AttnPath::kTiles;
    return AttnPath::kAuto;
  }();
  return path;
}

// Token tiles for prefill chunks, taken for batches of >= kTileMinTokens
// tokens: on the H100 they made pp512 4% faster, but a batch of 32 decode
// tokens 2% slower (the tile kernel's extra launch) and 32 decode tokens + a
// 64-token chunk 2% slower (the two kernels run one after the other, each on
// part of the device).
constexpr int kTileMinTokens = 256;
int TileMinTokens() {
  switch (AttnPathFromEnv()) {
    case AttnPath::kGrouped: return INT32_MAX;
    case AttnPath::kTiles: return 2;
    default: return kTileMinTokens;
  }
}

bool UseGrouped(int n_heads, int n_kv_heads, int head_dim, const void* k_cache,
                const void* v_cache) {
  return AttnPathFromEnv() != AttnPath::kOld &&
         attn::GroupedSupported(n_heads, n_kv_heads, head_dim, k_cache, v_cache);
}

// gpu::DecodeAttnConfig; start-up value from RF_DECODE_ATTN=mma|simt.
DecodeAttnConfig DecodeConfigFromEnv() {
  DecodeAttnConfig c;
  const char* e = std::getenv("RF_DECODE_ATTN");
  if (e != nullptr && std::strcmp(e, "mma") == 0) c.kernel = 1;
  if (e != nullptr && std::strcmp(e, "simt") == 0) c.kernel = -1;
  return c;
}
DecodeAttnConfig g_decode_config = DecodeConfigFromEnv();
// Auto takes the matrix-core decode kernel from this many tokens a batch:
// every batch. H100 (2026-11-26 13:27 UTC, bench_gpu_kernels attention,
// Llama-3-8B heads, SIMT -> matrix cores): 32 x 512 keys 41.8 -> 30.6 us
// (1.60 -> 2.19 TB/s), 64 x 2048 210.3 -> 204.5 us, 8 x 512 22.0 -> 15.2 us,
// 1 x 512 10.8 -> 7.4 us; tg128 Q8_0 281.3 -> 289.1 tok/s. With P rounded to
// f16 the Q4_K_M top-1 agreement test fell to 0.955 / 0.951 (bar 0.95); P as
// f16 hi + lo parts (the kernel since 13:48) keeps 0.958 / 0.955.
constexpr int kDecodeMmaMinTokens = 1;

bool UseDecodeMma(const AttnBatch& b, int n_heads, int n_kv_heads, int head_dim,
                  const void* k_cache, const void* v_cache) {
  const DecodeAttnConfig& c = g_decode_config;
  if (c.kernel < 0 || !attn::DecodeMmaSupported(n_heads, n_kv_heads, head_dim, k_cache, v_cache)) {
    return false;
  }
  return c.kernel == 1 || b.n_tokens >= (c.min_tokens > 0 ? c.min_tokens : kDecodeMmaMinTokens);
}

// SetAttentionMergeFold. Off: on the H100 (2026-11-26) the fold made tg128
// ~1.5% slower (Q8_0 270.0 / 267.6 vs 273.2 / 272.5 tok/s, Q4_K_M 323.7 /
// 322.5 vs 329.6 / 326.2): the last split's fence + count + merge sit on the
// critical path, and the merge kernel they replace costs less inside a graph.
bool g_merge_fold = false;

// What EnqueueAttention launched, so its callers know what is left to do.
struct EnqueuedAttention {
  int splits = 1;                // > 1: unless complete, the partials in scratch need a merge
  bool output_complete = false;  // merged (with fold_rule 1 / 2 also quantized into xq) by the
                                 // attention kernel itself: no merge or quantize kernel follows
  bool zeroed = false;           // ... and it cleared `zero` too (the one-split matrix-core fold;
                                 // the SIMT merge fold leaves that to the caller)
};

// Enqueues the attention kernel that suits the shape. Two folds complete the
// output inside the attention kernel: the SIMT grouped kernel's merge fold
// (SetAttentionMergeFold) and the matrix-core kernel with one split, which
// also quantizes and zeroes `zero`. fold_rule -1: no fold.
EnqueuedAttention EnqueueAttention(const float* q, float* out, const AttnBatch& b, int n_heads,
                                   int n_kv_heads, int head_dim, float scale,
                                   const uint16_t* k_cache, const uint16_t* v_cache,
                                   int block_size, void* scratch, Stream s, int fold_rule = -1,
                                   void* xq = nullptr, const ZeroSpans& zero = {}) {
  const auto* kc = reinterpret_cast<const __half*>(k_cache);
  const auto* vc = reinterpret_cast<const __half*>(v_cache);
  const bool grouped = UseGrouped(n_heads, n_kv_heads, head_dim, k_cache, v_cache);
  const int per_token = n_heads / attn::GroupedHeadsPerBlock(n_heads / n_kv_heads);
  // Prefill chunks (runs of a sequence's tokens) go to the token-tile kernel,
  // the rest of the batch to the grouped one (large batches only, see above).
  const bool tiles = grouped && b.n_tokens >= std::max(2, TileMinTokens()) &&
                     attn::PrefillTilesSupported(n_heads, n_kv_heads, head_dim, k_cache, v_cache);
  // The folded merge is the SIMT kernel's (SetAttentionMergeFold). Beside the
  // tile kernel (batches of >= 256 tokens) the few tokens outside runs keep
  // the SIMT kernel too: the matrix-core one's blocks (97 KB of shared memory,
  // 2 an SM) would mostly start only to skip their token.
  const bool mma = grouped && !tiles && !g_merge_fold &&
                   UseDecodeMma(b, n_heads, n_kv_heads, head_dim, k_cache, v_cache);
  const int splits =
      mma       ? attn::DecodeMmaSplitCount(b.n_tokens, per_token, b.max_ctx, head_dim,
                                            g_decode_config.target_blocks, g_decode_config.one_split_keys)
      : grouped ? attn::GroupedSplitCount(b.n_tokens, per_token, b.max_ctx)
                : SplitCount(b.n_tokens, n_heads, b.max_ctx);
  float* partials = splits == 1 ? nullptr : attn::PartialsIn(scratch);
  if (grouped && !tiles && g_merge_fold && fold_rule >= 0 &&
      attn::GroupedFoldSupported(n_heads, n_kv_heads, head_dim, b.n_tokens, splits, fold_rule)) {
    attn::LaunchGroupedAttentionFolded(q, out, b, n_heads, n_kv_heads, head_dim, scale, kc, vc,
                                       block_size, splits, partials,
                                       static_cast<unsigned*>(scratch), fold_rule,
                                       static_cast<ActQ8*>(xq), ToStream(s));
    return {splits, /*output_complete=*/true, /*zeroed=*/false};
  }
  if (grouped) {
    int tile_tokens = 0;
    if (tiles) {
      tile_tokens = attn::PrefillTileTokens(n_heads / n_kv_heads);
      attn::LaunchPrefillTileAttention(q, out, b, n_heads, n_kv_heads, head_dim, scale, kc, vc,
                                       block_size, splits, partials, ToStream(s));
    }
    // One split on the matrix-core kernel: its blocks write the final output
    // and quantize it (and zero `zero`) themselves, no merge or quantize kernel.
    const bool fold_mma = mma && splits == 1 && fold_rule > 0 &&
                          attn::DecodeMmaQuantizeSupported(n_heads, n_kv_heads, head_dim, fold_rule);
    // Either kernel takes any split count (each divides a token's own keys).
    if (mma && attn::LaunchDecodeMma(q, out, b, n_heads, n_kv_heads, head_dim, scale, kc, vc,
                                     block_size, splits, partials, ToStream(s), tile_tokens,
                                     fold_mma ? fold_rule : -1, static_cast<ActQ8*>(xq),
                                     fold_mma ? zero : ZeroSpans{})) {
      if (fold_mma) return {splits, /*output_complete=*/true, /*zeroed=*/true};
    } else {
      attn::LaunchGroupedAttention(q, out, b, n_heads, n_kv_heads, head_dim, scale, kc, vc,
                                   block_size, splits, partials, ToStream(s), tile_tokens);
    }
  } else {
    const int keys_per_split =
        splits == 1 ? (b.max_ctx > 0 ? b.max_ctx : 1) : (b.max_ctx + splits - 1) / splits;
    const dim3 grid(n_heads, b.n_tokens, splits);
    AttentionKernel<<<grid, kThreads, 0, ToStream(s)>>>(q, out, b, n_heads, n_kv_heads, head_dim,
                                                        scale, kc, vc, block_size, keys_per_split,
                                                        partials);
  }
  return {splits, /*output_complete=*/false, /*zeroed=*/false};
}

}  // namespace

size_t AttentionScratchBytes(int n_tokens, int n_heads, int head_dim, int max_ctx) {
  // Enough for either kernel: the grouped one runs at least ceil(n_heads / 8)
  // blocks per token (kMaxGroupPerBlock heads a block), and its split count
  // only grows as that falls.
  const int per_token = (n_heads + attn::kMaxGroupPerBlock - 1) / attn::kMaxGroupPerBlock;
  const int splits = std::max(SplitCount(n_tokens, n_heads, max_ctx),
                              attn::GroupedSplitCount(n_tokens, per_token, max_ctx));
  if (splits == 1) return 0;
  return attn::kFoldCounterBytes +
         static_cast<size_t>(n_tokens) * n_heads * splits * (head_dim + 2) * sizeof(float);
}

GpuStatus AttentionScratchInit(void* scratch, size_t bytes, Stream s) {
  if (scratch == nullptr || bytes == 0) return GpuStatus{};
  return Memset(scratch, 0, std::min(bytes, attn::kFoldCounterBytes), s);
}

void SetDecodeAttnConfig(const DecodeAttnConfig& c) { g_decode_config = c; }
DecodeAttnConfig GetDecodeAttnConfig() { return g_decode_config; }

void SetAttentionMergeFold(bool on) { g_merge_fold = on; }
bool GetAttentionMergeFold() { return g_merge_fold; }

void LaunchAttention(const float* q, float* out, const AttnBatch& b, int n_heads, int n_kv_heads,
                     int head_dim, float scale, const uint16_t* k_cache, const uint16_t* v_cache,
                     int block_size, void* scratch, Stream s) {
  if (b.n_tokens == 0) return;
  const EnqueuedAttention e = EnqueueAttention(q, out, b, n_heads, n_kv_heads, head_dim, scale,
                                               k_cache, v_cache, block_size, scratch, s,
                                               /*fold_rule=*/0);
  if (!e.output_complete && e.splits > 1) {
    LaunchKernel(CombineSplitsKernel, dim3(n_heads, b.n_tokens), kThreads, 0, s,
                 static_cast<const float*>(attn::PartialsIn(scratch)), out, n_heads, head_dim,
                 e.splits);
  }
}

bool AttentionQuantizeSupported(GgmlType weight_type, int n_heads, int head_dim) {
  const int rule = ActivationRule(weight_type);
  const int dim = n_heads * head_dim;
  return rule != 0 && n_heads > 0 && dim % kCombineThreads == 0;
}

void LaunchAttentionQuantize(const float* q, float* out, const AttnBatch& b, int n_heads,
                             int n_kv_heads, int head_dim, float scale, const uint16_t* k_cache,
                             const uint16_t* v_cache, int block_size, void* scratch,
                             GgmlType weight_type, void* xq, Stream s, const ZeroSpans& zero) {
  if (b.n_tokens == 0) {
    if (zero.n > 0) LaunchZeroSpans(zero, s);
    return;
  }
  const EnqueuedAttention e = EnqueueAttention(q, out, b, n_heads, n_kv_heads, head_dim, scale,
                                               k_cache, v_cache, block_size, scratch, s,
                                               ActivationRule(weight_type), xq, zero);
  if (e.output_complete) {  // merged and quantized in the attention kernel
    if (zero.n > 0 && !e.zeroed) LaunchZeroSpans(zero, s);
    return;
  }
  const int splits = e.splits;
  if (splits == 1) {  // no merge kernel to fold the quantization into
    LaunchQuantizeActivation(weight_type, out, static_cast<int64_t>(b.n_tokens) * n_heads * head_dim,
                             xq, s, zero);
    return;
  }
  const auto* partials = attn::PartialsIn(scratch);
  auto* act = static_cast<ActQ8*>(xq);
  const dim3 grid(n_heads * head_dim / kCombineThreads, b.n_tokens);
  if (ActivationRule(weight_type) == 1) {
    LaunchKernel(CombineSplitsQuantKernel<1>, grid, kCombineThreads, 0, s, partials, out, n_heads,
                 head_dim, splits, act, zero);
  } else {
    LaunchKernel(CombineSplitsQuantKernel<2>, grid, kCombineThreads, 0, s, partials, out, n_heads,
                 head_dim, splits, act, zero);
  }
}

}  // namespace rocmforge::gpu
