// Paged attention with the query heads of a GQA group served together: one
// block per (token, KV head, chunk of up to 8 query heads, split of the keys).
// Each K and V row of the KV head is loaded once per block (not once per query
// head, as in AttentionKernel) as 16-byte vectors, several keys per lane in
// flight before any reduction.
//
// Layout of a block: kThreads threads in "slots" of kLanes = head_dim / kDims
// lanes; a slot takes one key at a time, each lane kDims consecutive dims of it
// (kDims / 8 16-byte loads of K and of V). A slot keeps an online softmax per
// query head (every lane of the slot holds the same m, l); slots merge through
// shared memory at the end, as the waves of AttentionKernel do.
#include <cstdlib>
#include <cstring>

#include "kernels/act_quant_device.h"
#include "kernels/attention_device.h"
#include "kernels/launch_util.h"

namespace rocmforge::gpu::attn {
namespace {

constexpr int kThreads = 128;
constexpr int kMaxSplits = 32;
// Splits are added until about kTargetBlocks blocks run (a few per SM: the
// kernel needs several blocks' loads in flight per SM to reach DRAM speed),
// never below kMinKeysPerSplit keys (one pass of a block at head_dim 128).
constexpr int kTargetBlocks = 1024;
constexpr int kMinKeysPerSplit = 32;

// The 8 f16 values of one 16-byte load, as floats.
__device__ __forceinline__ void Unpack8(const uint4& r, float* f) {
  __half2 h[4];
  memcpy(h, &r, sizeof(h));
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 x = __half22float2(h[i]);
    f[2 * i] = x.x;
    f[2 * i + 1] = x.y;
  }
}

// Quantizes the kOut output values of a block's head chunk for the next
// matmul, value i = threadIdx.x + k * kThreads in o[k], to xq slices from
// flattened index `base` (a multiple of the group size): rule 1 the Q8_0 rule
// (kOut a multiple of 32), rule 2 the Q8_K rule (kOut a multiple of 256; a
// 256-group is registers 2g and 2g + 1 of all threads). The integers equal
// quantize_activation.hip's (the same per-value helpers; the Q8_K group
// maximum is a unique element whatever the reduction order).
template <int kThreads, int kOut, int kPer>
__device__ __forceinline__ void QuantizeChunk(const float (&o)[kPer], int64_t base, int rule,
                                              ActQ8* xq) {
  static_assert(kPer * kThreads >= kOut && kOut % 32 == 0, "whole 32-value slices");
  if (rule == 1) {
    QuantizeQ8_0Registers<kThreads, kPer>(o, base, kOut, xq);
    return;
  }
  if constexpr (kOut % 256 == 0 && 256 % kThreads == 0) {
    constexpr int kRegsPerGroup = 256 / kThreads;
    constexpr int kWaves = kThreads / kWaveSize;
    __shared__ AbsMaxArg red[kPer][kWaves];
    __shared__ float group_max[kOut / 256];
    const int lane = threadIdx.x % kWaveSize, wave = threadIdx.x / kWaveSize;
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int i = threadIdx.x + k * kThreads;
      const AbsMaxArg a = WaveAbsMaxArg(AbsMaxArg{fabsf(o[k]), o[k], i});
      if (lane == 0) red[k][wave] = a;
    }
    __syncthreads();
    if (static_cast<int>(threadIdx.x) < kOut / 256) {
      const int g = threadIdx.x;
      AbsMaxArg b = red[g * kRegsPerGroup][0];
      for (int k = g * kRegsPerGroup; k < (g + 1) * kRegsPerGroup; ++k) {
        for (int w = 0; w < kWaves; ++w) b = Better(b, red[k][w]);
      }
      group_max[g] = b.amax == 0.0f ? 0.0f : b.value;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int i = threadIdx.x + k * kThreads;
      QuantizeQ8_KValue(o[k], group_max[i / 256], base + i, true, xq);
    }
  }
}

// Blocks per SM the register budget is capped for: the kernel lives on loads
// in flight, so the small shapes keep 4 blocks (<= 128 registers; without the
// cap nvcc took 156 for 4 heads x 8 dims x 4 keys, i.e. 3 blocks), the large
// ones 2 (<= 255). HIP reads the number as waves per EU: the same kind of cap.
constexpr int MinBlocksPerSm(int group, int dims, int keys) {
  return group * dims <= 32 && keys <= 4 ? 4 : 2;
}

