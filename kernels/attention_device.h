// Internals shared by the attention launchers (kernels/attention.hip) and the
// GQA-grouped decode kernel (kernels/attention_grouped.hip). Not part of the
// host API (kernels/gpu_api.h).
#pragma once

#include <cstdint>

#include "kernels/gpu_api.h"
#include "kernels/gpu_runtime.h"
#include "kernels/quant_device.h"

namespace rocmforge::gpu::attn {

// Split-K partial results in scratch: for each (token t, query head h, split s)
// at index (t * n_heads + h) * n_splits + s, the record m, l, acc[head_dim]
// (running max, sum of exp(score - m), sum of exp(score - m) * V). A split that
// saw no key has m = -inf, l = 0, acc = 0. The merge kernels of attention.hip
// read this layout whichever attention kernel wrote it.
__host__ __device__ inline float* PartialAt(float* base, int64_t idx, int head_dim) {
  return base + idx * (head_dim + 2);
}

// Attention scratch layout: kFoldCounterBytes of split counters first (the
// folded merge below; zeroed once by AttentionScratchInit, left zero by every
// launch), the partials after them.
constexpr size_t kFoldCounterBytes = 4096;
constexpr int kMaxFoldCounters = static_cast<int>(kFoldCounterBytes / sizeof(unsigned));
inline float* PartialsIn(void* scratch) {
  return reinterpret_cast<float*>(static_cast<char*>(scratch) + kFoldCounterBytes);
}

// A load of data another block of the same launch wrote (after the
// __threadfence / atomic handshake): past L1, which is not coherent across
// SMs on NVIDIA. On AMD the fence before it already invalidates the L1.
__device__ __forceinline__ float LoadFromOtherBlock(const float* p) {
#if defined(RF_GPU_CUDA)
  return __ldcg(p);
#else
  return *p;
#endif
}

// Merged output value d of one (token, head) from the first n_splits records
// at base (layout above): the log-sum-exp merge of the split-K partials. The
// merge kernels (kCoherent false) and the merge folded into the grouped kernel
// (kCoherent true) share it, so both give bit-identical outputs; records with
// m = -inf (splits that saw no key) add nothing, so merging only the splits
// that had keys equals merging all of them.
template <bool kCoherent>
__device__ __forceinline__ float MergeSplitValue(const float* base, int n_splits, int head_dim,
                                                 int d) {
  const auto ld = [](const float* p) { return kCoherent ? LoadFromOtherBlock(p) : *p; };
  float gm = -INFINITY;
  for (int s = 0; s < n_splits; ++s) gm = fmaxf(gm, ld(base + s * (head_dim + 2)));
  float gl = 0.0f;
  for (int s = 0; s < n_splits; ++s) {
    const float ms = ld(base + s * (head_dim + 2));
    if (ms != -INFINITY) gl += ld(base + s * (head_dim + 2) + 1) * expf(ms - gm);
  }
  float v = 0.0f;
  for (int s = 0; s < n_splits; ++s) {
    const float ms = ld(base + s * (head_dim + 2));
    if (ms != -INFINITY) v += ld(base + s * (head_dim + 2) + 2 + d) * expf(ms - gm);
  }
  return gl > 0.0f ? v / gl : 0.0f;
}

// The grouped kernel: one block per (token, KV head, group chunk, split) serves
// all query heads of the chunk, so each K/V row is read once per chunk instead
// of once per query head. Chunks hold up to kMaxGroupPerBlock query heads.
constexpr int kMaxGroupPerBlock = 8;

// Whether the grouped kernel handles this shape (head_dim 64, 128 or 256;
// 16-byte aligned caches, so K/V rows load as 16-byte vectors).
bool GroupedSupported(int n_heads, int n_kv_heads, int head_dim, const void* k_cache,
                      const void* v_cache);

// Query heads per block for a GQA group of `group` heads: the largest of
// 8, 4, 2, 1 that divides it.
int GroupedHeadsPerBlock(int group);

// Split count of the grouped kernel for `n_tokens` tokens whose blocks (without
// splits) number n_tokens * kv_blocks_per_token. Non-increasing in both
// arguments, so a lower bound of kv_blocks_per_token gives an upper bound of
// the splits (AttentionScratchBytes uses ceil(n_heads / 8)).
int GroupedSplitCount(int n_tokens, int kv_blocks_per_token, int max_ctx);

// Enqueues the grouped kernel: the final output (partials == nullptr, n_splits
// 1) or the split-K partials for the merge kernels. Split s of a token with
// ctx keys takes keys [s * per, (s + 1) * per) with per = max(ceil(ctx /
// n_splits), 32): the splits follow each token's own context, not max_ctx.
// tile_tokens > 0: tokens for which TokenInTileRun(b, t, tile_tokens) holds
// are skipped (the prefill tile kernel writes them).
void LaunchGroupedAttention(const float* q, float* out, const AttnBatch& b, int n_heads,
                            int n_kv_heads, int head_dim, float scale, const __half* k_cache,
                            const __half* v_cache, int block_size, int n_splits, float* partials,
                            hipStream_t s, int tile_tokens = 0);

// The grouped kernel with the split-K merge folded in (no merge kernel): a
// block whose split starts past its token's context exits at once; with one
// split that has keys, that block writes `out` directly; otherwise each
// block writes its partials and the last of the token's chunk to finish
// (counted in counters[t * gridDim.x + chunk], reset by that block, so graph
// replays work) merges them with MergeSplitValue's arithmetic. out equals
// LaunchGroupedAttention + the merge kernel bit for bit. fold_rule 1 / 2 also
// quantizes out for the next matmul (Q8_0 / Q8_K rule, xq as
// LaunchQuantizeActivation writes it), 0 does not. Needs
// GroupedFoldSupported; counters: kMaxFoldCounters zeroed counters (the head
// of the attention scratch).
bool GroupedFoldSupported(int n_heads, int n_kv_heads, int head_dim, int n_tokens, int n_splits,
                          int fold_rule);
void LaunchGroupedAttentionFolded(const float* q, float* out, const AttnBatch& b, int n_heads,
                                  int n_kv_heads, int head_dim, float scale, const __half* k_cache,
                                  const __half* v_cache, int block_size, int n_splits,
                                  float* partials, unsigned* counters, int fold_rule, ActQ8* xq,
                                  hipStream_t s);

// ---- matrix-core decode kernel (kernels/attention_grouped.hip, NVIDIA only)
// The grouped kernel's blocks, outputs and partials layout with the products
// on mma.sync (gpu::DecodeAttnConfig). Split s of a token with ctx keys takes
// keys [s * per, (s + 1) * per), per = max(ceil(ctx / n_splits), 64) rounded
// up to a multiple of 16. Supported: head_dim 64 / 128 where GroupedSupported
// holds, on NVIDIA builds (false elsewhere).
bool DecodeMmaSupported(int n_heads, int n_kv_heads, int head_dim, const void* k_cache,
                        const void* v_cache);
// Splits for about one wave of resident blocks (target_blocks > 0: that many
// instead), at least 64 keys each, at most 16; never more than
// GroupedSplitCount (so AttentionScratchBytes covers it). One where the
// default target is asked for and max_ctx <= one_split_keys (> 0).
int DecodeMmaSplitCount(int n_tokens, int kv_blocks_per_token, int max_ctx, int head_dim,
                        int target_blocks, int one_split_keys);
// Enqueues it as LaunchGroupedAttention would (partials == nullptr: n_splits
// 1, the final output); false when nothing was launched. With one split and
// no tile tokens, fold_rule 1 / 2 also quantizes the output into xq (as
// LaunchQuantizeActivation: the same integers; needs DecodeMmaQuantizeSupported)
// and the blocks zero `zero` (the next matmul's K-split outputs); otherwise
// fold_rule, xq and zero are ignored.
bool DecodeMmaQuantizeSupported(int n_heads, int n_kv_heads, int head_dim, int fold_rule);
bool LaunchDecodeMma(const float* q, float* out, const AttnBatch& b, int n_heads, int n_kv_heads,
                     int head_dim, float scale, const __half* k_cache, const __half* v_cache,
                     int block_size, int n_splits, float* partials, hipStream_t s,
                     int tile_tokens = 0, int fold_rule = -1, ActQ8* xq = nullptr,
                     const ZeroSpans& zero = {});

// ---- prefill tiles (kernels/attention_prefill.hip)
// The batch is cut into tiles of `tile` consecutive tokens (tile t covers
// tokens [t * tile, (t + 1) * tile)). Token t belongs to the prefill tile
// kernel iff a neighbour in its tile belongs to the same sequence (a run of
// >= 2 tokens of one sequence inside the tile: a prefill chunk); every other
// token (decode tokens, tile-boundary stragglers) to the grouped kernel.
__device__ inline bool TokenInTileRun(const AttnBatch& b, int t, int tile) {
  const int seq = b.token_seq[t];
  const int pos = t % tile;
  return (pos > 0 && b.token_seq[t - 1] == seq) ||
         (pos + 1 < tile && t + 1 < b.n_tokens && b.token_seq[t + 1] == seq);
}

// Whether the tile kernel handles this shape (GroupedSupported, head_dim 64 or 128).
bool PrefillTilesSupported(int n_heads, int n_kv_heads, int head_dim, const void* k_cache,
                           const void* v_cache);

// Tokens per tile for a GQA group of `group` query heads: 32 query rows a
// block, i.e. 32 / GroupedHeadsPerBlock(group) tokens.
int PrefillTileTokens(int group);

// Enqueues the tile kernel for the tokens of the runs (see TokenInTileRun):
// the final output (partials == nullptr, n_splits 1) or split-K partials in
// the layout above (split s of a run whose longest context is C takes keys
// [s * per, (s + 1) * per), per = max(ceil(C / n_splits), 32)). Tokens of no
// run are not written: launch the grouped kernel with tile_tokens too.
void LaunchPrefillTileAttention(const float* q, float* out, const AttnBatch& b, int n_heads,
                                int n_kv_heads, int head_dim, float scale, const __half* k_cache,
                                const __half* v_cache, int block_size, int n_splits,
                                float* partials, hipStream_t s);

}  // namespace rocmforge::gpu::attn
