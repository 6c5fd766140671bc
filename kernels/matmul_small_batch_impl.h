// The batch-1 / small-batch matrix x vector kernels and their host-side
// launchers, shared by the translation units that instantiate them: one per
// group of weight types (matmul_small_batch_*.hip, so the build compiles them
// side by side) and kernels/matmul_small_batch.hip (the public entry points of
// kernels/gpu_api.h, the type dispatch, the mixed-type Q/K/V kernel). Internal to
// kernels/: nothing outside includes it.
//
// Matrix x vector / small batch (n <= kSmallBatchMax activation rows):
// y[j][r] = sum_k x[j][k] * W[r][k]. Memory-bound on the weights, so each
// weight byte is read once for all n rows. Quantized weights meet int8
// activations (ActQ8) through Dot4I8; F16/F32/BF16 weights use float math.
// 64 threads per weight row (at batch 1 32..256 and 1, 2 or 4 rows per group
// of threads, chosen per type: BatchOneTpr / BatchOneRpt); each thread walks
// 32-element slices of its rows, or 64-element pairs (Q4_K/Q5_K), or
// 128-element quads (Q2_K/Q3_K). v7
// (session 4): per-type and per-shape automatic shapes (V7Pick; MatVecConfig
// threads_per_row -2 = the v6 ones), float weights with several 16-byte weight
// loads per thread in flight (MatVecFLoadsKernel), and an experimental Q4_0
// kernel on whole 144-byte runs (MatVecQ4_0RunsKernel, off: slower). Launched
// with programmatic dependent launch (launch_util.h): every kernel here waits
// for the previous kernel before it reads activations or writes y, and may
// only prefetch its weights into L2 before that. With MatVecConfig::stream = 1
// (off by default) batch-1 quantized launches go to the bulk-copy kernel of
// kernels/matvec_stream.hip first, where it applies (sm_90).
//
// Measured and dropped (session 11, H100 80GB HBM3, 2026-11-26 ~22:00 UTC, a
// helper's two calls, A/B in one call): Q4_K / Q6_K with each warp owning
// whole rows (shuffle-only reductions, no block barrier), several rows a warp
// in sequence or a persistent grid, the next step's loads issued before the
// current step's math from two alternating buffers, the first weights loaded
// before the PDL wait. Slower at every shape, TB/s old / warp rows (PDL on):
// gate + up 2.39 / 2.35, down Q4_K 2.23 / 1.87-2.18, down Q6_K 2.05 / 1.59-1.81,
// Q/K/V Q4_K 1.75 / 1.66-1.68, O 1.67 / 1.59-1.60; tg128 Q4_K_M 345.6-354.6 vs
// 303.5-316.2 tok/s. The many short blocks at full occupancy keep more loads
// in flight than one warp a row can; more units a lane cost registers and
// occupancy and lost too.
#ifndef ROCMFORGE_KERNELS_MATMUL_SMALL_BATCH_IMPL_H_
#define ROCMFORGE_KERNELS_MATMUL_SMALL_BATCH_IMPL_H_

#include <cstdlib>
#include <iterator>
#include <type_traits>

#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/matvec_rope_kv_epilogue.h"
#include "kernels/matvec_stream.h"
#include "kernels/quant_device.h"

namespace rocmforge::gpu::small_batch {

// The batch-1 settings (SetMatVecConfig), defined in matmul_small_batch.hip.
extern MatVecConfig g_config;

// kTpr threads per weight row (64; the kernels take any multiple of the wave
// up to 256); at batch 1 each group of kTpr threads may own kRpt consecutive
// rows (the activation slice is then loaded once for kRpt weight slices: the
// activation reads, not the weights, used to be most of the L1 traffic).
// Blocks are 256 threads.
constexpr int kThreads = 256;

template <int kTpr>
constexpr int RowsPerBlock() { return kThreads / kTpr; }
// Rows a block computes: tpr threads a row group, rpt rows a group.
constexpr int BlockRowsOf(int tpr, int rpt) { return kThreads / tpr * rpt; }
template <int kTpr, int kRpt>
constexpr int BlockRows() { return BlockRowsOf(kTpr, kRpt); }

// Sums acc[i][0..N) over the kTpr threads of each row group; thread q < kRpt*N
// of the group writes y[q % N][r0 + q / N]. With the epilogue (N == 1, role
// != kPlain) thread p of the block sums the block's rows 2p and 2p + 1 instead
// (same additions in the same order) and finishes both (EpiPair).
template <int kTpr, int kRpt, int N>
__device__ __forceinline__ void ReduceRows(float (&acc)[kRpt][N], int64_t r0, int64_t rows,
                                           float* y, const RopeKvEpi* epi = nullptr,
                                           int role = kPlain, int64_t block_r0 = 0) {
  __shared__ float part[RowsPerBlock<kTpr>()][kTpr / 32][kRpt * N];
  const int rr = threadIdx.x / kTpr, tr = threadIdx.x % kTpr;
  const int lane = threadIdx.x % kWaveSize, wave_in_row = tr / kWaveSize;
#pragma unroll
  for (int i = 0; i < kRpt; ++i) {
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const float v = WaveSum(acc[i][j]);
      if (lane == 0) part[rr][wave_in_row][i * N + j] = v;
    }
  }
  __syncthreads();
  if constexpr (N == 1 && BlockRows<kTpr, kRpt>() % 2 == 0) {
    if (role != kPlain) {
      constexpr int kPairs = BlockRows<kTpr, kRpt>() / 2;
      const int p = threadIdx.x;
      const int64_t r = block_r0 + 2 * p;
      if (p < kPairs && r < rows) {  // rows is even: r + 1 < rows
        const int l0 = 2 * p, l1 = 2 * p + 1;
        float v0 = 0.0f, v1 = 0.0f;
#pragma unroll
        for (int w = 0; w < kTpr / kWaveSize; ++w) v0 += part[l0 / kRpt][w][l0 % kRpt];
#pragma unroll
        for (int w = 0; w < kTpr / kWaveSize; ++w) v1 += part[l1 / kRpt][w][l1 % kRpt];
        EpiPair(*epi, role, r, v0, v1, y);
      }
      return;
    }
  }
  if (tr < kRpt * N && r0 + tr / N < rows) {
    float v = 0.0f;
#pragma unroll
    for (int w = 0; w < kTpr / kWaveSize; ++w) v += part[rr][w][tr];
    if (N == 1 && epi != nullptr) {
      StorePlainRow(*epi, r0 + tr, v, y);  // with the residual add where asked
    } else {
      y[(tr % N) * rows + r0 + tr / N] = v;
    }
  }
}

// The end of a quantized body: ReduceRows with the launch's epilogue
// (RoPE + KV store roles, residual add) when kEpi, else the plain stores.
// A compile-time choice: the epilogue's code raised the register count of
// every instantiation (Q4_K pairs 64 x 1 40 -> 48, Q4_0 4 rows 58 -> 76:
// a block fewer an SM) although only the Q/K/V and add-to launches use it.
template <int kTpr, int kRpt, int N, bool kEpi>
__device__ __forceinline__ void FinishRows(float (&acc)[kRpt][N], int64_t r0, int64_t rows, float* y,
                                           const RopeKvEpi& epi, int part_index, int64_t block_r0) {
  if constexpr (kEpi) {
    ReduceRows<kTpr, kRpt, N>(acc, r0, rows, y, &epi, EpiRoleOf(epi, part_index), block_r0);
  } else {
    ReduceRows<kTpr, kRpt, N>(acc, r0, rows, y);
  }
}
// Whether a launch needs the epilogue instantiation.
inline bool EpiUsed(const RopeKvEpi& e) { return e.on || e.add_to != nullptr; }

// Before the dependency wait (see GridDependencyWait): asks L2 for the first
// `prefetch` bytes of each of the block's rows, weights that no kernel writes,
// so the loads of a kernel launched early overlap the previous kernel's tail.
__device__ __forceinline__ void PrefetchRows(const uint8_t* w, int64_t row0, int n_rows,
                                             int64_t rows, int64_t row_bytes, int prefetch) {
  if (prefetch <= 0) return;
  const int64_t per_row = (prefetch < row_bytes ? prefetch : row_bytes);
  const int lines = static_cast<int>((per_row + 127) / 128);
  for (int l = threadIdx.x; l < n_rows * lines; l += blockDim.x) {
    const int64_t r = row0 + l / lines;
    if (r < rows) PrefetchL2(w + r * row_bytes + static_cast<int64_t>(l % lines) * 128);
  }
}