// kGroup query heads per block, kDims dims per lane, kKeys keys per slot per
// pass (loaded together). grid: (n_kv_heads * chunks, n_tokens, n_splits).
template <int kHeadDim, int kGroup, int kDims, int kKeys>
__global__ void __launch_bounds__(kThreads, MinBlocksPerSm(kGroup, kDims, kKeys))
    GroupedAttentionKernel(const float* __restrict__ q, float* __restrict__ out, AttnBatch b,
                           int n_heads, int n_kv_heads, float scale,
                           const __half* __restrict__ k_cache, const __half* __restrict__ v_cache,
                           int block_size, float* __restrict__ partials, int tile_tokens,
                           int fold_rule, unsigned* __restrict__ counters, ActQ8* __restrict__ xq) {
  constexpr int kLanes = kHeadDim / kDims;  // lanes per key
  static_assert(kDims % 8 == 0 && kHeadDim % kDims == 0, "whole 16-byte loads per lane");
  static_assert(kLanes <= 32 && (kLanes & (kLanes - 1)) == 0, "a slot lies inside one wave");
  constexpr int kSlots = kThreads / kLanes;  // keys the block reads at once
  constexpr int kVec = kDims / 8;            // 16-byte loads per row per lane
  constexpr int kStep = kSlots * kKeys;      // keys per pass of the block
  __shared__ float s_m[kSlots][kGroup], s_l[kSlots][kGroup], s_w[kSlots][kGroup];
  __shared__ float s_acc[kSlots][kGroup][kHeadDim];
  __shared__ float s_gl[kGroup], s_gm[kGroup];

  const int group = n_heads / n_kv_heads;
  const int chunks = group / kGroup;
  const int kv_h = blockIdx.x / chunks;
  const int h0 = kv_h * group + (blockIdx.x % chunks) * kGroup;
  const int t = blockIdx.y, split = blockIdx.z;
  if (tile_tokens > 0 && TokenInTileRun(b, t, tile_tokens)) return;  // the tile kernel's
  const int slot = threadIdx.x / kLanes, d0 = (threadIdx.x % kLanes) * kDims;
  const int kv_dim = n_kv_heads * kHeadDim;
  const int ctx = b.token_ctx[t];
  const int32_t* table = b.block_tables + b.seq_table_off[b.token_seq[t]];
  // Splits divide THIS token's keys evenly (at least kMinKeysPerSplit each):
  // the host sizes them for max_ctx, rounded up for graph reuse, which left
  // the last splits of shorter tokens empty and the busy blocks longer.
  const int per_split = max((ctx + static_cast<int>(gridDim.z) - 1) / static_cast<int>(gridDim.z),
                            kMinKeysPerSplit);
  const int key_begin = split * per_split;
  const int key_end = min(ctx, key_begin + per_split);
  // Folded merge (fold_rule >= 0): only the splits that start inside the
  // context take part (their count is the same in every block of the token).
  const bool fold = fold_rule >= 0;
  const int n_active = max(1, min(static_cast<int>(gridDim.z), (ctx + per_split - 1) / per_split));
  if (fold && split >= n_active) return;

  float qr[kGroup][kDims];
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
    const float* qh = q + (static_cast<int64_t>(t) * n_heads + h0 + g) * kHeadDim + d0;
#pragma unroll
    for (int i = 0; i < kDims; ++i) qr[g][i] = qh[i] * scale;
  }
  float m[kGroup], l[kGroup], acc[kGroup][kDims];
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < kDims; ++i) acc[g][i] = 0.0f;
  }

  const __half* kb = k_cache + kv_h * kHeadDim + d0;
  const __half* vb = v_cache + kv_h * kHeadDim + d0;
  // Cache slot of key j, looked up one pass ahead so the block-table load is
  // not in the chain of the K/V loads (32-bit: the pool's slot count is an int).
  auto row_of = [&](int j) -> int {
    if (j >= key_end) return 0;
    return table[j / block_size] * block_size + j % block_size;
  };
  int row[kKeys];
