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
#include <algorithm>
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

#if defined(RF_GPU_CUDA)
// ---- matrix-core decode kernel (NVIDIA) -------------------------------------
// The SIMT kernel above spends ~70 instructions a key and KV head (f16
// unpacking, 4 x 8 FMAs a lane per head, a 16-lane shuffle reduction per head,
// the online softmax on every lane) and waits a DRAM round trip per pass: at
// 32 sequences x 512 keys it moved K/V at 1.6 TB/s. Here the two products run
// on mma.sync m16n8k16 (f16 in, f32 accumulation) with the block's query heads
// as rows 0..7 of A (the f16 hi parts; rows kGroup..7 zero) and the same
// heads' lo parts as rows 8..15, and each warp streams a contiguous run of the
// split's 16-key tiles through a cp.async ring of kStages shared-memory stages
// (cache rows from a register window of the block table):
//   S = Q K^T   A = Q (scaled by scale * log2 e, split into f16 hi + lo parts
//               so the scores keep ~f32 precision), B = K rows [key][dim]
//   O += P V    A = P (split into f16 hi + lo parts the same way),
//               B = V rows through ldmatrix.trans
// Output rows g and g + 8 are the hi and lo products of head g, on the same
// lane. The score accumulators are P's A fragment as they stand (the m16n8k16
// C and A layouts match). H100, 32 sequences x 512 keys (bench_gpu_kernels
// attention, 15:37 UTC): 30.3 us = 2.22 TB/s against 31.8 for the kernel
// before these three changes (a table load per tile in each warp's chain, the
// hi and lo parts in separate mma with rows 8..15 zero, tiles interleaved
// over the warps); ncu: DRAM 62% busy over the kernel, 8 warps an SM (96 KB
// of shared memory and 159 registers a block: 2 blocks), the rest ramp-up,
// tail and per-warp latency. Measured and dropped (session 10, 18:01-18:21
// UTC): each lane fetching one whole K or V row by cp.async.bulk on one
// mbarrier a ring stage (rows padded, not swizzled), plus the copies of
// positions older than the step issued before the PDL wait: 32 x 512 28.4 us
// (2.36 TB/s), 64 x 2048 2.80 TB/s, but 8 / 32 / 64 sequences at mixed
// contexts 100..1500 19.7 / 51.7 / 96.3 against 18.3 / 51.0 / 93.8 and batch
// 1 at 128..512 keys 0.3-0.5 us slower; the early copies alone gained ~1 us
// at mixed contexts, nothing at 32 x 512. Again with this kernel's cp.async
// ring (session 23, 2026-11-28 05:10 UTC: the rows older than the step's
// tokens copied before the wait, the step's own after it): tg128 Q4_K_M
// 2.257-2.265 -> 2.258-2.278 ms a token, contexts 129-256 2.331-2.350 ->
// 2.322-2.357: nothing, not kept. Rows live on lanes 4g..4g+3 (g = head), so a row's max and
// sum reduce over 2 shuffles. Shared K/V rows are swizzled (16-byte chunk c of
// key r at c ^ (r % 8)): the 8 rows an ldmatrix reads hit 8 distinct bank
// groups. Warps keep their own online softmax (base 2) and merge through
// shared memory at the end; the block writes the split-K partials in the
// layout of attention_device.h (m in natural-log units) or, unsplit, the output.
namespace mma_decode {

// Warps a block (the kernel's kWarps): 4, or 8 for one-split launches
// (DecodeAttnConfig::one_split_warps, 8 by default): at <= 128 keys every warp
// then holds at most one 16-key tile, half the serial chain of the 4-warp block. H100, tg128
// Q4_K_M, six A/B pairs (2026-11-28 01:45 UTC): 2.295-2.304 -> 2.250-2.257 ms
// a token (+2.0%). Letting the next kernel launch right after the dependency
// wait instead of after the keys measured nothing (2.296-2.331 either way).
constexpr int kDefaultWarps = 4;
constexpr int kTileKeys = 16;  // keys of one warp per stage
// Ring stages a warp: 3, or 2 with 8 warps (their 1..2 tiles fit; the block's
// shared memory stays under 128 KB).
template <int kBlockWarps>
constexpr int Stages() {
  return kBlockWarps >= 8 ? 2 : 3;
}
// The split rule's minimum (host and kernel): that of the 4-warp block.
constexpr int kMinKeysPerSplit = kDefaultWarps * kTileKeys;
constexpr int kMaxSplits = 16;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

template <int kHeadDim, int kBlockWarps = kDefaultWarps>
constexpr int SmemBytes() {
  return kBlockWarps * Stages<kBlockWarps>() * 2 * kTileKeys * kHeadDim * 2;  // K and V, f16
}

__device__ __forceinline__ unsigned SmemAddr(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
// 16 bytes global -> shared; zeros instead when !valid (src is not read).
__device__ __forceinline__ void CopyOrZero16(void* smem, const void* gmem, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(SmemAddr(smem)), "l"(gmem),
               "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void LoadMatrices(unsigned (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(SmemAddr(p)));
}
__device__ __forceinline__ void LoadMatricesT(unsigned (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(SmemAddr(p)));
}
// c += A B for one full 16 x 8 x 16 tile: a0 / a2 row g's k pairs (2q, 2q+1)
// and (2q+8, 2q+9), a1 / a3 the same of row g + 8; c0, c1 = row g, c2, c3 =
// row g + 8 (columns 2q, 2q+1).
__device__ __forceinline__ void MmaFull(float (&c)[4], unsigned a0, unsigned a1, unsigned a2,
                                        unsigned a3, unsigned b0, unsigned b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
__device__ __forceinline__ unsigned PackHalf2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  unsigned u;
  memcpy(&u, &h, sizeof(u));
  return u;
}
// What PackHalf2 rounded away: the f16 pair of (lo, hi) - the pair in `packed`.
__device__ __forceinline__ unsigned PackHalf2Rest(float lo, float hi, unsigned packed) {
  __half2 h;
  memcpy(&h, &packed, sizeof(h));
  const float2 f = __half22float2(h);
  return PackHalf2(lo - f.x, hi - f.y);
}

// grid: (n_kv_heads * chunks, n_tokens, n_splits), kWarps * 32 threads,
// SmemBytes<kHeadDim, kWarps>.
template <int kHeadDim, int kGroup, int kWarps>
__global__ void __launch_bounds__(kWarps * 32)
    DecodeMmaKernel(const float* __restrict__ q, float* __restrict__ out, AttnBatch b, int n_heads,
                    int n_kv_heads, float scale, const __half* __restrict__ k_cache,
                    const __half* __restrict__ v_cache, int block_size,
                    float* __restrict__ partials, int tile_tokens, int fold_rule,
                    ActQ8* __restrict__ xq, ZeroSpans zero) {
  static_assert(kGroup >= 1 && kGroup <= 8, "query heads are rows 0..7 of A");
  constexpr int kThreads = kWarps * 32;
  constexpr int kStages = Stages<kWarps>();
  constexpr int kChunks = kHeadDim / 8;             // 16-byte chunks of a K / V row
  constexpr int kKSteps = kHeadDim / 16;            // k steps of S = Q K^T
  constexpr int kNTiles = kHeadDim / 8;             // n tiles of O
  constexpr int kKeysPerCopy = 32 / kChunks;        // rows a warp copies at once
  constexpr int kCopies = kTileKeys / kKeysPerCopy;  // copies per row array per tile
  constexpr int kStageHalves = 2 * kTileKeys * kHeadDim;
  static_assert(kChunks >= 8 && kChunks <= 32, "head_dim 64 or 128 (swizzle over 8 chunks)");
  extern __shared__ uint4 smem_raw[];
  __half* const smem = reinterpret_cast<__half*>(smem_raw);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = n_heads / n_kv_heads;
  const int chunks = group / kGroup;
  const int kv_h = blockIdx.x / chunks;
  const int h0 = kv_h * group + (blockIdx.x % chunks) * kGroup;
  const int t = blockIdx.y, split = blockIdx.z, n_splits = gridDim.z;
  // Launched with PDL (LaunchKernel): the step metadata (b; uploaded before
  // the step's first kernel, written by no kernel) is read before
  // GridDependencyWait, so the chain token -> sequence -> block table overlaps
  // the previous kernel's tail; q and the KV cache (written by the kernels
  // before) only after it.
  const bool skip = tile_tokens > 0 && TokenInTileRun(b, t, tile_tokens);  // the tile kernel's
  const int ctx = b.token_ctx[t];
  const int32_t* table = b.block_tables + b.seq_table_off[b.token_seq[t]];
  // Splits of whole tiles: per = max(ceil(ctx / n_splits), 64) rounded up to 16.
  const int per_split =
      (max((ctx + n_splits - 1) / n_splits, kMinKeysPerSplit) + kTileKeys - 1) / kTileKeys * kTileKeys;
  const int key_begin = split * per_split;
  const int key_end = min(ctx, key_begin + per_split);
  const int n_tiles = key_end > key_begin ? (key_end - key_begin + kTileKeys - 1) / kTileKeys : 0;
  // The warp's tiles: the run [tile0, tile0 + my_tiles) of the split's tiles.
  const int per_warp = (n_tiles + kWarps - 1) / kWarps;
  const int tile0 = min(n_tiles, warp * per_warp);
  const int my_tiles = min(n_tiles, tile0 + per_warp) - tile0;
  // First key of the warp's tile i.
  auto tile_key0 = [&](int i) { return key_begin + (tile0 + i) * kTileKeys; };

  const int copy_key = lane / kChunks, copy_chunk = lane % kChunks;
  // Block-table entries w0 + lane (pt_cur) and w0 + 32 + lane (pt_next) of
  // the warp's pages [w0 .., page_end): the rows of a tile come from these
  // registers (shuffles), not from a table load per tile on the critical path
  // (the kernel before, 13:48 UTC, waited on one each 16 keys: ncu at 32 x
  // 512, long-scoreboard stalls half its cycles). A window is left when a
  // tile's first key passes it (a tile spans <= 16 pages, so its keys lie in
  // the two) and the next one loaded then, 32 pages ahead of its use.
  const int warp_key_end = min(key_end, tile_key0(my_tiles));
  const int page_end = my_tiles > 0 && !skip ? (warp_key_end - 1) / block_size + 1 : 0;
  int w0 = my_tiles > 0 ? tile_key0(0) / block_size : 0, pt_cur = 0, pt_next = 0;
  // log2(block_size) for a power of two (shifts instead of divisions), else -1.
  const int bs_shift = (block_size & (block_size - 1)) == 0 ? __ffs(block_size) - 1 : -1;
  auto load_pages = [&](int w) -> int { return w + lane < page_end ? table[w + lane] : 0; };
  pt_cur = load_pages(w0);
  pt_next = load_pages(w0 + 32);
  // Cache row of the tile's key (lane % 16), -1 past the warp's keys; call
  // with i = 0, 1, 2, ... in order (the window moves forward).
  auto row_of_tile = [&](int i) -> int {
    const int j = tile_key0(i) + lane % kTileKeys;
    if (i < my_tiles && tile_key0(i) / block_size - w0 >= 32) {  // warp-uniform
      pt_cur = pt_next;
      w0 += 32;
      pt_next = load_pages(w0 + 32);
    }
    const int rel = (bs_shift >= 0 ? j >> bs_shift : j / block_size) - w0;
    const int in_cur = __shfl_sync(0xffffffffu, pt_cur, rel & 31);
    const int in_next = __shfl_sync(0xffffffffu, pt_next, rel & 31);
    if (i >= my_tiles || j >= warp_key_end) return -1;
    return (rel < 32 ? in_cur : in_next) * block_size +
           (bs_shift >= 0 ? j & (block_size - 1) : j % block_size);
  };
  // The first kStages tiles' cache rows (metadata only) before the wait.
  int first_rows[kStages];
#pragma unroll
  for (int i = 0; i < kStages; ++i) first_rows[i] = skip ? -1 : row_of_tile(i);
  GridDependencyWait();
  if (skip) return;

  // The warp's ring of stages: [stage][K | V][key][chunk ^ (key % 8)].
  __half* const ring = smem + warp * kStages * kStageHalves;
  const int64_t kv_dim = static_cast<int64_t>(n_kv_heads) * kHeadDim;
  const __half* const kbase = k_cache + kv_h * kHeadDim;
  const __half* const vbase = v_cache + kv_h * kHeadDim;
  auto issue = [&](int i, int row16) {  // tile i of this warp into stage i % kStages
    __half* const st = ring + (i % kStages) * kStageHalves;
#pragma unroll
    for (int c = 0; c < kCopies; ++c) {
      const int key = c * kKeysPerCopy + copy_key;
      const int row = __shfl_sync(0xffffffffu, row16, key);
      const int sw = (copy_chunk ^ (key & 7)) * 8;
      const int64_t off = static_cast<int64_t>(row < 0 ? 0 : row) * kv_dim + copy_chunk * 8;
      CopyOrZero16(st + key * kHeadDim + sw, kbase + off, row >= 0);
      CopyOrZero16(st + (kTileKeys + key) * kHeadDim + sw, vbase + off, row >= 0);
    }
  };
#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) {
    if (i < my_tiles) issue(i, first_rows[i]);
    asm volatile("cp.async.commit_group;\n" ::: "memory");
  }
  int next_row = first_rows[kStages - 1];

  // Q rows of the chunk as A fragments, loaded while the first tiles are in
  // flight: lane (g, qd) holds head g's dims ks*16 + qd + {0, 1} (a0) and
  // + 8 (a2), hi and lo f16 parts.
  const int g = lane / 4, qd = (lane % 4) * 2;
  unsigned q_hi[kKSteps][2], q_lo[kKSteps][2];
  {
    const float sl = scale * kLog2e;
    const float* qrow = q + (static_cast<int64_t>(t) * n_heads + h0 + min(g, kGroup - 1)) * kHeadDim;
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float2 x = make_float2(0.0f, 0.0f);
        if (g < kGroup) {
          x = *reinterpret_cast<const float2*>(qrow + ks * 16 + r * 8 + qd);
          x.x *= sl;
          x.y *= sl;
        }
        const __half2 hi = __floats2half2_rn(x.x, x.y);
        const float2 hf = __half22float2(hi);
        memcpy(&q_hi[ks][r], &hi, 4);
        q_lo[ks][r] = PackHalf2(x.x - hf.x, x.y - hf.y);
      }
    }
  }

  float m = -INFINITY, l = 0.0f;  // row g's running max (base 2) and this lane's share of the sum
  float acc[kNTiles][4] = {};  // [2], [3]: the lo rows (P lo V), added at the end
  // ldmatrix row addresses: matrix mi = lane / 8, row lane % 8.
  const int lm = lane / 8, lr = lane % 8;
  for (int i = 0; i < my_tiles; ++i) {
    // Keep kStages - 1 tiles in flight: issue tile i + kStages - 1 first.
    if (i + kStages - 1 < my_tiles) issue(i + kStages - 1, next_row);
    asm volatile("cp.async.commit_group;\n" ::: "memory");
    next_row = row_of_tile(i + kStages);
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kStages - 1) : "memory");
    __syncwarp();
    const __half* const kt = ring + (i % kStages) * kStageHalves;
    const __half* const vt = kt + kTileKeys * kHeadDim;

    // S: Q hi in rows 0..7 of A, Q lo in rows 8..15, so c[2], c[3] are the
    // lo products of c[0], c[1] (one mma a k step, not one per part); even
    // and odd k steps in separate chains. [key tile of 8][k step parity][c].
    float c[2][2][4] = {};
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
      // m0 (keys 0-7, chunk 2ks), m1 (keys 0-7, chunk 2ks+1), m2 / m3 keys 8-15.
      const int key = (lm / 2) * 8 + lr, chunk = 2 * ks + lm % 2;
      unsigned kb[4];
      LoadMatrices(kb, kt + key * kHeadDim + (chunk ^ lr) * 8);