// Up to kMaxMatVecParts weights of one type and width that read the same
// quantized activations (Q, K, V; gate, up) in one launch: blocks [0, end[0])
// compute part 0, [end[0], end[1]) part 1, ... One launch instead of three
// saves the launch gaps and fills the device with the short K/V matrices.
struct Parts {
  const uint8_t* w[kMaxMatVecParts];
  float* y[kMaxMatVecParts];
  int64_t rows[kMaxMatVecParts];
  unsigned end[kMaxMatVecParts];
};

// The part of block b and the block's index within it (select chains, not
// run-time indexing of the parameter arrays).
struct Part {
  const uint8_t* w;
  float* y;
  int64_t rows;
  unsigned block;
  int index;
};
// The table of n_parts parts (n_parts <= kMaxMatVecParts), part k taking
// block_rows(k) rows a block: unused slots repeat the last part with no
// blocks. Returns the grid (all parts' blocks).
template <typename BlockRowsOf>
unsigned FillParts(const MatVecPart* ps, int n_parts, BlockRowsOf block_rows, Parts* parts) {
  unsigned blocks = 0;
  for (int i = 0; i < kMaxMatVecParts; ++i) {
    const int k = i < n_parts ? i : n_parts - 1;
    parts->w[i] = static_cast<const uint8_t*>(ps[k].w);
    parts->y[i] = ps[k].y;
    parts->rows[i] = ps[k].rows;
    if (i < n_parts) blocks += Blocks(ps[k].rows, block_rows(k));
    parts->end[i] = blocks;
  }
  return blocks;
}

__device__ __forceinline__ Part PickPart(const Parts& a, unsigned b) {
  static_assert(kMaxMatVecParts == 3);
  if (b < a.end[0]) return {a.w[0], a.y[0], a.rows[0], b, 0};
  if (b < a.end[1]) return {a.w[1], a.y[1], a.rows[1], b - a.end[0], 1};
  return {a.w[2], a.y[2], a.rows[2], b - a.end[1], 2};
}
// (Measured and dropped, session 25, H200: at batch 1 the block first copying
// the activation blocks into shared memory with contiguous loads, the bodies
// reading them from there instead of as 16-byte pieces 80 bytes apart through
// L1: correct, but 466 against 491 tok/s a Q4_K_M token, -5%: the copy and its
// barrier sit before every block's first weight load.)

// The rows of `part` this block owns (part.block), one slice per thread per
// step: the body of MatVecQKernel and of the mixed-type group kernel.
template <GgmlType T, int N, int kTpr, int kRpt, bool kEpi>
__device__ __forceinline__ void MatVecQBody(const Part& part, int64_t cols, int64_t row_bytes,
                                            const ActQ8* __restrict__ xq, int prefetch, const RopeKvEpi& epi) {
  const uint8_t* __restrict__ w = part.w;
  float* __restrict__ y = part.y;
  const int64_t rows = part.rows;
  const int rr = threadIdx.x / kTpr, tr = threadIdx.x % kTpr;
  const int64_t block_r0 = static_cast<int64_t>(part.block) * BlockRows<kTpr, kRpt>();
  PrefetchRows(w, block_r0, BlockRows<kTpr, kRpt>(), rows, row_bytes, prefetch);
  GridDependencyBegin();
  const int64_t r0 = block_r0 + rr * kRpt;
  const int64_t slices = cols / 32;
  float acc[kRpt][N];
#pragma unroll
  for (int i = 0; i < kRpt; ++i) {
#pragma unroll
    for (int j = 0; j < N; ++j) acc[i][j] = 0.0f;
  }
  if (r0 + kRpt <= rows) {
    const uint8_t* row = w + r0 * row_bytes;
    constexpr int kUnroll = kRpt > 1 ? 2 : 4;
#pragma unroll kUnroll
    for (int64_t u = tr; u < slices; u += kTpr) {
#pragma unroll
      for (int j = 0; j < N; ++j) {
        const ActQ8& a = xq[j * slices + u];
#pragma unroll
        for (int i = 0; i < kRpt; ++i) acc[i][j] += DotSlice<T>(row + i * row_bytes, u, a);
      }
    }
  } else if (r0 < rows) {  // the last rows of the matrix: fewer than kRpt
    for (int i = 0; i < kRpt; ++i) {
      if (r0 + i >= rows) break;
      const uint8_t* row = w + (r0 + i) * row_bytes;
      for (int64_t u = tr; u < slices; u += kTpr) {
#pragma unroll
        for (int j = 0; j < N; ++j) acc[i][j] += DotSlice<T>(row, u, xq[j * slices + u]);
      }
    }
  }
  FinishRows<kTpr, kRpt, N, kEpi>(acc, r0, rows, y, epi, part.index, block_r0);
}
template <GgmlType T, int N, int kTpr, int kRpt, bool kEpi>
__global__ void __launch_bounds__(kThreads) MatVecQKernel(const Parts parts, int64_t cols,
                                                          int64_t row_bytes,
                                                          const ActQ8* __restrict__ xq,
                                                          int prefetch,
                                                          const RopeKvEpi epi) {
  MatVecQBody<T, N, kTpr, kRpt, kEpi>(PickPart(parts, blockIdx.x), cols, row_bytes, xq, prefetch, epi);
}

// Q4_K / Q5_K with one thread per pair of slices (DotPairK: the 32 quant
// bytes, scales and high bits are loaded once for 64 values), Q2_K / Q3_K
// with one thread per quad (DotQuadK: a half-block's 32 quant bytes, its
// hmask and scales once for 128 values). kUnit = UnitSlices<T>().
template <GgmlType T, int N, int kTpr, int kRpt, bool kEpi>
__device__ __forceinline__ void MatVecQUnitBody(const Part& part, int64_t cols, int64_t row_bytes,
                                                const ActQ8* __restrict__ xq, int prefetch,
                                                const RopeKvEpi& epi) {
  constexpr int kUnit = UnitSlices<T>();
  static_assert(kUnit > 1);
  const uint8_t* __restrict__ w = part.w;
  float* __restrict__ y = part.y;
  const int64_t rows = part.rows;
  const int rr = threadIdx.x / kTpr, tr = threadIdx.x % kTpr;
  const int64_t block_r0 = static_cast<int64_t>(part.block) * BlockRows<kTpr, kRpt>();
  PrefetchRows(w, block_r0, BlockRows<kTpr, kRpt>(), rows, row_bytes, prefetch);
  GridDependencyBegin();
  const int64_t r0 = block_r0 + rr * kRpt;
  const int64_t slices = cols / 32, units = cols / (32 * kUnit);
  float acc[kRpt][N];
#pragma unroll
  for (int i = 0; i < kRpt; ++i) {
#pragma unroll
    for (int j = 0; j < N; ++j) acc[i][j] = 0.0f;
  }
  if (r0 + kRpt <= rows) {
    const uint8_t* row = w + r0 * row_bytes;
    // Unrolling the several-row shapes by 2 as well (two steps' loads in flight)
    // cost 5% of a Q4_K_M token on an H200 (session 25: 465 against 490 tok/s).
    constexpr int kUnroll = kRpt > 1 || kUnit > 2 ? 1 : 2;
#pragma unroll kUnroll
    for (int64_t p = tr; p < units; p += kTpr) {
#pragma unroll
      for (int j = 0; j < N; ++j) {
#pragma unroll
        for (int i = 0; i < kRpt; ++i) {
          acc[i][j] += DotUnit<T>(row + i * row_bytes, p, xq + j * slices);
        }
      }
    }
  } else if (r0 < rows) {
    for (int i = 0; i < kRpt; ++i) {
      if (r0 + i >= rows) break;
      const uint8_t* row = w + (r0 + i) * row_bytes;
      for (int64_t p = tr; p < units; p += kTpr) {
#pragma unroll
        for (int j = 0; j < N; ++j) acc[i][j] += DotUnit<T>(row, p, xq + j * slices);
      }
    }
  }
  FinishRows<kTpr, kRpt, N, kEpi>(acc, r0, rows, y, epi, part.index, block_r0);
}
template <GgmlType T, int N, int kTpr, int kRpt, bool kEpi>
__global__ void __launch_bounds__(kThreads) MatVecQUnitKernel(const Parts parts, int64_t cols,
                                                              int64_t row_bytes,
                                                              const ActQ8* __restrict__ xq,
                                                              int prefetch,
                                                              const RopeKvEpi epi) {
  MatVecQUnitBody<T, N, kTpr, kRpt, kEpi>(PickPart(parts, blockIdx.x), cols, row_bytes, xq, prefetch, epi);
}