#pragma unroll
  for (int u = 0; u < kKeys; ++u) row[u] = row_of(key_begin + u * kSlots + slot);

  // Every thread runs the same number of passes (the shuffles need the whole
  // wave); keys past key_end are masked.
  for (int base = key_begin; base < key_end; base += kStep) {
    uint4 kr[kKeys][kVec], vr[kKeys][kVec];
    bool valid[kKeys];
#pragma unroll
    for (int u = 0; u < kKeys; ++u) {
      valid[u] = base + u * kSlots + slot < key_end;
#pragma unroll
      for (int c = 0; c < kVec; ++c) {
        if (valid[u]) {
          const int64_t off = static_cast<int64_t>(row[u]) * kv_dim + 8 * c;
          kr[u][c] = *reinterpret_cast<const uint4*>(kb + off);
          vr[u][c] = *reinterpret_cast<const uint4*>(vb + off);
        } else {
          kr[u][c] = make_uint4(0, 0, 0, 0);
          vr[u][c] = make_uint4(0, 0, 0, 0);
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kKeys; ++u) row[u] = row_of(base + kStep + u * kSlots + slot);

    float sc[kKeys][kGroup];
#pragma unroll
    for (int u = 0; u < kKeys; ++u) {
      float kf[kDims];
#pragma unroll
      for (int c = 0; c < kVec; ++c) Unpack8(kr[u][c], kf + 8 * c);
#pragma unroll
      for (int g = 0; g < kGroup; ++g) {
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < kDims; ++i) s += qr[g][i] * kf[i];
        sc[u][g] = s;
      }
    }
#pragma unroll
    for (int mask = kLanes / 2; mask > 0; mask >>= 1) {  // sum over the slot's lanes
#pragma unroll
      for (int u = 0; u < kKeys; ++u) {
#pragma unroll
        for (int g = 0; g < kGroup; ++g) sc[u][g] += WaveShflXor(sc[u][g], mask);
      }
    }
    float p[kKeys][kGroup];
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
      float m_new = m[g];
#pragma unroll
      for (int u = 0; u < kKeys; ++u) {
        if (valid[u]) m_new = fmaxf(m_new, sc[u][g]);
      }
      // m_new stays -inf only while this slot has seen no key (acc, l are 0).
      const float corr = m_new == -INFINITY ? 1.0f : expf(m[g] - m_new);
      l[g] *= corr;
#pragma unroll
      for (int u = 0; u < kKeys; ++u) {
        p[u][g] = valid[u] ? expf(sc[u][g] - m_new) : 0.0f;
        l[g] += p[u][g];
      }
#pragma unroll
      for (int i = 0; i < kDims; ++i) acc[g][i] *= corr;
      m[g] = m_new;
    }
#pragma unroll
    for (int u = 0; u < kKeys; ++u) {
      float vf[kDims];
#pragma unroll
      for (int c = 0; c < kVec; ++c) Unpack8(vr[u][c], vf + 8 * c);
#pragma unroll
      for (int g = 0; g < kGroup; ++g) {
#pragma unroll
        for (int i = 0; i < kDims; ++i) acc[g][i] += p[u][g] * vf[i];
      }
    }
  }

  // Merge the slots: per head, the largest m, then each slot's weight.
  if (d0 == 0) {
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
      s_m[slot][g] = m[g];
      s_l[slot][g] = l[g];
    }
  }
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
#pragma unroll
    for (int i = 0; i < kDims; ++i) s_acc[slot][g][d0 + i] = acc[g][i];
  }
  __syncthreads();
  if (threadIdx.x < kGroup) {
    const int g = threadIdx.x;
    float gm = -INFINITY;
    for (int s = 0; s < kSlots; ++s) gm = fmaxf(gm, s_m[s][g]);
    float gl = 0.0f;
    for (int s = 0; s < kSlots; ++s) {
      const float w = s_m[s][g] == -INFINITY ? 0.0f : expf(s_m[s][g] - gm);
      s_w[s][g] = w;
      gl += s_l[s][g] * w;
    }
    s_gm[g] = gm;
    s_gl[g] = gl;
  }
  __syncthreads();
  // Value idx = threadIdx.x + k * kThreads of the chunk (head g, dim d) in ov[k].
  constexpr int kOut = kGroup * kHeadDim;
  constexpr int kPer = (kOut + kThreads - 1) / kThreads;
  float ov[kPer];
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int idx = threadIdx.x + k * kThreads;
    ov[k] = 0.0f;
    if (idx < kOut) {
      const int g = idx / kHeadDim, d = idx % kHeadDim;
      float v = 0.0f;
#pragma unroll 8
      for (int s = 0; s < kSlots; ++s) v += s_acc[s][g][d] * s_w[s][g];
      ov[k] = v;
    }
  }
  const int64_t row0 = static_cast<int64_t>(t) * n_heads + h0;  // the chunk's first (token, head)
  const int64_t flat0 = row0 * kHeadDim;
  if (partials == nullptr || (fold && n_active == 1)) {  // the only split: final output
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int idx = threadIdx.x + k * kThreads;
      if (idx < kOut) {
        const float gl = s_gl[idx / kHeadDim];
        ov[k] = gl > 0.0f ? ov[k] / gl : 0.0f;
        out[flat0 + idx] = ov[k];
      }
    }
    if (fold_rule > 0) QuantizeChunk<kThreads, kOut>(ov, flat0, fold_rule, xq);
    return;
  }
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int idx = threadIdx.x + k * kThreads;
    if (idx < kOut) {
      const int g = idx / kHeadDim, d = idx % kHeadDim;
      float* pr = PartialAt(partials, (row0 + g) * gridDim.z + split, kHeadDim);
      if (d == 0) {
        pr[0] = s_gm[g];
        pr[1] = s_gl[g];
      }
      pr[2 + d] = ov[k];
    }
  }
  if (!fold) return;
  // The last of the chunk's active splits to get here merges them all
  // (threadFenceReduction pattern: partials visible device-wide before the
  // count, read past L1 after it).
  __shared__ bool s_last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned* c = counters + static_cast<int64_t>(t) * gridDim.x + blockIdx.x;
    const bool last = atomicAdd(c, 1u) + 1 == static_cast<unsigned>(n_active);
    if (last) *c = 0;  // every other split has counted: ready for the next launch
    s_last = last;
  }
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  // The merge of MergeSplitValue, bit for bit, with few round trips to L2
  // (one value's 3 x n_active dependent loads per thread, as in the merge
  // kernel, made the fold 8% slower than no fold): the splits' (m, l) once
  // into shared memory; per head the weights w_s = exp(m_s - gm) and gl, in
  // split order; then every thread's values summed in split order with all
  // of a split's loads in flight together. Every active split saw a key, so
  // no m_s is -inf (the merge kernel's skip never applies).
  __shared__ float s_fm[kGroup][kMaxSplits], s_fl[kGroup][kMaxSplits], s_fgl[kGroup];
  for (int i = threadIdx.x; i < kGroup * n_active; i += kThreads) {
    const int g = i / n_active, sp = i % n_active;
    const float* pr = PartialAt(partials, (row0 + g) * gridDim.z + sp, kHeadDim);
    s_fm[g][sp] = LoadFromOtherBlock(pr);
    s_fl[g][sp] = LoadFromOtherBlock(pr + 1);
  }
  __syncthreads();
  if (threadIdx.x < kGroup) {
    const int g = threadIdx.x;
    float gm = -INFINITY;
    for (int sp = 0; sp < n_active; ++sp) gm = fmaxf(gm, s_fm[g][sp]);
    float gl = 0.0f;
    for (int sp = 0; sp < n_active; ++sp) {
      const float w = expf(s_fm[g][sp] - gm);
      s_fm[g][sp] = w;  // now the split's weight
      gl += s_fl[g][sp] * w;
    }
    s_fgl[g] = gl;
  }
  __syncthreads();
  float v[kPer];