#pragma unroll
      for (int n = 0; n < 2; ++n) {
        MmaFull(c[n][ks % 2], q_hi[ks][0], q_lo[ks][0], q_hi[ks][1], q_lo[ks][1], kb[2 * n],
                kb[2 * n + 1]);
      }
    }
    float s[2][2];  // [key tile of 8][column pair]
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int e = 0; e < 2; ++e) s[n][e] = (c[n][0][e] + c[n][0][e + 2]) + (c[n][1][e] + c[n][1][e + 2]);
    }
    const int key0 = tile_key0(i);
    float mx = -INFINITY;
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        if (key0 + n * 8 + qd + e >= key_end) s[n][e] = -INFINITY;
        mx = fmaxf(mx, s[n][e]);
      }
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_new = fmaxf(m, mx);  // finite: the tile's first key is visible
    const float corr = exp2f(m - m_new);
    m = m_new;
    float p[2][2];
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int e = 0; e < 2; ++e) p[n][e] = exp2f(s[n][e] - m_new);
    }
    l = l * corr + (p[0][0] + p[0][1]) + (p[1][0] + p[1][1]);
    // P as f16 hi + lo parts, as Q: with P in f16 alone (~1e-3 relative) the
    // Q4_K_M top-1 agreement with the CPU path fell from 95.5% to 95.1%
    // (qwen2; the bar is 95%).
    const unsigned pa0 = PackHalf2(p[0][0], p[0][1]), pa2 = PackHalf2(p[1][0], p[1][1]);
    const unsigned pl0 = PackHalf2Rest(p[0][0], p[0][1], pa0), pl2 = PackHalf2Rest(p[1][0], p[1][1], pa2);
    // O += P V: P hi in rows 0..7 of A, P lo in rows 8..15 (one mma a V
    // tile), the lo products accumulated apart (acc[n][2], [3]). The rescale
    // is skipped while no row's max moved (corr exactly 1).
    if (__any_sync(0xffffffffu, corr != 1.0f)) {
#pragma unroll
      for (int n = 0; n < kNTiles; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[n][e] *= corr;
      }
    }
