// Prefill attention over token tiles: one block per (tile of kTile consecutive
// tokens of the batch, KV head, chunk of kGroup query heads, split). The
// tile's runs of >= 2 consecutive tokens of one sequence (prefill chunks) are
// served together: each K/V row of the run's keys is loaded once per tile
// instead of once per token, which is what a 512-token prefill spends its
// attention time on (the grouped kernel re-read ~17 GB of K/V per pp512 step).
// Tokens that are alone in their tile (decode tokens) are left to the grouped
// kernel (TokenInTileRun in attention_device.h decides for both kernels).
//
// A pass takes kKeys keys: K (transposed) and V of those keys go to shared
// memory as f16, the kRows = kTile * kGroup query rows (scaled q, f32) live
// in shared memory transposed, and plain SIMT math does the rest:
//   scores  S[r][k] = q_r . K_k     thread: 4 rows x 2 keys
//   softmax online per row          4 threads a row
//   O[r][d] += P[r][k] V_k[d]        thread: 4 rows x head_dim / 16 dims
// Rows whose key is not visible (key >= the token's token_ctx) get p = 0.
// Nothing depends on the wave size except the 4-lane shuffles of the softmax.
// On devices with matrix cores the same tiles run on the mma:: interface by
// default (kernels/attention_prefill_mma.hip; PrefillAttnConfig picks).
#include <cstdlib>
#include <cstring>

#include "kernels/attention_device.h"
#include "kernels/attention_prefill_mma.h"
#include "kernels/launch_util.h"