#pragma unroll
  for (int k = 0; k < kPer; ++k) v[k] = 0.0f;
#pragma unroll 4
  for (int sp = 0; sp < n_active; ++sp) {
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int idx = threadIdx.x + k * kThreads;
      if (idx < kOut) {
        const int g = idx / kHeadDim, d = idx % kHeadDim;
        const float* pr = PartialAt(partials, (row0 + g) * gridDim.z + sp, kHeadDim);
        v[k] += LoadFromOtherBlock(pr + 2 + d) * s_fm[g][sp];
      }
    }
  }
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int idx = threadIdx.x + k * kThreads;
    if (idx < kOut) {
      const float gl = s_fgl[idx / kHeadDim];
      ov[k] = gl > 0.0f ? v[k] / gl : 0.0f;
      out[flat0 + idx] = ov[k];
    }
  }
  if (fold_rule > 0) QuantizeChunk<kThreads, kOut>(ov, flat0, fold_rule, xq);
}

// Sweep knob for benchmarks, head_dim 128 with up to 4 heads a block only:
// RF_ATTN_SHAPE=DIMSxKEYS picks the dims per lane and keys per slot per pass
// among 8x4 (default), 16x2 (half the lanes per key, fewer shuffles), 8x2
// (fewer registers, more blocks per SM) and 8x8 (more loads in flight).
int ShapeChoice() {
  static const int choice = [] {
    const char* e = std::getenv("RF_ATTN_SHAPE");
    if (e == nullptr) return 0;
    if (std::strcmp(e, "16x2") == 0) return 1;
    if (std::strcmp(e, "8x2") == 0) return 2;
    if (std::strcmp(e, "8x8") == 0) return 3;
    return 0;
  }();
  return choice;
}