#pragma unroll
    for (int np = 0; np < kNTiles / 2; ++np) {
      // m0 (keys 0-7, chunk 2np), m1 (keys 8-15, chunk 2np), m2 / m3 chunk 2np+1.
      const int key = (lm % 2) * 8 + lr, chunk = 2 * np + lm / 2;
      unsigned vb[4];
      LoadMatricesT(vb, vt + key * kHeadDim + (chunk ^ lr) * 8);
#pragma unroll
      for (int h = 0; h < 2; ++h) MmaFull(acc[2 * np + h], pa0, pl0, pa2, pl2, vb[2 * h], vb[2 * h + 1]);
    }
    __syncwarp();  // every lane's ldmatrix of this stage before it is refilled
  }
  asm volatile("cp.async.wait_all;\n" ::: "memory");
  GridDependencyLaunchDependents();  // the next kernel may launch during the merge below
#pragma unroll
  for (int n = 0; n < kNTiles; ++n) {
    acc[n][0] += acc[n][2];
    acc[n][1] += acc[n][3];
  }
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);

  // Merge the warps (natural-log units from here, as the partials' layout).
  __syncthreads();  // every warp is done with its ring: reuse it
  float* const s_acc = reinterpret_cast<float*>(smem);  // [warp][head][dim]
  __shared__ float s_m[kWarps][kGroup], s_l[kWarps][kGroup], s_w[kWarps][kGroup];
  __shared__ float s_gm[kGroup], s_gl[kGroup];
  if (g < kGroup) {
    if (lane % 4 == 0) {
      s_m[warp][g] = m == -INFINITY ? -INFINITY : m * kLn2;
      s_l[warp][g] = l;
    }
    float* const a = s_acc + (warp * kGroup + g) * kHeadDim + qd;
#pragma unroll
    for (int n = 0; n < kNTiles; ++n) *reinterpret_cast<float2*>(a + n * 8) = make_float2(acc[n][0], acc[n][1]);
  }
  __syncthreads();
  if (static_cast<int>(threadIdx.x) < kGroup) {
    const int h = threadIdx.x;
    float gm = -INFINITY;
    for (int w = 0; w < kWarps; ++w) gm = fmaxf(gm, s_m[w][h]);
    float gl = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      const float wt = s_m[w][h] == -INFINITY ? 0.0f : expf(s_m[w][h] - gm);
      s_w[w][h] = wt;
      gl += s_l[w][h] * wt;
    }
    s_gm[h] = gm;
    s_gl[h] = gl;
  }
  __syncthreads();
  const int64_t row0 = static_cast<int64_t>(t) * n_heads + h0;
  // Value idx = threadIdx.x + k * kThreads of the chunk (head h, dim d) in ov[k].
  constexpr int kOut = kGroup * kHeadDim;
  constexpr int kPer = (kOut + kThreads - 1) / kThreads;
  float ov[kPer];
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int idx = threadIdx.x + k * kThreads;
    ov[k] = 0.0f;
    if (idx >= kOut) continue;
    const int h = idx / kHeadDim, d = idx % kHeadDim;
    float v = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) v += s_acc[(w * kGroup + h) * kHeadDim + d] * s_w[w][h];
    if (partials == nullptr) {
      const float gl = s_gl[h];
      ov[k] = gl > 0.0f ? v / gl : 0.0f;
      out[row0 * kHeadDim + idx] = ov[k];
    } else {
      float* pr = PartialAt(partials, (row0 + h) * n_splits + split, kHeadDim);
      if (d == 0) {
        pr[0] = s_gm[h];
        pr[1] = s_gl[h];
      }
      pr[2 + d] = v;
    }
  }
  // One split: the output quantized for the next matmul here (fold_rule 1 /
  // 2, as LaunchQuantizeActivation: the same integers), and that matmul's
  // K-split outputs zeroed (the grid is 2-D then).
  if (partials == nullptr && fold_rule > 0) QuantizeChunk<kThreads, kOut>(ov, row0 * kHeadDim, fold_rule, xq);
  ZeroSpansGridStride(zero);
}