#if defined(RF_GPU_CUDA)
// Q6_K pairs at batch 1, a warp a row group (kTpr 32, kRpt <= 2), with each
// warp's weights staged through its own shared memory. Q6_K's 210-byte blocks
// are only 2-byte aligned, so a lane reading its pair in place issues ~18
// word loads whose warp-wide addresses spread over ~13 L1 lines each: on an
// H200 that body is bound by the SMs at ~2.86 TB/s (64% of a plain read,
// bench/gpu/probe_matvec_bound.hip, 2026-11-28). Eight blocks (32 pairs, one a
// lane) are 1680 bytes = 105 16-byte vectors, so a warp pass over a row is 4
// coalesced 16-byte asynchronous copies a lane (cp.async) into the warp's
// buffer, then each lane reads its pair there (DotUnit<Q6_K, true>: its word
// loads stay shared-memory loads). One row a warp keeps kQ6KStages passes
// in flight (the copies need no registers); two rows a warp, one. Same pairs,
// same order as MatVecQUnitBody<Q6_K, 1, 32, kRpt>: bit-identical rows. Probe
// at steady state (one pass in flight, two rows): 131072 x 4096 2.86 -> 4.17
// TB/s (95% of a read), 4096 x 14336 2.21 -> 2.90.
constexpr int kQ6KPassBlocks = 8;
constexpr int kQ6KPassBytes = kQ6KPassBlocks * 210;
constexpr int kQ6KPassVecs = kQ6KPassBytes / 16;  // 105
static_assert(kQ6KPassBytes % 16 == 0);
template <int kRpt>
constexpr int Q6KStages() { return kRpt == 1 ? 3 : 1; }  // 40 / 27 KB of shared memory a block

// Staging is on and a row is whole passes (so every pass of every row starts
// 16-byte aligned when the weight does). The launcher also needs the weights
// aligned (Q6KStagedApplies); the automatic shape (V7Pick) asks only this.
inline bool Q6KStagedWidth(int64_t cols) {
  return g_config.q6k_staged != 0 && cols % (kQ6KPassBlocks * 256) == 0;
}

template <int kRpt, bool kEpi>
__device__ __forceinline__ void MatVecQ6KStagedBody(const Part& part, int64_t cols, int64_t row_bytes,
                                                    const ActQ8* __restrict__ xq, int prefetch,
                                                    const RopeKvEpi& epi) {
  static_assert(kRpt == 1 || kRpt == 2);
  constexpr int kStages = Q6KStages<kRpt>();
  __shared__ __align__(16) uint8_t stage[kThreads / 32][kStages][kRpt][kQ6KPassBytes];
  const uint8_t* __restrict__ w = part.w;
  const int64_t rows = part.rows;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t block_r0 = static_cast<int64_t>(part.block) * BlockRows<32, kRpt>();
  PrefetchRows(w, block_r0, BlockRows<32, kRpt>(), rows, row_bytes, prefetch);
  GridDependencyBegin();
  const int64_t r0 = block_r0 + warp * kRpt;
  const int64_t left = rows - r0;
  const int own = left <= 0 ? 0 : left < kRpt ? static_cast<int>(left) : kRpt;  // rows this warp owns
  const int64_t passes = own > 0 ? cols / (kQ6KPassBlocks * 256) : 0;
  // Pass c of the warp's rows into buffer c % kStages, as one commit group
  // (empty past the last pass, so every iteration commits exactly one).
  auto issue = [&](int64_t c) {
    if (c < passes) {
#pragma unroll
      for (int i = 0; i < kRpt; ++i) {
        if (i >= own) break;
        const uint4* src = reinterpret_cast<const uint4*>(w + (r0 + i) * row_bytes + c * kQ6KPassBytes);
        uint4* dst = reinterpret_cast<uint4*>(stage[warp][c % kStages][i]);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          if (lane + 32 * k < kQ6KPassVecs) AsyncCopy16(dst + lane + 32 * k, src + lane + 32 * k);
        }
      }
    }
    AsyncCommit();
  };
  float acc[kRpt][1];
#pragma unroll
  for (int i = 0; i < kRpt; ++i) acc[i][0] = 0.0f;
  if (passes > 0) {
#pragma unroll
    for (int c = 0; c < kStages - 1; ++c) issue(c);
    for (int64_t c = 0; c < passes; ++c) {
      __syncwarp();  // every lane is done reading the buffer the next copies refill
      issue(c + kStages - 1);
      AsyncWait<kStages - 1>();  // this lane's copies of pass c have landed
      __syncwarp();              // and every other lane's
#pragma unroll
      for (int i = 0; i < kRpt; ++i) {
        if (i < own) {
          acc[i][0] += DotUnit<GgmlType::Q6_K, true>(stage[warp][c % kStages][i], lane,
                                                      xq + c * (kQ6KPassBlocks * 8));
        }
      }
    }
  }
  FinishRows<32, kRpt, 1, kEpi>(acc, r0, rows, part.y, epi, part.index, block_r0);
}
template <int kRpt, bool kEpi>
__global__ void __launch_bounds__(kThreads) MatVecQ6KStagedKernel(const Parts parts, int64_t cols,
                                                                  int64_t row_bytes,
                                                                  const ActQ8* __restrict__ xq,
                                                                  int prefetch, const RopeKvEpi epi) {
  MatVecQ6KStagedBody<kRpt, kEpi>(PickPart(parts, blockIdx.x), cols, row_bytes, xq, prefetch, epi);
}
#endif  // RF_GPU_CUDA

// Batch 1, parts of two K-quant types reading the same quantized x in one
// launch (Q4_K_M: Q and K in Q4_K pairs, V in Q6_K): blocks below a_blocks run
// type A's pairs body at A's shape, the others type B's slice body at B's, so
// every row is summed exactly as in its own type's group launch. One launch
// instead of two, and with the RoPE + KV store epilogue none for the RoPE.
template <GgmlType TA, int kTprA, int kRptA, GgmlType TB, int kTprB, int kRptB>
__global__ void __launch_bounds__(kThreads) MatVecMixedKernel(const Parts parts, unsigned a_blocks, int64_t cols,
                                                              int64_t row_bytes_a, int64_t row_bytes_b,
                                                              const ActQ8* __restrict__ xq, int prefetch_a,
                                                              int prefetch_b, const RopeKvEpi epi) {
  const Part part = PickPart(parts, blockIdx.x);
  if (blockIdx.x < a_blocks) {
    MatVecQUnitBody<TA, 1, kTprA, kRptA, true>(part, cols, row_bytes_a, xq, prefetch_a, epi);
  } else {
    MatVecQBody<TB, 1, kTprB, kRptB, true>(part, cols, row_bytes_b, xq, prefetch_b, epi);
  }
}

// 16 weight bytes that are read once: on NVIDIA through the non-coherent path
// without allocating in L1, which then keeps the activations every row of the
// block re-reads (the weights would evict them).
__device__ __forceinline__ uint4 LoadStream16(const void* p) {
#if defined(RF_GPU_CUDA)
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
#else
  return *static_cast<const uint4*>(p);
#endif
}