namespace rocmforge::gpu::attn {
namespace {

constexpr int kThreads = 128;
constexpr int kRows = 32;          // query rows of a block (tokens x heads)
constexpr int kKeys = 32;          // keys per pass
constexpr int kRowsPerThread = 4;  // score / output rows of one thread
constexpr int kPStride = 40;       // p_s row stride: conflict-free for the softmax lanes
constexpr int kMinKeysPerSplit = 32;
static_assert(kThreads == (kRows / kRowsPerThread) * 16, "8 row groups x 16 lanes");
static_assert(kThreads == kRows * 4, "4 softmax threads per row");
static_assert(kWaveSize % 4 == 0, "softmax lanes of a row share a wave");

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

template <int kHeadDim, int kGroup>
__global__ void __launch_bounds__(kThreads, 4)
    PrefillTileKernel(const float* __restrict__ q, float* __restrict__ out, AttnBatch b,
                      int n_heads, int n_kv_heads, float scale, const __half* __restrict__ k_cache,
                      const __half* __restrict__ v_cache, int block_size,
                      float* __restrict__ partials) {
  constexpr int kTile = kRows / kGroup;      // tokens of a tile
  constexpr int kDims = kHeadDim / 16;       // output dims of a thread
  constexpr int kChunks = kHeadDim / 8;      // 16-byte pieces of a K/V row
  static_assert(kDims == 4 || kDims == 8, "head_dim 64 or 128");
  __shared__ __align__(16) float q_s[kHeadDim][kRows];   // transposed, scaled
  __shared__ __align__(16) __half k_s[kHeadDim][kKeys];  // transposed
  __shared__ __align__(16) __half v_s[kKeys][kHeadDim];
  __shared__ __align__(16) float p_s[kKeys][kPStride];  // scores, then probabilities
  __shared__ float s_m[kRows], s_l[kRows], s_corr[kRows];
  __shared__ int s_ctx[kRows];  // keys visible to the row's token; 0: row not in the run

  const int group = n_heads / n_kv_heads;
  const int chunks = group / kGroup;
  const int kv_h = blockIdx.x / chunks;
  const int h0 = kv_h * group + (blockIdx.x % chunks) * kGroup;
  // The last tiles have the most keys (causal): start them first.
  const int tile = static_cast<int>(gridDim.y) - 1 - static_cast<int>(blockIdx.y);
  const int t0 = tile * kTile;
  const int t_end = min(b.n_tokens, t0 + kTile);
  const int split = blockIdx.z, n_splits = gridDim.z;
  const int tid = threadIdx.x;
  const int rg = tid / 16, lane16 = tid % 16;  // row group; key pair / dim group
  const int kv_dim = n_kv_heads * kHeadDim;
  const __half* kb = k_cache + kv_h * kHeadDim;
  const __half* vb = v_cache + kv_h * kHeadDim;

  for (int run = t0; run < t_end;) {  // uniform over the block
    const int seq = b.token_seq[run];
    int run_end = run + 1, run_ctx = b.token_ctx[run];
    while (run_end < t_end && b.token_seq[run_end] == seq) {
      run_ctx = max(run_ctx, b.token_ctx[run_end]);
      ++run_end;
    }
    if (run_end - run < 2) {  // a lone token: the grouped kernel's
      run = run_end;
      continue;
    }
    const int32_t* table = b.block_tables + b.seq_table_off[seq];
    const int per_split = max((run_ctx + n_splits - 1) / n_splits, kMinKeysPerSplit);
    const int key_begin = split * per_split;
    const int key_end = min(run_ctx, key_begin + per_split);

    __syncthreads();  // the previous run's readers of the shared arrays are done
    for (int i = tid; i < kRows * kHeadDim; i += kThreads) {
      const int r = i / kHeadDim, d = i % kHeadDim;
      const int t = t0 + r / kGroup;
      const bool in_run = t >= run && t < run_end;
      q_s[d][r] = in_run ? q[(static_cast<int64_t>(t) * n_heads + h0 + r % kGroup) * kHeadDim + d] * scale
                         : 0.0f;
    }
    if (tid < kRows) {
      const int t = t0 + tid / kGroup;
      s_ctx[tid] = t >= run && t < run_end ? b.token_ctx[t] : 0;
      s_m[tid] = -INFINITY;
      s_l[tid] = 0.0f;
    }
    float acc[kRowsPerThread][kDims];
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i) {
#pragma unroll
      for (int j = 0; j < kDims; ++j) acc[i][j] = 0.0f;
    }

    for (int base = key_begin; base < key_end; base += kKeys) {
      // K of keys [base, base + kKeys): lanes of a wave take consecutive keys of
      // one 16-byte chunk, so the transposed stores do not collide; V: lanes
      // take consecutive chunks of one key (row-major stores, whole rows read).
      auto row_off = [&](int j) -> int64_t {
        return static_cast<int64_t>(table[j / block_size] * block_size + j % block_size) * kv_dim;
      };
      for (int i = tid; i < kKeys * kChunks; i += kThreads) {
        const int key = i % kKeys, c = i / kKeys;
        const int j = base + key;
        uint4 kr = make_uint4(0, 0, 0, 0);
        if (j < key_end) kr = *reinterpret_cast<const uint4*>(kb + row_off(j) + 8 * c);
        __half kh[8];
        memcpy(kh, &kr, sizeof(kh));
#pragma unroll
        for (int u = 0; u < 8; ++u) k_s[8 * c + u][key] = kh[u];
      }
      for (int i = tid; i < kKeys * kChunks; i += kThreads) {
        const int key = i / kChunks, c = i % kChunks;
        const int j = base + key;
        uint4 vr = make_uint4(0, 0, 0, 0);
        if (j < key_end) vr = *reinterpret_cast<const uint4*>(vb + row_off(j) + 8 * c);
        *reinterpret_cast<uint4*>(&v_s[key][8 * c]) = vr;
      }
      __syncthreads();

      // Scores: rows rg*4.., keys 2*lane16 and 2*lane16 + 1.
      float sc[kRowsPerThread][2] = {};
#pragma unroll 8
      for (int d = 0; d < kHeadDim; ++d) {
        const float4 qv = *reinterpret_cast<const float4*>(&q_s[d][rg * kRowsPerThread]);
        const float2 kv = __half22float2(*reinterpret_cast<const __half2*>(&k_s[d][2 * lane16]));
        const float qr[4] = {qv.x, qv.y, qv.z, qv.w};
#pragma unroll
        for (int i = 0; i < kRowsPerThread; ++i) {
          sc[i][0] += qr[i] * kv.x;
          sc[i][1] += qr[i] * kv.y;
        }
      }
#pragma unroll
      for (int i = 0; i < kRowsPerThread; ++i) {
        const int r = rg * kRowsPerThread + i;
#pragma unroll
        for (int u = 0; u < 2; ++u) {
          const int key = 2 * lane16 + u;
          p_s[key][r] = base + key < min(key_end, s_ctx[r]) ? sc[i][u] : -INFINITY;
        }
      }
      __syncthreads();

      // Online softmax: 4 adjacent lanes per row, keys q4, q4 + 4, ...
      {
        const int r = tid / 4, q4 = tid % 4;
        float mx = -INFINITY;
#pragma unroll
        for (int u = 0; u < kKeys / 4; ++u) mx = fmaxf(mx, p_s[q4 + 4 * u][r]);
        mx = fmaxf(mx, WaveShflXor(mx, 1));
        mx = fmaxf(mx, WaveShflXor(mx, 2));
        const float m_old = s_m[r];
        const float m_new = fmaxf(m_old, mx);
        float sum = 0.0f;
#pragma unroll
        for (int u = 0; u < kKeys / 4; ++u) {
          const float s = p_s[q4 + 4 * u][r];
          const float p = s == -INFINITY ? 0.0f : expf(s - m_new);
          p_s[q4 + 4 * u][r] = p;
          sum += p;
        }
        sum += WaveShflXor(sum, 1);
        sum += WaveShflXor(sum, 2);
        if (q4 == 0) {
          // m_new stays -inf only while the row has seen no visible key.
          const float corr = m_new == -INFINITY ? 1.0f : expf(m_old - m_new);
          s_corr[r] = corr;
          s_l[r] = s_l[r] * corr + sum;
          s_m[r] = m_new;
        }
      }
      __syncthreads();

      // O += P V: rows rg*4.., dims lane16 * kDims...
#pragma unroll
      for (int i = 0; i < kRowsPerThread; ++i) {
        const float corr = s_corr[rg * kRowsPerThread + i];
#pragma unroll
        for (int j = 0; j < kDims; ++j) acc[i][j] *= corr;
      }
#pragma unroll 4
      for (int key = 0; key < kKeys; ++key) {
        const float4 pv = *reinterpret_cast<const float4*>(&p_s[key][rg * kRowsPerThread]);
        const float pr[4] = {pv.x, pv.y, pv.z, pv.w};
        float vf[kDims];
        if constexpr (kDims == 8) {
          Unpack8(*reinterpret_cast<const uint4*>(&v_s[key][lane16 * kDims]), vf);
        } else {
          const __half2* v2 = reinterpret_cast<const __half2*>(&v_s[key][lane16 * kDims]);
          const float2 a = __half22float2(v2[0]), c = __half22float2(v2[1]);
          vf[0] = a.x;
          vf[1] = a.y;
          vf[2] = c.x;
          vf[3] = c.y;
        }
#pragma unroll
        for (int i = 0; i < kRowsPerThread; ++i) {
#pragma unroll
          for (int j = 0; j < kDims; ++j) acc[i][j] += pr[i] * vf[j];
        }
      }
      __syncthreads();  // before the next pass overwrites k_s, v_s, p_s
    }
    __syncthreads();  // s_m / s_l of a run with no pass

    // The run's rows: final output (unsplit) or this split's partial record.
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i) {
      const int r = rg * kRowsPerThread + i;
      if (s_ctx[r] == 0) continue;
      const int t = t0 + r / kGroup;
      const int64_t out_idx = static_cast<int64_t>(t) * n_heads + h0 + r % kGroup;
      const float l = s_l[r];
      if (partials == nullptr) {
        float* o = out + out_idx * kHeadDim + lane16 * kDims;
#pragma unroll
        for (int j = 0; j < kDims; ++j) o[j] = l > 0.0f ? acc[i][j] / l : 0.0f;
      } else {
        float* pr = PartialAt(partials, out_idx * n_splits + split, kHeadDim);
        if (lane16 == 0) {
          pr[0] = s_m[r];
          pr[1] = l;
        }
#pragma unroll
        for (int j = 0; j < kDims; ++j) pr[2 + lane16 * kDims + j] = acc[i][j];
      }
    }
    run = run_end;
  }
}