// What a one-split launch does after the keys (DecodeMmaKernel's fold_rule, xq,
// zero), and the launch-shape choices of DecodeAttnConfig.
struct Fold {
  int rule = -1;
  ActQ8* xq = nullptr;
  ZeroSpans zero;
  bool eight_warps = false;
};

template <int kHeadDim, int kGroup, int kBlockWarps>
bool LaunchWarps(dim3 grid, const float* q, float* out, const AttnBatch& b, int n_heads,
                 int n_kv_heads, float scale, const __half* kc, const __half* vc, int block_size,
                 float* partials, hipStream_t s, int tile_tokens, const Fold& f) {
  constexpr int kSmem = SmemBytes<kHeadDim, kBlockWarps>();
  const auto kernel = &DecodeMmaKernel<kHeadDim, kGroup, kBlockWarps>;
  static const bool ok = [kernel] {
    const bool set = cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel),
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem) == cudaSuccess;
    if (!set) (void)cudaGetLastError();
    return set;
  }();
  if (!ok) return false;
  LaunchKernel(kernel, grid, kBlockWarps * 32, kSmem, s, q, out, b, n_heads, n_kv_heads, scale, kc,
               vc, block_size, partials, tile_tokens, f.rule, f.xq, f.zero);
  return true;
}

template <int kHeadDim, int kGroup>
bool Launch(dim3 grid, const float* q, float* out, const AttnBatch& b, int n_heads, int n_kv_heads,
            float scale, const __half* kc, const __half* vc, int block_size, float* partials,
            hipStream_t s, int tile_tokens, const Fold& f) {
  if (f.eight_warps) {
    return LaunchWarps<kHeadDim, kGroup, 8>(grid, q, out, b, n_heads, n_kv_heads, scale, kc, vc,
                                            block_size, partials, s, tile_tokens, f);
  }
  return LaunchWarps<kHeadDim, kGroup, kDefaultWarps>(grid, q, out, b, n_heads, n_kv_heads, scale, kc,
                                                      vc, block_size, partials, s, tile_tokens, f);
}