// 8 consecutive weights as floats; F32 and F16 rows are 16-byte aligned
// (cols % 8 == 0, checked at LoadWeight), so they load as 16-byte vectors.
template <GgmlType T>
__device__ __forceinline__ void LoadWeights8(const uint8_t* row, int64_t e0, float* out) {
  if constexpr (T == GgmlType::F32) {
    const uint4* p = reinterpret_cast<const uint4*>(row) + e0 / 4;
    const uint4 a = LoadStream16(p), b = LoadStream16(p + 1);
    out[0] = __uint_as_float(a.x); out[1] = __uint_as_float(a.y);
    out[2] = __uint_as_float(a.z); out[3] = __uint_as_float(a.w);
    out[4] = __uint_as_float(b.x); out[5] = __uint_as_float(b.y);
    out[6] = __uint_as_float(b.z); out[7] = __uint_as_float(b.w);
  } else if constexpr (T == GgmlType::F16) {
    const uint4 v = LoadStream16(reinterpret_cast<const uint4*>(row) + e0 / 8);
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[2 * i] = HalfBitsToFloat(static_cast<uint16_t>(w[i] & 0xffffu));
      out[2 * i + 1] = HalfBitsToFloat(static_cast<uint16_t>(w[i] >> 16));
    }
  } else {
    Dequant8<T>(row, e0, out);
  }
}

// Float weights: each thread reads 8 consecutive weights of each of its kRpt
// rows per step, and the 8 activations once for them.
template <GgmlType T, int N, int kTpr, int kRpt>
__global__ void __launch_bounds__(kThreads) MatVecFKernel(const uint8_t* __restrict__ w,
                                                          int64_t rows, int64_t cols,
                                                          int64_t row_bytes,
                                                          const float* __restrict__ x,
                                                          float* __restrict__ y, int prefetch) {
  const int rr = threadIdx.x / kTpr, tr = threadIdx.x % kTpr;
  const int64_t block_r0 = static_cast<int64_t>(blockIdx.x) * BlockRows<kTpr, kRpt>();
  PrefetchRows(w, block_r0, BlockRows<kTpr, kRpt>(), rows, row_bytes, prefetch);
  GridDependencyBegin();
  const int64_t r0 = block_r0 + rr * kRpt;
  float acc[kRpt][N];
#pragma unroll
  for (int i = 0; i < kRpt; ++i) {
#pragma unroll
    for (int j = 0; j < N; ++j) acc[i][j] = 0.0f;
  }
  if (r0 < rows) {
    // Rows past the matrix (the last group only) re-read its last row and are
    // not written.
    const uint8_t* row[kRpt];
#pragma unroll
    for (int i = 0; i < kRpt; ++i) row[i] = w + (r0 + i < rows ? r0 + i : rows - 1) * row_bytes;
    constexpr int kUnroll = kRpt > 1 ? 2 : 4;
#pragma unroll kUnroll
    for (int64_t e0 = tr * 8; e0 < cols; e0 += kTpr * 8) {
      float wv[kRpt][8];
#pragma unroll
      for (int i = 0; i < kRpt; ++i) LoadWeights8<T>(row[i], e0, wv[i]);
#pragma unroll
      for (int j = 0; j < N; ++j) {
        const float4* xp = reinterpret_cast<const float4*>(x + j * cols + e0);
        const float4 a = xp[0], b = xp[1];
#pragma unroll
        for (int i = 0; i < kRpt; ++i) {
          acc[i][j] += wv[i][0] * a.x + wv[i][1] * a.y + wv[i][2] * a.z + wv[i][3] * a.w +
                       wv[i][4] * b.x + wv[i][5] * b.y + wv[i][6] * b.z + wv[i][7] * b.w;
        }
      }
    }
  }
  ReduceRows<kTpr, kRpt, N>(acc, r0, rows, y);
}

// 16 weight bytes read once, as LoadStream16 but without `volatile`, so the
// compiler may move the loads ahead of unrelated math (weights are constant).
__device__ __forceinline__ uint4 LoadStream16Free(const void* p) {
#if defined(RF_GPU_CUDA)
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
#else
  return *static_cast<const uint4*>(p);
#endif
}

// 8 consecutive float-type weights as raw bits: one 16-byte word (F16, BF16)
// or two (F32). Rows are 16-byte aligned (cols % 8 == 0, see LoadWeights8).
template <GgmlType T>
struct Raw8 {
  uint4 v[T == GgmlType::F32 ? 2 : 1];
};
template <GgmlType T>
__device__ __forceinline__ Raw8<T> LoadRaw8(const uint8_t* row, int64_t e0) {
  Raw8<T> r;
  const uint4* p = reinterpret_cast<const uint4*>(row + e0 * (T == GgmlType::F32 ? 4 : 2));
  r.v[0] = LoadStream16Free(p);
  if constexpr (T == GgmlType::F32) r.v[1] = LoadStream16Free(p + 1);
  return r;
}
template <GgmlType T>
__device__ __forceinline__ void Unpack8(const Raw8<T>& r, float* out) {
  if constexpr (T == GgmlType::F32) {
    out[0] = __uint_as_float(r.v[0].x); out[1] = __uint_as_float(r.v[0].y);
    out[2] = __uint_as_float(r.v[0].z); out[3] = __uint_as_float(r.v[0].w);
    out[4] = __uint_as_float(r.v[1].x); out[5] = __uint_as_float(r.v[1].y);
    out[6] = __uint_as_float(r.v[1].z); out[7] = __uint_as_float(r.v[1].w);
  } else {
    const uint32_t w[4] = {r.v[0].x, r.v[0].y, r.v[0].z, r.v[0].w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if constexpr (T == GgmlType::F16) {
        out[2 * i] = HalfBitsToFloat(static_cast<uint16_t>(w[i] & 0xffffu));
        out[2 * i + 1] = HalfBitsToFloat(static_cast<uint16_t>(w[i] >> 16));
      } else {  // BF16: the high half of an f32
        out[2 * i] = __uint_as_float(w[i] << 16);
        out[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
      }
    }
  }
}

// Float weights at batch 1, v7: as MatVecFKernel, but each thread first issues
// kU 16-byte weight loads (the next kU 8-value chunks of each of its kRpt rows,
// kTpr * 8 values apart) and only then reads activations and does the math,
// so kU * kRpt loads per thread are in flight before the first use. Each
// thread sums its chunks in the same order as MatVecFKernel.
template <GgmlType T, int kTpr, int kRpt, int kU>
__global__ void __launch_bounds__(kThreads) MatVecFLoadsKernel(const uint8_t* __restrict__ w,
                                                               int64_t rows, int64_t cols,
                                                               int64_t row_bytes,
                                                               const float* __restrict__ x,
                                                               float* __restrict__ y,
                                                               int prefetch) {
  const int rr = threadIdx.x / kTpr, tr = threadIdx.x % kTpr;
  const int64_t block_r0 = static_cast<int64_t>(blockIdx.x) * BlockRows<kTpr, kRpt>();
  PrefetchRows(w, block_r0, BlockRows<kTpr, kRpt>(), rows, row_bytes, prefetch);
  GridDependencyBegin();
  const int64_t r0 = block_r0 + rr * kRpt;
  float acc[kRpt][1];
#pragma unroll
  for (int i = 0; i < kRpt; ++i) acc[i][0] = 0.0f;
  if (r0 < rows) {
    const uint8_t* row[kRpt];
#pragma unroll
    for (int i = 0; i < kRpt; ++i) row[i] = w + (r0 + i < rows ? r0 + i : rows - 1) * row_bytes;
    constexpr int64_t kStep = kTpr * 8;
    auto dot8 = [&](const Raw8<T>& raw, const float4& a, const float4& b) {
      float wv[8];
      Unpack8<T>(raw, wv);
      return wv[0] * a.x + wv[1] * a.y + wv[2] * a.z + wv[3] * a.w + wv[4] * b.x + wv[5] * b.y +
             wv[6] * b.z + wv[7] * b.w;
    };
    // Chunks past the row's end (the last step only) are not loaded and add
    // nothing: the sum is the same sequence of additions as MatVecFKernel's.
    for (int64_t e0 = tr * 8; e0 < cols; e0 += kU * kStep) {
      Raw8<T> raw[kU][kRpt];
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        if (u == 0 || e0 + u * kStep < cols) {
#pragma unroll
          for (int i = 0; i < kRpt; ++i) raw[u][i] = LoadRaw8<T>(row[i], e0 + u * kStep);
        }
      }
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        if (u > 0 && e0 + u * kStep >= cols) break;
        const float4* xp = reinterpret_cast<const float4*>(x + e0 + u * kStep);
        const float4 a = xp[0], b = xp[1];
#pragma unroll
        for (int i = 0; i < kRpt; ++i) acc[i][0] += dot8(raw[u][i], a, b);
      }
    }
  }
  ReduceRows<kTpr, kRpt, 1>(acc, r0, rows, y);
}

