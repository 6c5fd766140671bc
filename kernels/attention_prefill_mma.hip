// Prefill token-tile attention on the matrix cores: the same blocks, runs,
// splits, causal mask and outputs as the SIMT tile kernel (attention_prefill.hip,
// whose header comment describes the tiling), with the math on mma:: 16x16x16
// tiles (f16 operands, f32 accumulation):
//   S = Q K^T      A = the block's 32 query rows (f16, scaled by scale * log2 e),
//                  B = K rows as stored in the cache ([key][dim] = [n][k])
//   O += P V       A = P (f16), B = V ([key][dim] = [k][n]: a transposed load)
// A pass takes 64 keys. K and V of a pass have one shared buffer each, so the
// loads overlap the math: K of the next pass is copied (cp.async on NVIDIA)
// while this pass does its softmax and P V, and V of the next pass while the
// next scores are computed.
//
// Waves: the 32 rows are two strips of 16, the 64 keys two groups of 32. Each
// wave owns (strips, key group) pairs: wave 32 (4 waves) one strip each, wave
// 64 (2 waves) both strips. A wave keeps its own online softmax (m, l per row,
// in base-2 units) and O on its accumulator fragments; the two key groups'
// states merge through shared memory at the end of a run. The row max and sum
// reduce over the lanes of a row with shuffles (mma_layout::CSameRow,
// kCRowLanes). P goes from the score accumulators straight into A fragments on
// NVIDIA (the m16n8k16 C and A layouts match); elsewhere through shared memory.
#include <cstring>

#include "kernels/attention_device.h"
#include "kernels/attention_prefill_mma.h"
#include "kernels/launch_util.h"