template <int kHeadDim>
bool LaunchForGroup(int per_block, dim3 grid, const float* q, float* out, const AttnBatch& b,
                    int n_heads, int n_kv_heads, float scale, const __half* kc, const __half* vc,
                    int block_size, float* partials, hipStream_t s, int tile_tokens, const Fold& f) {
  switch (per_block) {
    case 1:
      return Launch<kHeadDim, 1>(grid, q, out, b, n_heads, n_kv_heads, scale, kc, vc, block_size,
                                 partials, s, tile_tokens, f);
    case 2:
      return Launch<kHeadDim, 2>(grid, q, out, b, n_heads, n_kv_heads, scale, kc, vc, block_size,
                                 partials, s, tile_tokens, f);
    case 4:
      return Launch<kHeadDim, 4>(grid, q, out, b, n_heads, n_kv_heads, scale, kc, vc, block_size,
                                 partials, s, tile_tokens, f);
    default:
      return Launch<kHeadDim, 8>(grid, q, out, b, n_heads, n_kv_heads, scale, kc, vc, block_size,
                                 partials, s, tile_tokens, f);
  }
}

}  // namespace mma_decode
#endif  // RF_GPU_CUDA

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

bool DecodeMmaSupported(int n_heads, int n_kv_heads, int head_dim, const void* k_cache,
                        const void* v_cache) {
#if defined(RF_GPU_CUDA)
  return (head_dim == 64 || head_dim == 128) &&
         GroupedSupported(n_heads, n_kv_heads, head_dim, k_cache, v_cache);
#else
  (void)n_heads, (void)n_kv_heads, (void)head_dim, (void)k_cache, (void)v_cache;
  return false;
#endif
}