// The 32-bit word at byte offset `o` (even) of a run held as words.
template <int kWords>
__device__ __forceinline__ uint32_t RunWord(const uint32_t (&w)[kWords], int o) {
  const int i = o / 4;
  if (o % 4 == 0) return w[i];
  return static_cast<uint32_t>(((static_cast<uint64_t>(w[i + 1]) << 32) | w[i]) >> 16);
}
template <int kWords>
__device__ __forceinline__ uint16_t RunHalf(const uint32_t (&w)[kWords], int o) {
  return static_cast<uint16_t>(o % 4 == 0 ? (w[o / 4] & 0xffffu) : (w[o / 4] >> 16));
}

// Q4_0 at batch 1, v7 ("runs"): with cols % 256 == 0 a row is a sequence of
// 144-byte runs of 8 blocks, each 16-byte aligned. One thread per run and
// row: nine 16-byte loads, the 8 blocks decoded from registers (nibbles ->
// Dot4I8 against the int8 activations, the -8 offset through the activation
// block's sum s, as DotSlice<Q4_0>); the run's 8 activation blocks (320 bytes,
// 16-byte aligned) come as 20 16-byte loads shared by the kRpt rows.
template <int kTpr, int kRpt>
__global__ void __launch_bounds__(kThreads) MatVecQ4_0RunsKernel(const Parts parts, int64_t cols,
                                                                 int64_t row_bytes,
                                                                 const ActQ8* __restrict__ xq,
                                                                 int prefetch) {
  const Part part = PickPart(parts, blockIdx.x);
  const uint8_t* __restrict__ w = part.w;
  float* __restrict__ y = part.y;
  const int64_t rows = part.rows;
  const int rr = threadIdx.x / kTpr, tr = threadIdx.x % kTpr;
  const int64_t block_r0 = static_cast<int64_t>(part.block) * BlockRows<kTpr, kRpt>();
  PrefetchRows(w, block_r0, BlockRows<kTpr, kRpt>(), rows, row_bytes, prefetch);
  GridDependencyBegin();
  const int64_t r0 = block_r0 + rr * kRpt;
  const int64_t runs = cols / 256;
  float acc[kRpt][1];
#pragma unroll
  for (int i = 0; i < kRpt; ++i) acc[i][0] = 0.0f;
  if (r0 < rows) {
    const uint8_t* row[kRpt];  // rows past the matrix re-read its last row, unwritten
#pragma unroll
    for (int i = 0; i < kRpt; ++i) row[i] = w + (r0 + i < rows ? r0 + i : rows - 1) * row_bytes;
    for (int64_t u = tr; u < runs; u += kTpr) {
      uint32_t q[kRpt][36];
#pragma unroll
      for (int i = 0; i < kRpt; ++i) {
        const uint4* p = reinterpret_cast<const uint4*>(row[i] + u * 144);
#pragma unroll
        for (int c = 0; c < 9; ++c) {
          const uint4 v = LoadStream16Free(p + c);
          q[i][4 * c] = v.x; q[i][4 * c + 1] = v.y; q[i][4 * c + 2] = v.z; q[i][4 * c + 3] = v.w;
        }
      }
      const uint4* ap = reinterpret_cast<const uint4*>(xq + u * 8);
#pragma unroll
      for (int bp = 0; bp < 4; ++bp) {  // blocks 2bp, 2bp + 1: 80 activation bytes
        uint32_t a[20];
#pragma unroll
        for (int c = 0; c < 5; ++c) {
          const uint4 v = ap[bp * 5 + c];
          a[4 * c] = v.x; a[4 * c + 1] = v.y; a[4 * c + 2] = v.z; a[4 * c + 3] = v.w;
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int b = 2 * bp + h;
          const float ad = __uint_as_float(a[10 * h]), as = __uint_as_float(a[10 * h + 1]);
#pragma unroll
          for (int i = 0; i < kRpt; ++i) {
            int dot = 0;
#pragma unroll
            for (int k = 0; k < 4; ++k) {
              const int v = static_cast<int>(RunWord(q[i], 18 * b + 2 + 4 * k));
              dot = Dot4I8(v & 0x0F0F0F0F, static_cast<int>(a[10 * h + 2 + k]), dot);
              dot = Dot4I8((v >> 4) & 0x0F0F0F0F, static_cast<int>(a[10 * h + 6 + k]), dot);
            }
            const float d = HalfBitsToFloat(RunHalf(q[i], 18 * b));
            acc[i][0] += d * (ad * static_cast<float>(dot) - 8.0f * as);
          }
        }
      }
    }
  }
  ReduceRows<kTpr, kRpt, 1>(acc, r0, rows, y);
}


// L2 prefetch per weight row for PDL launches (0 when the launch is ordinary:
// nothing runs ahead of the wait then). Auto: 1024 bytes for Q8_0 only (H100
// tg128, docs/gpu.md "Batch-1 decode v6": Q8_0 model 271 -> 276 tok/s; the
// Q4_K_M model lost 0.8% with it, and more with larger amounts).
template <GgmlType T>
int PrefetchBytes() {
  if (!PdlActive()) return 0;
  if (g_config.prefetch_bytes >= 0) return g_config.prefetch_bytes;
  return T == GgmlType::Q8_0 ? 1024 : 0;
}

// threads_per_row -1 (v5) and -2 (v6) select the automatic shapes of those
// versions, which have neither of the v7 kernels below.
inline bool OldShapes() { return g_config.threads_per_row == -1 || g_config.threads_per_row == -2; }

