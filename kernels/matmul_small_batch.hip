// Matrix x vector / small batch (n <= kSmallBatchMax activation rows):
// y[j][r] = sum_k x[j][k] * W[r][k]. Memory-bound on the weights, so each
// weight byte is read once for all n rows. Quantized weights meet int8
// activations (ActQ8) through Dot4I8; F16/F32/BF16 weights use float math.
// 64 threads per weight row (at batch 1 32..256 and 1, 2 or 4 rows per group
// of threads, chosen per type: BatchOneTpr / BatchOneRpt); each thread walks
// 32-element slices of its rows, or 64-element pairs (Q4_K/Q5_K). Launched
// with programmatic dependent launch (launch_util.h): every kernel here waits
// for the previous kernel before it reads activations or writes y, and may
// only prefetch its weights into L2 before that.
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/quant_device.h"

namespace rocmforge::gpu {
namespace {

// kTpr threads per weight row (64; the kernels take any multiple of the wave
// up to 256); at batch 1 each group of kTpr threads may own kRpt consecutive
// rows (the activation slice is then loaded once for kRpt weight slices: the
// activation reads, not the weights, used to be most of the L1 traffic).
// Blocks are 256 threads.
constexpr int kThreads = 256;

template <int kTpr>
constexpr int RowsPerBlock() { return kThreads / kTpr; }
template <int kTpr, int kRpt>
constexpr int BlockRows() { return kThreads / kTpr * kRpt; }

// Sums acc[i][0..N) over the kTpr threads of each row group; thread q < kRpt*N
// of the group writes y[q % N][r0 + q / N].
template <int kTpr, int kRpt, int N>
__device__ __forceinline__ void ReduceRows(float (&acc)[kRpt][N], int64_t r0, int64_t rows,
                                           float* y) {
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
  if (tr < kRpt * N && r0 + tr / N < rows) {
    float v = 0.0f;
#pragma unroll
    for (int w = 0; w < kTpr / kWaveSize; ++w) v += part[rr][w][tr];
    y[(tr % N) * rows + r0 + tr / N] = v;
  }
}

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
};
__device__ __forceinline__ Part PickPart(const Parts& a, unsigned b) {
  static_assert(kMaxMatVecParts == 3);
  if (b < a.end[0]) return {a.w[0], a.y[0], a.rows[0], b};
  if (b < a.end[1]) return {a.w[1], a.y[1], a.rows[1], b - a.end[0]};
  return {a.w[2], a.y[2], a.rows[2], b - a.end[1]};
}

template <GgmlType T, int N, int kTpr, int kRpt>
__global__ void __launch_bounds__(kThreads) MatVecQKernel(const Parts parts, int64_t cols,
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
  ReduceRows<kTpr, kRpt, N>(acc, r0, rows, y);
}

// Q4_K / Q5_K with one thread per pair of slices (DotPairK): the 32 quant
// bytes, scales and high bits are loaded once for 64 values.
template <GgmlType T, int N, int kTpr, int kRpt>
__global__ void __launch_bounds__(kThreads) MatVecQPairKernel(const Parts parts, int64_t cols,
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
  const int64_t slices = cols / 32, pairs = cols / 64;
  float acc[kRpt][N];
#pragma unroll
  for (int i = 0; i < kRpt; ++i) {
#pragma unroll
    for (int j = 0; j < N; ++j) acc[i][j] = 0.0f;
  }
  if (r0 + kRpt <= rows) {
    const uint8_t* row = w + r0 * row_bytes;
    constexpr int kUnroll = kRpt > 1 ? 1 : 2;
#pragma unroll kUnroll
    for (int64_t p = tr; p < pairs; p += kTpr) {
#pragma unroll
      for (int j = 0; j < N; ++j) {
#pragma unroll
        for (int i = 0; i < kRpt; ++i) {
          acc[i][j] += DotPairK<T>(row + i * row_bytes, p, xq + j * slices + 2 * p);
        }
      }
    }
  } else if (r0 < rows) {
    for (int i = 0; i < kRpt; ++i) {
      if (r0 + i >= rows) break;
      const uint8_t* row = w + (r0 + i) * row_bytes;
      for (int64_t p = tr; p < pairs; p += kTpr) {
#pragma unroll
        for (int j = 0; j < N; ++j) acc[i][j] += DotPairK<T>(row, p, xq + j * slices + 2 * p);
      }
    }
  }
  ReduceRows<kTpr, kRpt, N>(acc, r0, rows, y);
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

// Default: pairs on, auto threads per row (best tg128 in the H100 sweep, docs/gpu.md).
MatVecConfig g_config;  // benchmarks may change it (SetMatVecConfig)

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

// Quantized weights: one launch over the parts.
template <GgmlType T, int N, int kTpr, int kRpt>
void LaunchPartsTpr(const MatVecPart* ps, int n_parts, int64_t cols, const void* xq, Stream s) {
  const int64_t row_bytes = cols / BlockElems(T) * BlockBytes(T);
  Parts parts{};
  unsigned blocks = 0;
  for (int i = 0; i < kMaxMatVecParts; ++i) {
    const int k = i < n_parts ? i : n_parts - 1;  // unused slots repeat the last part, with no blocks
    parts.w[i] = static_cast<const uint8_t*>(ps[k].w);
    parts.y[i] = ps[k].y;
    parts.rows[i] = ps[k].rows;
    if (i < n_parts) blocks += Blocks(ps[k].rows, BlockRows<kTpr, kRpt>());
    parts.end[i] = blocks;
  }
  if (blocks == 0) return;
  const auto* x8 = static_cast<const ActQ8*>(xq);
  const int pf = PrefetchBytes<T>();
  if constexpr (T == GgmlType::Q4_K || T == GgmlType::Q5_K) {
    if (g_config.pairs) {
      LaunchKernel(MatVecQPairKernel<T, N, kTpr, kRpt>, blocks, kThreads, 0, s, parts, cols,
                   row_bytes, x8, pf);
      return;
    }
  }
  LaunchKernel(MatVecQKernel<T, N, kTpr, kRpt>, blocks, kThreads, 0, s, parts, cols, row_bytes, x8,
               pf);
}

template <GgmlType T, int N, int kTpr, int kRpt>
void LaunchTpr(const void* w, int64_t rows, int64_t cols, const float* x, const void* xq, float* y,
               Stream s) {
  if constexpr (T == GgmlType::F32 || T == GgmlType::F16 || T == GgmlType::BF16) {
    const int64_t row_bytes = cols / BlockElems(T) * BlockBytes(T);
    const unsigned grid = Blocks(rows, BlockRows<kTpr, kRpt>());
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
template <GgmlType T>
int BatchOneTpr(int64_t cols) {
#if defined(RF_GPU_CUDA)
  const int t = g_config.threads_per_row;
  if (t <= 0) {
    constexpr bool kLongRowsPrefer32 = T == GgmlType::Q4_K || T == GgmlType::Q5_K || T == GgmlType::Q4_0;
    const int v5 = kLongRowsPrefer32 && cols >= 8192 && (g_config.pairs || T == GgmlType::Q4_0) ? 32 : 64;
    if (t < 0) return v5;
    if constexpr (T == GgmlType::Q6_K || T == GgmlType::Q8_0 || T == GgmlType::F16 ||
                  T == GgmlType::BF16 || T == GgmlType::F32) {
      return 128;
    }
    if constexpr (T == GgmlType::Q4_0) return 64;
    return v5;
  }
  return t;
#else
  (void)cols;
  return g_config.threads_per_row == 128 || g_config.threads_per_row == 256 ? g_config.threads_per_row
                                                                            : 64;
#endif
}

// Rows per thread group for batch 1: 1, 2 or 4 (0 = auto: 2 for Q6_K, Q4_0 and
// the float types on NVIDIA, from the sweep above; 1 elsewhere and for v5).
template <GgmlType T>
int BatchOneRpt(int64_t cols) {
  (void)cols;
  const int r = g_config.rows_per_thread;
  if (r == 0) {
#if defined(RF_GPU_CUDA)
    if (g_config.threads_per_row < 0) return 1;
    if constexpr (T == GgmlType::Q6_K || T == GgmlType::Q4_0 || T == GgmlType::F16 ||
                  T == GgmlType::BF16 || T == GgmlType::F32) {
      return 2;
    }
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
    const int tpr = BatchOneTpr<T>(cols), rpt = BatchOneRpt<T>(cols);
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

void LaunchAny(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x,
               const void* xq, float* y, int n, Stream s) {
  switch (type) {
    case GgmlType::F32: return LaunchType<GgmlType::F32>(w, rows, cols, x, xq, y, n, s);
    case GgmlType::F16: return LaunchType<GgmlType::F16>(w, rows, cols, x, xq, y, n, s);
    case GgmlType::BF16: return LaunchType<GgmlType::BF16>(w, rows, cols, x, xq, y, n, s);
    case GgmlType::Q8_0: return LaunchType<GgmlType::Q8_0>(w, rows, cols, x, xq, y, n, s);
    case GgmlType::Q4_0: return LaunchType<GgmlType::Q4_0>(w, rows, cols, x, xq, y, n, s);
    case GgmlType::Q4_K: return LaunchType<GgmlType::Q4_K>(w, rows, cols, x, xq, y, n, s);
    case GgmlType::Q5_K: return LaunchType<GgmlType::Q5_K>(w, rows, cols, x, xq, y, n, s);
    case GgmlType::Q6_K: return LaunchType<GgmlType::Q6_K>(w, rows, cols, x, xq, y, n, s);
    default: return;
  }
}

}  // namespace

void SetMatVecConfig(const MatVecConfig& c) {
  g_config = c;
  const int t = g_config.threads_per_row;
  if (t != 0 && t != -1 && t != 32 && t != 128 && t != 256) g_config.threads_per_row = 64;
  const int r = g_config.rows_per_thread;
  if (r != 0 && r != 2 && r != 4) g_config.rows_per_thread = 1;
}
MatVecConfig GetMatVecConfig() { return g_config; }

int ActivationRule(GgmlType type) {
  switch (type) {
    case GgmlType::Q8_0: case GgmlType::Q4_0: return 1;
    case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: return 2;
    default: return 0;
  }
}

namespace {
template <GgmlType T, int kTpr>
void LaunchGroupRpt(int rpt, const MatVecPart* parts, int n_parts, int64_t cols, const void* xq,
                    Stream s) {
  if (rpt == 4) return LaunchPartsTpr<T, 1, kTpr, 4>(parts, n_parts, cols, xq, s);
  if (rpt == 2) return LaunchPartsTpr<T, 1, kTpr, 2>(parts, n_parts, cols, xq, s);
  return LaunchPartsTpr<T, 1, kTpr, 1>(parts, n_parts, cols, xq, s);
}
template <GgmlType T>
void LaunchGroupType(const MatVecPart* parts, int n_parts, int64_t cols, const void* xq, Stream s) {
  const int tpr = BatchOneTpr<T>(cols), rpt = BatchOneRpt<T>(cols);
#if defined(RF_GPU_CUDA)
  if (tpr == 32) return LaunchGroupRpt<T, 32>(rpt, parts, n_parts, cols, xq, s);
#endif
  if (tpr == 128) return LaunchGroupRpt<T, 128>(rpt, parts, n_parts, cols, xq, s);
  if (tpr == 256) return LaunchGroupRpt<T, 256>(rpt, parts, n_parts, cols, xq, s);
  return LaunchGroupRpt<T, 64>(rpt, parts, n_parts, cols, xq, s);
}
}  // namespace

void LaunchMatVecQuantizedGroup(GgmlType type, int64_t cols, const void* xq, const MatVecPart* parts,
                                int n_parts, Stream s) {
  if (n_parts <= 0 || n_parts > kMaxMatVecParts) return;
  switch (type) {
    case GgmlType::Q8_0: return LaunchGroupType<GgmlType::Q8_0>(parts, n_parts, cols, xq, s);
    case GgmlType::Q4_0: return LaunchGroupType<GgmlType::Q4_0>(parts, n_parts, cols, xq, s);
    case GgmlType::Q4_K: return LaunchGroupType<GgmlType::Q4_K>(parts, n_parts, cols, xq, s);
    case GgmlType::Q5_K: return LaunchGroupType<GgmlType::Q5_K>(parts, n_parts, cols, xq, s);
    case GgmlType::Q6_K: return LaunchGroupType<GgmlType::Q6_K>(parts, n_parts, cols, xq, s);
    default: return;
  }
}

void LaunchMatMulSmallBatchQuantized(GgmlType type, const void* w, int64_t rows, int64_t cols,
                                     const void* xq, float* y, int n, Stream s) {
  if (n <= 0 || rows == 0) return;
  LaunchAny(type, w, rows, cols, nullptr, xq, y, n, s);
}

void LaunchMatMulSmallBatch(GgmlType type, const void* w, int64_t rows, int64_t cols,
                            const float* x, float* y, int n, void* scratch, Stream s) {
  // Larger batches run in chunks of kSmallBatchMax rows.
  for (int j0 = 0; j0 < n; j0 += kSmallBatchMax) {
    const int nj = n - j0 < kSmallBatchMax ? n - j0 : kSmallBatchMax;
    const float* xj = x + static_cast<int64_t>(j0) * cols;
    float* yj = y + static_cast<int64_t>(j0) * rows;
    if (ActivationRule(type) != 0) {
      LaunchQuantizeActivation(type, xj, static_cast<int64_t>(nj) * cols, scratch, s);
    }
    LaunchAny(type, w, rows, cols, xj, scratch, yj, nj, s);
  }
}

}  // namespace rocmforge::gpu