template <int kHeadDim, int kGroup>
void Launch(dim3 grid, const float* q, float* out, const AttnBatch& b, int n_heads,
            int n_kv_heads, float scale, const __half* kc, const __half* vc, int block_size,
            float* partials, hipStream_t s) {
  PrefillTileKernel<kHeadDim, kGroup><<<grid, kThreads, 0, s>>>(
      q, out, b, n_heads, n_kv_heads, scale, kc, vc, block_size, partials);
}

template <int kHeadDim>
void LaunchForHeadDim(int per_block, dim3 grid, const float* q, float* out, const AttnBatch& b,
                      int n_heads, int n_kv_heads, float scale, const __half* kc, const __half* vc,
                      int block_size, float* partials, hipStream_t s) {
  switch (per_block) {
    case 1:
      Launch<kHeadDim, 1>(grid, q, out, b, n_heads, n_kv_heads, scale, kc, vc, block_size,
                          partials, s);
      break;
    case 2:
      Launch<kHeadDim, 2>(grid, q, out, b, n_heads, n_kv_heads, scale, kc, vc, block_size,
                          partials, s);
      break;
    case 4:
      Launch<kHeadDim, 4>(grid, q, out, b, n_heads, n_kv_heads, scale, kc, vc, block_size,
                          partials, s);
      break;
    default:
      Launch<kHeadDim, 8>(grid, q, out, b, n_heads, n_kv_heads, scale, kc, vc, block_size,
                          partials, s);
      break;
  }
}