// The v7 automatic batch-1 shape of a weight type at rows x cols (rows = all
// rows of a group launch): threads per row, rows per thread, and loads per
// thread (float types) or the Q4_0 runs kernel (1 / 0). False: no v7 choice
// (v6 shapes, v6 kernels). NVIDIA only (measured on the H100, see below).
//
// H100 sweep (`bench_gpu_kernels matvec`, 2026-11-26 04:00 UTC; TB/s kernel
// alone, PDL off / on, v6 -> v7): F16 4096x4096 2.35 / 2.55 -> 2.51 / 2.72,
// 14336x4096 2.83 / 2.91 -> 2.96 / 3.04, 4096x14336 2.81 / 2.89 -> 2.90 / 2.98;
// F32 2.67 / 2.80 -> 2.78 / 2.90, 3.00 / 3.03 -> 3.06 / 3.11, 2.88 / 2.92 ->
// 3.00 / 3.03; Q4_0 4096x4096 1.34 / 1.57 -> 1.37 / 1.77, 14336x4096 2.12 /
// 2.39 -> 2.28 / 2.60, 4096x14336 2.12 / 2.14 -> 2.16 / 2.43, Q+K+V 1.64 / 1.96
// -> 1.67 / 2.10, gate+up 2.47 / 2.63 -> 2.61 / 2.82; Q4_K 4096x4096 1.29 /
// 1.58 -> 1.32 / 1.75, 4096x14336 2.06 / 1.94 -> 2.10 / 2.35 (its other shapes
// and Q6_K, Q8_0 kept v6: nothing in the sweep beat it by more than the noise);
// Q5_K 64 x 2 everywhere (4096x4096 1.27 -> 1.37, gate+up 2.06 / 2.22 ->
// 2.35 / 2.49). The Q4_0 runs kernel lost everywhere (1.0-1.5 TB/s: its
// 144-byte-strided 16-byte loads are uncoalesced), so it stays off.
struct V7Choice {
  int tpr, rpt, extra;
  bool pairs = true;  // Q4_K / Q5_K: one thread per pair of slices (Q2_K / Q3_K: per quad)
};
// The MatVecConfig::ShapeClass of a batch-1 launch of rows x cols (rows =
// all rows of a group launch), -1 for none.
template <GgmlType T>
int ShapeClassOf(int64_t rows, int64_t cols) {
  if constexpr (T == GgmlType::Q4_K) {
    if (cols >= 8192) return MatVecConfig::kQ4KLongRows;
    return rows <= 4096 ? MatVecConfig::kQ4KOutProj : rows < 8192 ? MatVecConfig::kQ4KQkv : MatVecConfig::kQ4KGateUp;
  }
  if constexpr (T == GgmlType::Q6_K) {
    if (cols >= 8192) return MatVecConfig::kQ6KLongRows;
    if (rows >= 8192) return MatVecConfig::kQ6KManyRows;
  }
  if constexpr (T == GgmlType::Q8_0) {
    if (cols >= 8192) return MatVecConfig::kQ80LongRows;
    return rows <= 4096 ? MatVecConfig::kQ80OutProj
           : rows < 8192 ? MatVecConfig::kQ80Qkv
           : rows < 65536 ? MatVecConfig::kQ80GateUp
                          : MatVecConfig::kQ80Head;
  }
  return -1;
}
template <GgmlType T>
bool V7Pick(int64_t rows, int64_t cols, V7Choice* c) {
#if defined(RF_GPU_CUDA)
  if (const int k = ShapeClassOf<T>(rows, cols); k >= 0 && g_config.shape[k].tpr > 0) {
    const MatVecConfig::Shape& o = g_config.shape[k];
    *c = V7Choice{o.tpr, o.rpt, 0, o.pairs};
    return true;
  }
  const bool long_rows = cols >= 8192;
  if constexpr (T == GgmlType::F16 || T == GgmlType::BF16) {
    *c = long_rows ? V7Choice{256, 2, 2} : V7Choice{256, 1, 2};
    return true;
  }
  if constexpr (T == GgmlType::F32) {
    *c = V7Choice{256, 2, 2};
    return true;
  }
  if constexpr (T == GgmlType::Q4_0) {
    *c = long_rows ? V7Choice{256, 4, 0} : V7Choice{128, 4, 0};
    return true;
  }
  if constexpr (T == GgmlType::Q4_K) {
    switch (ShapeClassOf<T>(rows, cols)) {
      case MatVecConfig::kQ4KLongRows:
        *c = V7Choice{128, 4, 0};
        return true;
      // Q/K/V groups (Llama-3-8B: 5120 rows Q + K beside a Q6_K V, 6144 Q + K + V)
      // 32 x 2 pairs, gate/up (28672 rows) 32 x 4 pairs: more pairs a thread in
      // flight and fewer blocks. Measured inside a decode step, where the launch
      // follows the one-block RMSNorm (H100, 2026-11-27 16:27-16:37 UTC, tg128
      // Q4_K_M, ms a token, 3-4 repeats each): Q/K/V 64 x 1 (before) 2.451-2.482,
      // 32 x 2 2.384-2.401, 64 x 2 2.399-2.450, 32 x 1 2.421-2.439, 32 x 4
      // 2.439-2.455; then gate/up 64 x 1 (before) 2.378-2.390, 32 x 4 2.316-2.324,
      // 64 x 4 2.325-2.332, 32 x 2 2.38-2.43, 128 x 4 slices 2.405. The
      // kernel-alone sweep (back-to-back copies of one launch, each overlapping
      // the tail of the one before) had not told these apart.
      case MatVecConfig::kQ4KQkv:
        *c = V7Choice{32, 2, 0};
        return true;
      case MatVecConfig::kQ4KGateUp:
        *c = V7Choice{32, 4, 0};
        return true;
      case MatVecConfig::kQ4KOutProj:
        if (rows < 2048) return false;  // measured at 4096 rows (the attention output)
        *c = V7Choice{128, 4, 0, false};
        return true;
      default:
        return false;
    }
  }
  if constexpr (T == GgmlType::Q5_K) {
    *c = V7Choice{64, 2, 0};
    return true;
  }
  // Q6_K: pairs (DotPairQ6K) on long rows, one warp a row (224 pairs a 14336
  // row: 7 a lane), 2 rows; elsewhere the slice kernel at v6's 128 x 2, which
  // the pairs did not beat. H100 sweep 2026-11-27 05:48 UTC, 4096x14336, us
  // PDL off / TB/s PDL on: 25.06 / 2.07 -> 23.67 / 2.21 (64 x 2 pairs 26.86,
  // uneven lanes); 14336x4096, Q+K+V, gate+up, 4096x4096: slices as good or
  // better.
  // Where the staged body applies (rows of whole 2048-value passes), long rows
  // (down) and many rows (the output head) take it at one row a warp, three
  // passes in flight (MatVecQ6KStagedBody). Inside a decode step (H200,
  // 2026-11-28 13:04 UTC, tg128 Q4_K_M, q6k_staged 1 / 0 alternating, tok/s):
  // 497.5 / 499.0 / 498.8 against 489.6 / 490.9 / 490.3 (+1.7%). The sweep
  // before it (12:39) split the gain about evenly between down and head, and
  // found two rows a warp (one pass in flight) no faster than in place.
  if constexpr (T == GgmlType::Q6_K) {
    if (Q6KStagedWidth(cols) && (long_rows || rows >= 8192)) {
      *c = V7Choice{32, 1, 0, true};
      return true;
    }
    *c = long_rows ? V7Choice{32, 2, 0, true} : V7Choice{128, 2, 0, false};
    return true;
  }
  // Q8_0 Q/K/V groups: 128 x 4 (v6's 128 x 2 elsewhere). Inside a decode step
  // (H100, 2026-11-27 17:24 UTC, tg128 Q8_0, ms a token, three repeats):
  // 128 x 2 3.377-3.381, 128 x 4 3.339-3.342, 64 x 2 3.351-3.357; no other
  // class gained (gate/up 64 x 2 / 128 x 4 / 32 x 4 3.41 / 3.39 / 3.62, down
  // 64 x 2 / 128 x 4 3.46 / 3.54, attention output and head within noise).
  if constexpr (T == GgmlType::Q8_0) {
    if (ShapeClassOf<T>(rows, cols) == MatVecConfig::kQ80Qkv) {
      *c = V7Choice{128, 4, 0};
      return true;
    }
  }
  // Q2_K / Q3_K quads, 4 rows a group (the activations, 4x the weight bytes
  // at these widths, then load once for 4 rows): H100 sweep 2026-11-27 05:46
  // UTC, TB/s PDL on, auto (32 x 1 quads) -> this: Q2_K 4096x14336 1.23 ->
  // 1.59, gate+up 1.39 -> 2.08; Q3_K 1.03 -> 1.57, gate+up 1.41 -> 1.76.
  if constexpr (UnitSlices<T>() == 4) {
    *c = V7Choice{long_rows ? 64 : 32, 4, 0};
    return true;
  }
#endif
  (void)rows;
  (void)cols;
  (void)c;
  return false;
}

// Q4_K / Q5_K / Q6_K pairs (Q2_K / Q3_K quads) kernel at batch 1: off when
// MatVecConfig::pairs is off, else the v7 choice under the automatic shape;
// Q6_K pairs otherwise only for a shape asked for (a sweep): unmeasured.
template <GgmlType T>
bool UsePairs(int64_t rows, int64_t cols) {
  if (!g_config.pairs) return false;
  V7Choice c;
  const bool auto_shape = g_config.threads_per_row == 0 && g_config.rows_per_thread == 0;
  if (auto_shape && V7Pick<T>(rows, cols, &c)) return c.pairs;
  return T != GgmlType::Q6_K || !auto_shape;
}

// 16-byte weight loads per thread and row in flight for float weights at
// batch 1 (MatVecFLoadsKernel when > 1). Auto (0): the v7 choice, else 1 (the
// v6 loop).
template <GgmlType T>
int BatchOneLoads(int64_t rows, int64_t cols) {
  if (OldShapes()) return 1;
  if (g_config.loads_per_thread > 0) return g_config.loads_per_thread;
  V7Choice c;
  return V7Pick<T>(rows, cols, &c) ? c.extra : 1;
}