// What the block does after the keys: unfused (fold_rule -1) or folded merge.
struct Epilogue {
  int fold_rule = -1;
  unsigned* counters = nullptr;
  ActQ8* xq = nullptr;
};

template <int kHeadDim, int kGroup, int kDims, int kKeys>
void Launch(dim3 grid, const float* q, float* out, const AttnBatch& b, int n_heads,
            int n_kv_heads, float scale, const __half* kc, const __half* vc, int block_size,
            float* partials, hipStream_t s, int tile_tokens, const Epilogue& e) {
  GroupedAttentionKernel<kHeadDim, kGroup, kDims, kKeys><<<grid, kThreads, 0, s>>>(
      q, out, b, n_heads, n_kv_heads, scale, kc, vc, block_size, partials, tile_tokens,
      e.fold_rule, e.counters, e.xq);
}

template <int kHeadDim>
void LaunchForHeadDim(int per_block, dim3 grid, const float* q, float* out, const AttnBatch& b,
                      int n_heads, int n_kv_heads, float scale, const __half* kc, const __half* vc,
                      int block_size, float* partials, hipStream_t s, int tile_tokens,
                      const Epilogue& e) {
#define RF_GROUPED(G, D, K)                                                                   \
  Launch<kHeadDim, G, D, K>(grid, q, out, b, n_heads, n_kv_heads, scale, kc, vc, block_size, \
                            partials, s, tile_tokens, e)
  if constexpr (kHeadDim == 128) {
    const int shape = ShapeChoice();
    if (per_block <= 4 && shape != 0) {
      switch (per_block * 4 + shape) {
        case 5: RF_GROUPED(1, 16, 2); break;
        case 6: RF_GROUPED(1, 8, 2); break;
        case 7: RF_GROUPED(1, 8, 8); break;
        case 9: RF_GROUPED(2, 16, 2); break;
        case 10: RF_GROUPED(2, 8, 2); break;
        case 11: RF_GROUPED(2, 8, 8); break;
        case 17: RF_GROUPED(4, 16, 2); break;
        case 18: RF_GROUPED(4, 8, 2); break;
        default: RF_GROUPED(4, 8, 8); break;
      }
      return;
    }
  }
  switch (per_block) {
    case 1:
      RF_GROUPED(1, 8, 4);
      break;
    case 2:
      RF_GROUPED(2, 8, 4);
      break;
    case 4:
      RF_GROUPED(4, 8, 4);
      break;
    default:
      RF_GROUPED(8, 8, 2);
      break;
  }
#undef RF_GROUPED
}

}  // namespace

bool GroupedSupported(int n_heads, int n_kv_heads, int head_dim, const void* k_cache,
                      const void* v_cache) {
  if (n_kv_heads <= 0 || n_heads % n_kv_heads != 0) return false;
  if (head_dim != 64 && head_dim != 128 && head_dim != 256) return false;
  const auto misaligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 != 0; };
  return !misaligned(k_cache) && !misaligned(v_cache);
}