namespace rocmforge::gpu::attn {
namespace {

#if defined(RF_GPU_CUDA)
using CLayout = mma_layout::MmaSync16x16x16;  // the NVIDIA FragC item order
#else
using CLayout = mma::Layout;
#endif
static_assert(CLayout::kWave == kWaveSize, "one C layout per wave size");
constexpr int kCItems = CLayout::kCPerLane;
constexpr int kRowLanes = CLayout::kCRowLanes;

constexpr int kThreads = 128;
constexpr int kRows = 32;  // query rows of a block (tokens x heads), as the SIMT kernel
constexpr int kKeys = 64;  // keys per pass
constexpr int kKeyGroups = 2;
constexpr int kGroupKeys = kKeys / kKeyGroups;  // keys of one wave in a pass
constexpr int kStrips = kRows / 16;
constexpr int kWaves = kThreads / kWaveSize;
constexpr int kWavesPerGroup = kWaves / kKeyGroups;
constexpr int kStripsPerWave = kStrips / kWavesPerGroup;
constexpr int kMinKeysPerSplit = 32;  // the split rule of the SIMT tile kernel
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
static_assert(kWavesPerGroup >= 1 && kStrips % kWavesPerGroup == 0, "waves 32 or 64");
static_assert(kGroupKeys == 32, "P of a wave is two 16-key A tiles");

// The representative (first) item of item i's row in a lane.
constexpr int RowRep(int i) {
  for (int j = 0; j < kCItems; ++j) {
    if (mma_layout::CSameRow<CLayout>(i, j)) return j;
  }
  return i;
}

__device__ __forceinline__ float RowMaxLanes(float v) {
#pragma unroll
  for (int x = 1; x < kRowLanes; x <<= 1) v = fmaxf(v, WaveShflXor(v, x));
  return v;
}
__device__ __forceinline__ float RowSumLanes(float v) {
#pragma unroll
  for (int x = 1; x < kRowLanes; x <<= 1) v += WaveShflXor(v, x);
  return v;
}

// B (16 k x 16 n) from p[k * ld + n] (row-major k x n, shared memory; p 16-byte
// aligned, ld a multiple of 8): the transpose of mma::LoadB's layout.
__device__ __forceinline__ void LoadBKxN(mma::FragB& b, const __half* p, unsigned ld) {
#if defined(RF_GPU_CUDA)
  // Matrix j (lanes 8j..8j+7 give its rows) is (n block j / 2, k block j % 2), the
  // order of FragB's registers; .trans hands lane (g, q) the elements (k 2q, 2q+1; n g).
  const int l = threadIdx.x % 32, j = l / 8;
  const unsigned addr = static_cast<unsigned>(
      __cvta_generic_to_shared(p + ((j % 2) * 8 + l % 8) * ld + (j / 2) * 8));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(b.x[0]), "=r"(b.x[1]), "=r"(b.x[2]), "=r"(b.x[3])
               : "r"(addr));
#else
  const int lane = static_cast<int>(threadIdx.x) % kWaveSize;
  auto bits = [&](int k, int n) {
    uint16_t u;
    __builtin_memcpy(&u, p + k * ld + n, 2);
    return static_cast<uint32_t>(u);
  };
#if defined(RF_MMA_PORTABLE)
#pragma unroll
  for (int pr = 0; pr < mma::kPairs; ++pr) {
    const mma_layout::Coord kn = mma::Layout::B(lane, 2 * pr);
    b.w[pr] = bits(kn.row, kn.col) | (bits(kn.row + 1, kn.col) << 16);
  }
#else
#pragma unroll
  for (int i = 0; i < mma::Layout::kBPerLane; ++i) {
    const mma_layout::Coord kn = mma::Layout::B(lane, i);
    b.x[i] = mma::detail::HalfBits(bits(kn.row, kn.col));
  }
#endif
#endif
}

template <int kHeadDim, int kGroup>
__global__ void __launch_bounds__(kThreads, 4)
    PrefillTileMmaKernel(const float* __restrict__ q, float* __restrict__ out, AttnBatch b,
                         int n_heads, int n_kv_heads, float scale,
                         const __half* __restrict__ k_cache, const __half* __restrict__ v_cache,
                         int block_size, float* __restrict__ partials) {
  if constexpr (!kBuildMatrixCoreKernels) {  // never launched on this target (kernels/mma_amd.h)
    __builtin_trap();
    return;
  }
  constexpr int kTile = kRows / kGroup;  // tokens of a tile
  constexpr int kLd = kHeadDim + 8;      // halves a shared row: conflict-free ldmatrix rows
  constexpr int kChunks = kHeadDim / 8;  // 16-byte pieces of a K/V row
  constexpr int kDimTiles = kHeadDim / 16;
  constexpr int kQHalves = kRows * kLd, kKvHalves = kKeys * kLd;
  static_assert(kHeadDim == 64 || kHeadDim == 128, "head_dim 64 or 128");
  // q_s, k_s, v_s; after a run's last pass k_s / v_s hold the combine buffers.
  __shared__ __align__(16) __half smem[kQHalves + 2 * kKvHalves];
  __shared__ int s_ctx[kRows];  // keys visible to the row's token; 0: row not in the run
  __half* const q_s = smem;
  __half* const k_s = smem + kQHalves;
  __half* const v_s = k_s + kKvHalves;
  float* const o_x = reinterpret_cast<float*>(k_s);  // [kRows][kHeadDim]
  float* const m_x = o_x + kRows * kHeadDim;
  float* const l_x = m_x + kRows;
  static_assert((kRows * kHeadDim + 2 * kRows) * 4 <= 2 * kKvHalves * 2, "combine buffers fit");
#if !defined(RF_GPU_CUDA)
  constexpr int kPLd = kGroupKeys + 8;
  __shared__ __align__(16) __half p_s[kWaves][kStripsPerWave][16 * kPLd];
#endif

  const int group = n_heads / n_kv_heads;
  const int chunks = group / kGroup;
  const int kv_h = blockIdx.x / chunks;
  const int h0 = kv_h * group + (blockIdx.x % chunks) * kGroup;
  const int tile = static_cast<int>(gridDim.y) - 1 - static_cast<int>(blockIdx.y);
  const int t0 = tile * kTile;
  const int t_end = min(b.n_tokens, t0 + kTile);
  const int split = blockIdx.z, n_splits = gridDim.z;
  const int tid = threadIdx.x;
  const int lane = tid % kWaveSize, wave = tid / kWaveSize;
  const int kg = wave / kWavesPerGroup;                       // key group of the wave
  const int strip0 = (wave % kWavesPerGroup) * kStripsPerWave;  // its first strip
  const int kv_dim = n_kv_heads * kHeadDim;
  const __half* kb = k_cache + kv_h * kHeadDim;
  const __half* vb = v_cache + kv_h * kHeadDim;
  const float qscale = scale * kLog2e;

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

    // Copies of keys [base, base + kKeys) of K or V into dst (zeros past key_end),
    // one group: consecutive threads take consecutive chunks of a row.
    auto load_pass = [&](__half* dst, const __half* src, int base) {
      for (int i = tid; i < kKeys * kChunks; i += kThreads) {
        const int key = i / kChunks, c = i % kChunks;
        const int j = base + key;
        __half* d = dst + key * kLd + 8 * c;
        if (j < key_end) {
          const int64_t row =
              static_cast<int64_t>(table[j / block_size]) * block_size + j % block_size;
          AsyncCopy16(d, src + row * kv_dim + 8 * c);
        } else {
          *reinterpret_cast<uint4*>(d) = make_uint4(0, 0, 0, 0);
        }
      }
      AsyncCommit();
    };

    __syncthreads();  // the previous run's readers of the shared arrays are done
    for (int i = tid; i < kRows * kHeadDim / 4; i += kThreads) {
      const int r = i / (kHeadDim / 4), d = 4 * (i % (kHeadDim / 4));
      const int t = t0 + r / kGroup;
      float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (t >= run && t < run_end) {
        x = *reinterpret_cast<const float4*>(
            q + (static_cast<int64_t>(t) * n_heads + h0 + r % kGroup) * kHeadDim + d);
      }
      __half2* dst = reinterpret_cast<__half2*>(q_s + r * kLd + d);
      dst[0] = __floats2half2_rn(x.x * qscale, x.y * qscale);
      dst[1] = __floats2half2_rn(x.z * qscale, x.w * qscale);
    }
    if (tid < kRows) {
      const int t = t0 + tid / kGroup;
      s_ctx[tid] = t >= run && t < run_end ? b.token_ctx[t] : 0;
    }
    if (key_begin < key_end) {
      load_pass(k_s, kb, key_begin);
      load_pass(v_s, vb, key_begin);
    }

    float m[kStripsPerWave][kCItems], l[kStripsPerWave][kCItems];
    mma::FragC o[kStripsPerWave][kDimTiles];
#pragma unroll
    for (int sp = 0; sp < kStripsPerWave; ++sp) {
#pragma unroll
      for (int i = 0; i < kCItems; ++i) {
        m[sp][i] = -INFINITY;
        l[sp][i] = 0.0f;
      }
#pragma unroll
      for (int dt = 0; dt < kDimTiles; ++dt) mma::Zero(o[sp][dt]);
    }

    for (int base = key_begin; base < key_end; base += kKeys) {
      const bool more = base + kKeys < key_end;
      AsyncWait<1>();  // this pass's K is in (its V may still be in flight)
      __syncthreads();

      // S = Q K^T over this wave's 32 keys.
      mma::FragC s[kStripsPerWave][2];
#pragma unroll
      for (int sp = 0; sp < kStripsPerWave; ++sp) {
        mma::Zero(s[sp][0]);
        mma::Zero(s[sp][1]);
      }
#pragma unroll
      for (int ks = 0; ks < kDimTiles; ++ks) {
        mma::FragB kf[2];
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
          mma::LoadB(kf[nt], k_s + (kg * kGroupKeys + 16 * nt) * kLd + 16 * ks, kLd);
        }
#pragma unroll
        for (int sp = 0; sp < kStripsPerWave; ++sp) {
          mma::FragA qf;
          mma::LoadA(qf, q_s + (strip0 + sp) * 16 * kLd + 16 * ks, kLd);
          mma::Mma(s[sp][0], qf, kf[0]);
          mma::Mma(s[sp][1], qf, kf[1]);
        }
      }
      __syncthreads();  // every wave is done with k_s
      if (more) {
        load_pass(k_s, kb, base + kKeys);
      } else {
        AsyncCommit();  // an empty group keeps the wait counts below uniform
      }

      // Online softmax on the accumulators; keys past a row's context get p = 0.
      mma::FragA pf[kStripsPerWave][2];
#pragma unroll
      for (int sp = 0; sp < kStripsPerWave; ++sp) {
        float mx[kCItems];
#pragma unroll
        for (int i = 0; i < kCItems; ++i) {
          const mma_layout::Coord rc = CLayout::C(lane, i);
          const int lim = min(key_end, s_ctx[(strip0 + sp) * 16 + rc.row]);
          const int key = base + kg * kGroupKeys + rc.col;
#pragma unroll
          for (int nt = 0; nt < 2; ++nt) {
            if (key + 16 * nt >= lim) s[sp][nt].x[i] = -INFINITY;
          }
          mx[i] = fmaxf(s[sp][0].x[i], s[sp][1].x[i]);
        }
        float corr[kCItems] = {};
#pragma unroll
        for (int i = 0; i < kCItems; ++i) {
          if (RowRep(i) != i) continue;
          float v = mx[i];
#pragma unroll
          for (int j = i + 1; j < kCItems; ++j) {
            if (RowRep(j) == i) v = fmaxf(v, mx[j]);
          }
          v = RowMaxLanes(v);
          const float m_new = fmaxf(m[sp][i], v);
          // m_new stays -inf only while the row has seen no visible key.
          corr[i] = m_new == -INFINITY ? 1.0f : exp2f(m[sp][i] - m_new);
          mx[i] = m_new;
        }
        // m and l live in the row's representative item only.
#pragma unroll
        for (int i = 0; i < kCItems; ++i) {
          if (RowRep(i) == i) {
            m[sp][i] = mx[i];
            l[sp][i] *= corr[i];
          }
        }
#pragma unroll
        for (int i = 0; i < kCItems; ++i) {
          const float m_new = mx[RowRep(i)], c = corr[RowRep(i)];
          float sum = 0.0f;
#pragma unroll
          for (int nt = 0; nt < 2; ++nt) {
            const float sv = s[sp][nt].x[i];
            const float p = sv == -INFINITY ? 0.0f : exp2f(sv - m_new);
            s[sp][nt].x[i] = p;
            sum += p;
          }
          l[sp][RowRep(i)] += sum;  // this lane's part; lanes add up at the end
#pragma unroll
          for (int dt = 0; dt < kDimTiles; ++dt) o[sp][dt].x[i] *= c;
        }
#if defined(RF_GPU_CUDA)
        // C items 2r, 2r+1 of a 16-key tile are A register r of the same keys.
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
          for (int r = 0; r < 4; ++r) {
            const __half2 h = __floats2half2_rn(s[sp][nt].x[2 * r], s[sp][nt].x[2 * r + 1]);
            memcpy(&pf[sp][nt].x[r], &h, 4);
          }
        }
#else
        __half* pw = p_s[wave][sp];
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
          for (int i = 0; i < kCItems; ++i) {
            const mma_layout::Coord rc = CLayout::C(lane, i);
            pw[rc.row * kPLd + 16 * nt + rc.col] = __float2half(s[sp][nt].x[i]);
          }
        }
        WaveSync();
        mma::LoadA(pf[sp][0], pw, kPLd);
        mma::LoadA(pf[sp][1], pw + 16, kPLd);
#endif
      }

      AsyncWait<1>();  // this pass's V is in (the next K may still be in flight)
      __syncthreads();
      // O += P V over this wave's 32 keys.