// Q4_0 at batch 1 through MatVecQ4_0RunsKernel (where its alignment holds).
// Auto (0): the v7 choice, else off.
inline bool Q4_0Runs(int64_t rows, int64_t cols) {
  if (OldShapes() || g_config.q4_0_runs < 0) return false;
  if (g_config.q4_0_runs > 0) return true;
  V7Choice c;
  return V7Pick<GgmlType::Q4_0>(rows, cols, &c) && c.extra == 1;
}

inline bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

#if defined(RF_GPU_CUDA)
// Whether MatVecQ6KStagedBody can take these parts.
inline bool Q6KStagedApplies(const MatVecPart* ps, int n_parts, int64_t cols) {
  if (!Q6KStagedWidth(cols)) return false;
  for (int i = 0; i < n_parts; ++i) {
    if (!Aligned16(ps[i].w)) return false;
  }
  return true;
}
#endif

// Quantized weights: one launch over the parts.
template <GgmlType T, int N, int kTpr, int kRpt>
void LaunchPartsTpr(const MatVecPart* ps, int n_parts, int64_t cols, const void* xq, Stream s,
                    const RopeKvEpi& epi = RopeKvEpi{}) {
  const int64_t row_bytes = cols / BlockElems(T) * BlockBytes(T);
  Parts parts{};
  const unsigned blocks = FillParts(ps, n_parts, [](int) { return BlockRows<kTpr, kRpt>(); }, &parts);
  if (blocks == 0) return;
  const auto* x8 = static_cast<const ActQ8*>(xq);
  const int pf = PrefetchBytes<T>();
  int64_t all_rows = 0;
  for (int i = 0; i < n_parts; ++i) all_rows += ps[i].rows;
  if constexpr (T == GgmlType::Q4_0 && N == 1 && kRpt <= 2) {
    bool runs = Q4_0Runs(all_rows, cols) && cols % 256 == 0 && Aligned16(xq);
    for (int i = 0; i < n_parts; ++i) runs = runs && Aligned16(ps[i].w);
    if (runs && !EpiUsed(epi)) {
      LaunchKernel(MatVecQ4_0RunsKernel<kTpr, kRpt>, blocks, kThreads, 0, s, parts, cols, row_bytes,
                   x8, pf);
      return;
    }
  }
  if constexpr (UnitSlices<T>() > 1) {
    // Batches of 2-8: pairs / quads under MatVecConfig::pairs, except Q6_K
    // (its pairs were measured at batch 1 only).
    if (N == 1 ? UsePairs<T>(all_rows, cols) : g_config.pairs && T != GgmlType::Q6_K) {
#if defined(RF_GPU_CUDA)
      if constexpr (T == GgmlType::Q6_K && N == 1 && kTpr == 32 && kRpt <= 2) {
        if (Q6KStagedApplies(ps, n_parts, cols)) {
          auto* kernel = EpiUsed(epi) ? MatVecQ6KStagedKernel<kRpt, true> : MatVecQ6KStagedKernel<kRpt, false>;
          LaunchKernel(kernel, blocks, kThreads, 0, s, parts, cols, row_bytes, x8, pf, epi);
          return;
        }
      }
#endif
      if constexpr (N == 1) {  // the epilogues are batch-1 only
        if (EpiUsed(epi)) {
          LaunchKernel(MatVecQUnitKernel<T, 1, kTpr, kRpt, true>, blocks, kThreads, 0, s, parts, cols, row_bytes,
                       x8, pf, epi);
          return;
        }
      }
      LaunchKernel(MatVecQUnitKernel<T, N, kTpr, kRpt, false>, blocks, kThreads, 0, s, parts, cols, row_bytes, x8,
                   pf, epi);
      return;
    }
  }
  if constexpr (N == 1) {
    if (EpiUsed(epi)) {
      LaunchKernel(MatVecQKernel<T, 1, kTpr, kRpt, true>, blocks, kThreads, 0, s, parts, cols, row_bytes, x8, pf,
                   epi);
      return;
    }
  }
  LaunchKernel(MatVecQKernel<T, N, kTpr, kRpt, false>, blocks, kThreads, 0, s, parts, cols, row_bytes, x8, pf, epi);
}

template <GgmlType T, int N, int kTpr, int kRpt>
void LaunchTpr(const void* w, int64_t rows, int64_t cols, const float* x, const void* xq, float* y,
               Stream s) {
  if constexpr (T == GgmlType::F32 || T == GgmlType::F16 || T == GgmlType::BF16) {
    const int64_t row_bytes = cols / BlockElems(T) * BlockBytes(T);
    const unsigned grid = Blocks(rows, BlockRows<kTpr, kRpt>());
    if constexpr (N == 1) {
      const int loads = BatchOneLoads<T>(rows, cols);
      if (loads == 2 || loads == 4) {
        auto* kernel = loads == 2 ? MatVecFLoadsKernel<T, kTpr, kRpt, 2> : MatVecFLoadsKernel<T, kTpr, kRpt, 4>;
        LaunchKernel(kernel, grid, kThreads, 0, s, static_cast<const uint8_t*>(w), rows, cols,
                     row_bytes, x, y, PrefetchBytes<T>());
        return;
      }
    }
    LaunchKernel(MatVecFKernel<T, N, kTpr, kRpt>, grid, kThreads, 0, s,
                 static_cast<const uint8_t*>(w), rows, cols, row_bytes, x, y, PrefetchBytes<T>());
  } else {
    const MatVecPart part{w, y, rows};
    LaunchPartsTpr<T, N, kTpr, kRpt>(&part, 1, cols, xq, s);
  }
}

// Threads per row for batch 1 (see LaunchN). Auto, NVIDIA (H100 sweep at the
// Llama-3-8B shapes 4096x4096, 14336x4096, 4096x14336, docs/gpu.md "Batch-1
// decode v6"): 128 for Q6_K (1.48 / 2.15 / 1.94 TB/s with 2 rows per thread vs
// 1.34 / 1.95 / 1.92 at 64 x 1), Q8_0 (1.95 / 2.65 / 2.51 vs 1.89 / 2.58 / 2.47)
// and the float types (F16 2.37 / 2.85 / 2.82 with 2 rows vs 2.30 / 2.77 /
// 2.73); 64 x 2 rows for Q4_0 (1.37 / 2.14 / 2.15 vs 1.37 / 2.04 / 2.00 at the
// old 32 / 64 x 1); Q4_K / Q5_K pairs keep 32 for rows >= 8192, else 64.
// threads_per_row -1: the choice before that sweep (v5), for comparisons.
//
// v7 (threads_per_row 0 with rows_per_thread 0): a per-type and per-shape
// choice (V7Shape, rows = all rows of a group launch); where it has none, v6.
// threads_per_row -2 is v6 throughout.
template <GgmlType T>
bool V7Shape(int64_t rows, int64_t cols, int* tpr, int* rpt) {
  V7Choice c;
  if (!V7Pick<T>(rows, cols, &c)) return false;
  *tpr = c.tpr;
  *rpt = c.rpt;
  return true;
}
template <GgmlType T>
int BatchOneTpr(int64_t rows, int64_t cols) {
#if defined(RF_GPU_CUDA)
  const int t = g_config.threads_per_row;
  int v7_tpr = 0, v7_rpt = 0;
  if (t == 0 && V7Shape<T>(rows, cols, &v7_tpr, &v7_rpt)) return v7_tpr;
  if (t <= 0) {
    constexpr bool kLongRowsPrefer32 = T == GgmlType::Q4_K || T == GgmlType::Q5_K || T == GgmlType::Q4_0;
    const int v5 = kLongRowsPrefer32 && cols >= 8192 && (g_config.pairs || T == GgmlType::Q4_0) ? 32 : 64;
    if (t == -1) return v5;
    if constexpr (T == GgmlType::Q6_K || T == GgmlType::Q8_0 || T == GgmlType::F16 ||
                  T == GgmlType::BF16 || T == GgmlType::F32) {
      return 128;
    }
    if constexpr (T == GgmlType::Q4_0) return 64;
    return v5;
  }
  return t;
#else
  (void)rows;
  (void)cols;
  return g_config.threads_per_row == 128 || g_config.threads_per_row == 256 ? g_config.threads_per_row
                                                                            : 64;
#endif
}