// RF_PREFILL_ATTN=mma|simt sets the start-up kernel (whole-model benchmarks).
PrefillAttnConfig InitialPrefillAttnConfig() {
  PrefillAttnConfig c;
  if (const char* e = std::getenv("RF_PREFILL_ATTN"); e != nullptr) {
    if (std::strcmp(e, "mma") == 0) c.kernel = 1;
    if (std::strcmp(e, "simt") == 0) c.kernel = -1;
  }
  return c;
}
PrefillAttnConfig g_prefill_config = InitialPrefillAttnConfig();

bool UseMmaTiles() {
  return g_prefill_config.kernel >= 0 && DeviceHasMatrixCores();
}

}  // namespace

bool PrefillTilesSupported(int n_heads, int n_kv_heads, int head_dim, const void* k_cache,
                           const void* v_cache) {
  return (head_dim == 64 || head_dim == 128) &&
         GroupedSupported(n_heads, n_kv_heads, head_dim, k_cache, v_cache);
}

int PrefillTileTokens(int group) { return kRows / GroupedHeadsPerBlock(group); }

void LaunchPrefillTileAttention(const float* q, float* out, const AttnBatch& b, int n_heads,
                                int n_kv_heads, int head_dim, float scale, const __half* k_cache,
                                const __half* v_cache, int block_size, int n_splits,
                                float* partials, hipStream_t s) {
  const int group = n_heads / n_kv_heads;
  const int per_block = GroupedHeadsPerBlock(group);
  const int tile = PrefillTileTokens(group);
  const dim3 grid(n_heads / per_block, (b.n_tokens + tile - 1) / tile, n_splits);
  if (UseMmaTiles()) {
    LaunchPrefillTileMma(grid, per_block, q, out, b, n_heads, n_kv_heads, head_dim, scale, k_cache,
                         v_cache, block_size, partials, s);
    return;
  }
  if (head_dim == 64) {
    LaunchForHeadDim<64>(per_block, grid, q, out, b, n_heads, n_kv_heads, scale, k_cache, v_cache,
                         block_size, partials, s);
  } else {
    LaunchForHeadDim<128>(per_block, grid, q, out, b, n_heads, n_kv_heads, scale, k_cache,
                          v_cache, block_size, partials, s);
  }
}

}  // namespace rocmforge::gpu::attn

namespace rocmforge::gpu {
void SetPrefillAttnConfig(const PrefillAttnConfig& c) { attn::g_prefill_config = c; }
PrefillAttnConfig GetPrefillAttnConfig() { return attn::g_prefill_config; }
}  // namespace rocmforge::gpu