#pragma unroll
      for (int dt = 0; dt < kDimTiles; ++dt) {
#pragma unroll
        for (int ks = 0; ks < 2; ++ks) {
          mma::FragB vf;
          LoadBKxN(vf, v_s + (kg * kGroupKeys + 16 * ks) * kLd + 16 * dt, kLd);
#pragma unroll
          for (int sp = 0; sp < kStripsPerWave; ++sp) mma::Mma(o[sp][dt], pf[sp][ks], vf);
        }
      }
      __syncthreads();  // every wave is done with v_s
      if (more) {
        load_pass(v_s, vb, base + kKeys);
      } else {
        AsyncCommit();
      }
    }
    AsyncWaitAll();
    __syncthreads();  // k_s / v_s become the combine buffers

    // Row sums over the row's lanes (the lane's items are already in).
#pragma unroll
    for (int sp = 0; sp < kStripsPerWave; ++sp) {
#pragma unroll
      for (int i = 0; i < kCItems; ++i) {
        if (RowRep(i) == i) l[sp][i] = RowSumLanes(l[sp][i]);
      }
    }

    // Key group 1 hands its state to key group 0, which merges and writes.
    if (kg == 1) {
#pragma unroll
      for (int sp = 0; sp < kStripsPerWave; ++sp) {
#pragma unroll
        for (int i = 0; i < kCItems; ++i) {
          const mma_layout::Coord rc = CLayout::C(lane, i);
          const int r = (strip0 + sp) * 16 + rc.row;
          if (rc.col == 0) {
            m_x[r] = m[sp][RowRep(i)];
            l_x[r] = l[sp][RowRep(i)];
          }
#pragma unroll
          for (int dt = 0; dt < kDimTiles; ++dt) o_x[r * kHeadDim + 16 * dt + rc.col] = o[sp][dt].x[i];
        }
      }
    }
    __syncthreads();
    if (kg == 0) {
#pragma unroll
      for (int sp = 0; sp < kStripsPerWave; ++sp) {
#pragma unroll
        for (int i = 0; i < kCItems; ++i) {
          const mma_layout::Coord rc = CLayout::C(lane, i);
          const int r = (strip0 + sp) * 16 + rc.row;
          if (s_ctx[r] == 0) continue;
          const float m0 = m[sp][RowRep(i)], m1 = m_x[r];
          const float mm = fmaxf(m0, m1);
          const float c0 = m0 == -INFINITY ? 0.0f : exp2f(m0 - mm);
          const float c1 = m1 == -INFINITY ? 0.0f : exp2f(m1 - mm);
          const float lsum = l[sp][RowRep(i)] * c0 + l_x[r] * c1;
          const int t = t0 + r / kGroup;
          const int64_t out_idx = static_cast<int64_t>(t) * n_heads + h0 + r % kGroup;
          if (partials == nullptr) {
            float* dst = out + out_idx * kHeadDim;
            const float inv = lsum > 0.0f ? 1.0f / lsum : 0.0f;
#pragma unroll
            for (int dt = 0; dt < kDimTiles; ++dt) {
              const int d = 16 * dt + rc.col;
              dst[d] = (o[sp][dt].x[i] * c0 + o_x[r * kHeadDim + d] * c1) * inv;
            }
          } else {
            float* pr = PartialAt(partials, out_idx * n_splits + split, kHeadDim);
            if (rc.col == 0) {
              pr[0] = mm == -INFINITY ? -INFINITY : mm * kLn2;  // natural-log units
              pr[1] = lsum;
            }
#pragma unroll
            for (int dt = 0; dt < kDimTiles; ++dt) {
              const int d = 16 * dt + rc.col;
              pr[2 + d] = o[sp][dt].x[i] * c0 + o_x[r * kHeadDim + d] * c1;
            }
          }
        }
      }
    }
    run = run_end;
  }
}

template <int kHeadDim, int kGroup>
void Launch(dim3 grid, const float* q, float* out, const AttnBatch& b, int n_heads,
            int n_kv_heads, float scale, const __half* kc, const __half* vc, int block_size,
            float* partials, hipStream_t s) {
  PrefillTileMmaKernel<kHeadDim, kGroup><<<grid, kThreads, 0, s>>>(
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

}  // namespace

void LaunchPrefillTileMma(dim3 grid, int per_block, const float* q, float* out,
                          const AttnBatch& b, int n_heads, int n_kv_heads, int head_dim,
                          float scale, const __half* k_cache, const __half* v_cache,
                          int block_size, float* partials, hipStream_t s) {
  if (head_dim == 64) {
    LaunchForHeadDim<64>(per_block, grid, q, out, b, n_heads, n_kv_heads, scale, k_cache, v_cache,
                         block_size, partials, s);
  } else {
    LaunchForHeadDim<128>(per_block, grid, q, out, b, n_heads, n_kv_heads, scale, k_cache,
                          v_cache, block_size, partials, s);
  }
}

}  // namespace rocmforge::gpu::attn