// Rows per thread group for batch 1: 1, 2 or 4 (0 = auto: 2 for Q6_K, Q4_0 and
// the float types on NVIDIA, from the sweep above; 1 elsewhere and for v5).
template <GgmlType T>
int BatchOneRpt(int64_t rows, int64_t cols) {
  const int r = g_config.rows_per_thread;
  if (r == 0) {
#if defined(RF_GPU_CUDA)
    int v7_tpr = 0, v7_rpt = 0;
    if (g_config.threads_per_row == 0 && V7Shape<T>(rows, cols, &v7_tpr, &v7_rpt)) return v7_rpt;
    if (g_config.threads_per_row == -1) return 1;
    if constexpr (T == GgmlType::Q6_K || T == GgmlType::Q4_0 || T == GgmlType::F16 ||
                  T == GgmlType::BF16 || T == GgmlType::F32) {
      return 2;
    }
#else
    (void)rows;
    (void)cols;
#endif
    return 1;
  }
  return r == 2 || r == 4 ? r : 1;
}

// Batch 1: every (threads per row, rows per thread) shape; larger batches 64 x 1.
template <GgmlType T, int kTpr>
void LaunchRpt(int rpt, const void* w, int64_t rows, int64_t cols, const float* x, const void* xq,
               float* y, Stream s) {
  if (rpt == 4) return LaunchTpr<T, 1, kTpr, 4>(w, rows, cols, x, xq, y, s);
  if (rpt == 2) return LaunchTpr<T, 1, kTpr, 2>(w, rows, cols, x, xq, y, s);
  return LaunchTpr<T, 1, kTpr, 1>(w, rows, cols, x, xq, y, s);
}

template <GgmlType T, int N>
void LaunchN(const void* w, int64_t rows, int64_t cols, const float* x, const void* xq, float* y,
             Stream s) {
  // 64 threads per row measured best on the H100 for most shapes (bench/RESULTS.md);
  // 128 lowered Q4_K/Q5_K at m=4096 and tg128. Other widths than 64 are compiled
  // for batch 1 only.
  // Auto (0): long rows of Q4_K/Q5_K (pairs) and Q4_0 go faster with one warp
  // per row (H100 sweep at 4096x14336: 2.12 vs 1.93 TB/s Q4_K, 2.01 vs 1.87
  // Q4_0); shorter rows and the other types keep 64. A row must not share a
  // wave with another, so 32 is NVIDIA only (AMD waves are 64 wide).
  if constexpr (N == 1) {
    if constexpr (T != GgmlType::F32 && T != GgmlType::F16 && T != GgmlType::BF16) {
      const MatVecPart part{w, y, rows};
      if (LaunchMatVecStream(T, &part, 1, cols, xq, RopeKvEpi{}, g_config, s)) return;
    }
    const int tpr = BatchOneTpr<T>(rows, cols), rpt = BatchOneRpt<T>(rows, cols);
#if defined(RF_GPU_CUDA)
    if (tpr == 32) return LaunchRpt<T, 32>(rpt, w, rows, cols, x, xq, y, s);
#endif
    if (tpr == 128) return LaunchRpt<T, 128>(rpt, w, rows, cols, x, xq, y, s);
    if (tpr == 256) return LaunchRpt<T, 256>(rpt, w, rows, cols, x, xq, y, s);
    return LaunchRpt<T, 64>(rpt, w, rows, cols, x, xq, y, s);
  }
  return LaunchTpr<T, N, 64, 1>(w, rows, cols, x, xq, y, s);
}

// x for float weights, xq (quantized) for the others.
template <GgmlType T>
void LaunchType(const void* w, int64_t rows, int64_t cols, const float* x, const void* xq,
                float* y, int n, Stream s) {
  switch (n) {
    case 1: return LaunchN<T, 1>(w, rows, cols, x, xq, y, s);
    case 2: return LaunchN<T, 2>(w, rows, cols, x, xq, y, s);
    case 3: return LaunchN<T, 3>(w, rows, cols, x, xq, y, s);
    case 4: return LaunchN<T, 4>(w, rows, cols, x, xq, y, s);
    case 5: return LaunchN<T, 5>(w, rows, cols, x, xq, y, s);
    case 6: return LaunchN<T, 6>(w, rows, cols, x, xq, y, s);
    case 7: return LaunchN<T, 7>(w, rows, cols, x, xq, y, s);
    default: return LaunchN<T, 8>(w, rows, cols, x, xq, y, s);
  }
}

template <GgmlType T, int kTpr>
void LaunchGroupRpt(int rpt, const MatVecPart* parts, int n_parts, int64_t cols, const void* xq,
                    Stream s, const RopeKvEpi& epi) {
  if (rpt == 4) return LaunchPartsTpr<T, 1, kTpr, 4>(parts, n_parts, cols, xq, s, epi);
  if (rpt == 2) return LaunchPartsTpr<T, 1, kTpr, 2>(parts, n_parts, cols, xq, s, epi);
  return LaunchPartsTpr<T, 1, kTpr, 1>(parts, n_parts, cols, xq, s, epi);
}
template <GgmlType T>
void LaunchGroupType(const MatVecPart* parts, int n_parts, int64_t cols, const void* xq, Stream s,
                     const RopeKvEpi& epi = RopeKvEpi{}) {
  if (LaunchMatVecStream(T, parts, n_parts, cols, xq, epi, g_config, s)) return;
  int64_t rows = 0;
  for (int i = 0; i < n_parts; ++i) rows += parts[i].rows;
  const int tpr = BatchOneTpr<T>(rows, cols), rpt = BatchOneRpt<T>(rows, cols);
#if defined(RF_GPU_CUDA)
  if (tpr == 32) return LaunchGroupRpt<T, 32>(rpt, parts, n_parts, cols, xq, s, epi);
#endif
  if (tpr == 128) return LaunchGroupRpt<T, 128>(rpt, parts, n_parts, cols, xq, s, epi);
  if (tpr == 256) return LaunchGroupRpt<T, 256>(rpt, parts, n_parts, cols, xq, s, epi);
  return LaunchGroupRpt<T, 64>(rpt, parts, n_parts, cols, xq, s, epi);
}

// Each type's launchers (and so its kernels) are instantiated in exactly one
// translation unit, matmul_small_batch_*.hip; everywhere else they are extern.
#define RF_SMALL_BATCH_LAUNCHERS(T) \
  template void LaunchType<T>(const void*, int64_t, int64_t, const float*, const void*, float*, int, Stream);
#define RF_SMALL_BATCH_GROUP_LAUNCHERS(T) \
  template void LaunchGroupType<T>(const MatVecPart*, int, int64_t, const void*, Stream, const RopeKvEpi&);
#define RF_EXTERN_SMALL_BATCH(T) extern RF_SMALL_BATCH_LAUNCHERS(T)
#define RF_EXTERN_SMALL_BATCH_GROUP(T) extern RF_SMALL_BATCH_GROUP_LAUNCHERS(T)
#define RF_SMALL_BATCH_FOR_FLOAT_TYPES(M) M(GgmlType::F32) M(GgmlType::F16) M(GgmlType::BF16)
#define RF_SMALL_BATCH_FOR_QUANT_TYPES(M) \
  M(GgmlType::Q8_0) M(GgmlType::Q4_0) M(GgmlType::Q4_K) M(GgmlType::Q5_K) M(GgmlType::Q6_K) \
  M(GgmlType::Q2_K) M(GgmlType::Q3_K)
RF_SMALL_BATCH_FOR_FLOAT_TYPES(RF_EXTERN_SMALL_BATCH)
RF_SMALL_BATCH_FOR_QUANT_TYPES(RF_EXTERN_SMALL_BATCH)
RF_SMALL_BATCH_FOR_QUANT_TYPES(RF_EXTERN_SMALL_BATCH_GROUP)

}  // namespace rocmforge::gpu::small_batch

#endif  // ROCMFORGE_KERNELS_MATMUL_SMALL_BATCH_IMPL_H_