int DecodeMmaSplitCount(int n_tokens, int kv_blocks_per_token, int max_ctx, int head_dim,
                        int target_blocks, int one_split_keys) {
#if defined(RF_GPU_CUDA)
  // Short contexts unsplit: at batch 1 four splits of <= 32 keys cost the
  // merge kernel after them and buy little (H100, 2026-11-27 19:50 UTC, ms a
  // token, three repeats, max_ctx then 256 for 1..256 keys: tg128 Q4_K_M
  // 2.331 -> 2.304, Q8_0 3.343 -> 3.307 unsplit). At 129..256 keys one split
  // of 4-warp blocks was 1.8% slower (2.357 -> 2.401); of 8-warp blocks
  // (one_split_warps) 1.0% faster (2026-11-28 02:05 UTC, RF_TG_START=128:
  // 2.365-2.370 -> 2.342-2.344), hence one_split_keys 256. At 257..384 keys
  // one split was no clear gain (2.386-2.394 -> 2.358-2.393).
  if (target_blocks <= 0 && one_split_keys > 0 && max_ctx <= one_split_keys) return 1;
  const int per_block_smem = (head_dim == 64 ? mma_decode::SmemBytes<64>() : mma_decode::SmemBytes<128>()) + 2048;
  const int64_t resident = static_cast<int64_t>(MultiprocessorCount()) * std::max(1, (227 << 10) / per_block_smem);
  int64_t target = target_blocks > 0 ? target_blocks : resident;
  if (target > kTargetBlocks) target = kTargetBlocks;  // stays within GroupedSplitCount (scratch)
  const int64_t base = static_cast<int64_t>(n_tokens) * std::max(1, kv_blocks_per_token);
  int64_t splits = target / base;  // whole waves: never more blocks than the target
  const int64_t by_keys = (max_ctx + mma_decode::kMinKeysPerSplit - 1) / mma_decode::kMinKeysPerSplit;
  // At most 16 splits: H100 (13:27 UTC), one sequence at 2048 keys took 12.7
  // us with 16 splits against 18.8 with 32 (the merge of 32 partials and
  // blocks of one tile a warp); every other shape of the table splits less.
  splits = std::min<int64_t>(std::min<int64_t>(splits, by_keys), mma_decode::kMaxSplits);
  splits = std::max<int64_t>(splits, 1);
  return std::min(static_cast<int>(splits), GroupedSplitCount(n_tokens, kv_blocks_per_token, max_ctx));
#else
  (void)head_dim, (void)target_blocks, (void)one_split_keys;
  return GroupedSplitCount(n_tokens, kv_blocks_per_token, max_ctx);
#endif
}