int GroupedHeadsPerBlock(int group) {
  for (int g = kMaxGroupPerBlock; g > 1; g /= 2) {
    if (group % g == 0) return g;
  }
  return 1;
}

int GroupedSplitCount(int n_tokens, int kv_blocks_per_token, int max_ctx) {
  const int64_t blocks = static_cast<int64_t>(n_tokens) * (kv_blocks_per_token > 0 ? kv_blocks_per_token : 1);
  if (blocks >= kTargetBlocks) return 1;
  const int64_t want = (kTargetBlocks + blocks - 1) / blocks;
  const int64_t by_keys = (max_ctx + kMinKeysPerSplit - 1) / kMinKeysPerSplit;
  int64_t splits = want < by_keys ? want : by_keys;
  if (splits > kMaxSplits) splits = kMaxSplits;
  return splits < 1 ? 1 : static_cast<int>(splits);
}

namespace {
void LaunchAny(const float* q, float* out, const AttnBatch& b, int n_heads, int n_kv_heads,
               int head_dim, float scale, const __half* k_cache, const __half* v_cache,
               int block_size, int n_splits, float* partials, hipStream_t s, int tile_tokens,
               const Epilogue& e) {
  const int per_block = GroupedHeadsPerBlock(n_heads / n_kv_heads);
  const dim3 grid(n_heads / per_block, b.n_tokens, n_splits);
  switch (head_dim) {
    case 64:
      LaunchForHeadDim<64>(per_block, grid, q, out, b, n_heads, n_kv_heads, scale, k_cache,
                           v_cache, block_size, partials, s, tile_tokens, e);
      break;
    case 128:
      LaunchForHeadDim<128>(per_block, grid, q, out, b, n_heads, n_kv_heads, scale, k_cache,
                            v_cache, block_size, partials, s, tile_tokens, e);
      break;
    default:
      LaunchForHeadDim<256>(per_block, grid, q, out, b, n_heads, n_kv_heads, scale, k_cache,
                            v_cache, block_size, partials, s, tile_tokens, e);
      break;
  }
}
}  // namespace

void LaunchGroupedAttention(const float* q, float* out, const AttnBatch& b, int n_heads,
                            int n_kv_heads, int head_dim, float scale, const __half* k_cache,
                            const __half* v_cache, int block_size, int n_splits,
                            float* partials, hipStream_t s, int tile_tokens) {
  LaunchAny(q, out, b, n_heads, n_kv_heads, head_dim, scale, k_cache, v_cache, block_size,
            n_splits, partials, s, tile_tokens, Epilogue{});
}

bool GroupedFoldSupported(int n_heads, int n_kv_heads, int head_dim, int n_tokens, int n_splits,
                          int fold_rule) {
  if (n_kv_heads <= 0 || n_heads % n_kv_heads != 0 || fold_rule < 0 || fold_rule > 2) return false;
  const int per_block = GroupedHeadsPerBlock(n_heads / n_kv_heads);
  const int chunk = per_block * head_dim;  // values a block writes (and quantizes)
  if (fold_rule == 2 && chunk % 256 != 0) return false;
  if (fold_rule == 1 && chunk % 32 != 0) return false;
  return n_splits == 1 ||
         static_cast<int64_t>(n_tokens) * (n_heads / per_block) <= kMaxFoldCounters;
}

void LaunchGroupedAttentionFolded(const float* q, float* out, const AttnBatch& b, int n_heads,
                                  int n_kv_heads, int head_dim, float scale, const __half* k_cache,
                                  const __half* v_cache, int block_size, int n_splits,
                                  float* partials, unsigned* counters, int fold_rule, ActQ8* xq,
                                  hipStream_t s) {
  Epilogue e;
  e.fold_rule = fold_rule;
  e.counters = counters;
  e.xq = xq;
  LaunchAny(q, out, b, n_heads, n_kv_heads, head_dim, scale, k_cache, v_cache, block_size,
            n_splits, n_splits == 1 ? nullptr : partials, s, 0, e);
}

}  // namespace rocmforge::gpu::attn