bool DecodeMmaQuantizeSupported(int n_heads, int n_kv_heads, int head_dim, int fold_rule) {
  if (n_kv_heads <= 0 || n_heads % n_kv_heads != 0 || fold_rule < 1 || fold_rule > 2) return false;
  const int chunk = GroupedHeadsPerBlock(n_heads / n_kv_heads) * head_dim;  // values a block writes
  return chunk % (fold_rule == 2 ? 256 : 32) == 0;
}

bool LaunchDecodeMma(const float* q, float* out, const AttnBatch& b, int n_heads, int n_kv_heads,
                     int head_dim, float scale, const __half* k_cache, const __half* v_cache,
                     int block_size, int n_splits, float* partials, hipStream_t s, int tile_tokens,
                     int fold_rule, ActQ8* xq, const ZeroSpans& zero) {
#if defined(RF_GPU_CUDA)
  const int per_block = GroupedHeadsPerBlock(n_heads / n_kv_heads);
  const dim3 grid(n_heads / per_block, b.n_tokens, n_splits);
  mma_decode::Fold f;
  const DecodeAttnConfig config = GetDecodeAttnConfig();
  if (n_splits == 1 && partials == nullptr && tile_tokens == 0) {
    f.rule = fold_rule;
    f.xq = xq;
    f.zero = zero;
    // 8-warp blocks (128 KB of shared memory at head_dim 128: one an SM)
    // only where every block still starts at once; larger batches keep the
    // 4-warp blocks, four of which share an SM.
    f.eight_warps = config.one_split_warps == 8 &&
                    static_cast<int64_t>(grid.x) * grid.y <= MultiprocessorCount();
  }
  if (head_dim == 64) {
    return mma_decode::LaunchForGroup<64>(per_block, grid, q, out, b, n_heads, n_kv_heads, scale,
                                          k_cache, v_cache, block_size, partials, s, tile_tokens, f);
  }
  if (head_dim == 128) {
    return mma_decode::LaunchForGroup<128>(per_block, grid, q, out, b, n_heads, n_kv_heads, scale,
                                           k_cache, v_cache, block_size, partials, s, tile_tokens, f);
  }
#else
  (void)q, (void)out, (void)b, (void)n_heads, (void)n_kv_heads, (void)head_dim, (void)scale;
  (void)k_cache, (void)v_cache, (void)block_size, (void)n_splits, (void)partials, (void)s;
  (void)tile_tokens, (void)fold_rule, (void)xq, (void)zero;
#endif
  return false;
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
