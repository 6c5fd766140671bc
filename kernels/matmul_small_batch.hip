// Matrix x vector / small batch (n <= kSmallBatchMax activation rows):
// y[j][r] = sum_k x[j][k] * W[r][k]. Memory-bound on the weights, so each
// weight byte is read once for all n rows. Quantized weights meet int8
// activations (ActQ8) through Dot4I8; F16/F32/BF16 weights use float math.
// 64 threads per weight row (32 for long rows at batch 1, see LaunchN); each
// walks 32-element slices of the row, or 64-element pairs (Q4_K/Q5_K).
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/quant_device.h"

namespace rocmforge::gpu {
namespace {

// kTpr threads per weight row (64; the kernels take any multiple of the wave
// up to 256). Blocks are 256 threads.
constexpr int kThreads = 256;

template <int kTpr>
constexpr int RowsPerBlock() { return kThreads / kTpr; }

// Sums acc[0..N) over the kTpr threads of each row; thread j < N of the row
// writes y[j][r].
template <int kTpr, int N>
__device__ __forceinline__ void ReduceRow(float (&acc)[N], int64_t r, int64_t rows, float* y) {
  __shared__ float part[RowsPerBlock<kTpr>()][kTpr / 32][N];
  const int rr = threadIdx.x / kTpr, tr = threadIdx.x % kTpr;
  const int lane = threadIdx.x % kWaveSize, wave_in_row = tr / kWaveSize;
#pragma unroll
  for (int j = 0; j < N; ++j) {
    const float v = WaveSum(acc[j]);
    if (lane == 0) part[rr][wave_in_row][j] = v;
  }
  __syncthreads();
  if (tr < N && r < rows) {
    float v = 0.0f;
#pragma unroll
    for (int w = 0; w < kTpr / kWaveSize; ++w) v += part[rr][w][tr];
    y[tr * rows + r] = v;
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

template <GgmlType T, int N, int kTpr>
__global__ void __launch_bounds__(kThreads) MatVecQKernel(const Parts parts, int64_t cols,
                                                          int64_t row_bytes,
                                                          const ActQ8* __restrict__ xq) {
  const Part part = PickPart(parts, blockIdx.x);
  const uint8_t* __restrict__ w = part.w;
  float* __restrict__ y = part.y;
  const int64_t rows = part.rows;
  const int rr = threadIdx.x / kTpr, tr = threadIdx.x % kTpr;
  const int64_t r = static_cast<int64_t>(part.block) * RowsPerBlock<kTpr>() + rr;
  const int64_t slices = cols / 32;
  float acc[N];
#pragma unroll
  for (int j = 0; j < N; ++j) acc[j] = 0.0f;
  if (r < rows) {
    const uint8_t* row = w + r * row_bytes;
#pragma unroll 4
    for (int64_t u = tr; u < slices; u += kTpr) {
#pragma unroll
      for (int j = 0; j < N; ++j) acc[j] += DotSlice<T>(row, u, xq[j * slices + u]);
    }
  }
  ReduceRow<kTpr, N>(acc, r, rows, y);
}

// Q4_K / Q5_K with one thread per pair of slices (DotPairK): the 32 quant
// bytes, scales and high bits are loaded once for 64 values.
template <GgmlType T, int N, int kTpr>
__global__ void __launch_bounds__(kThreads) MatVecQPairKernel(const Parts parts, int64_t cols,
                                                              int64_t row_bytes,
                                                              const ActQ8* __restrict__ xq) {
  const Part part = PickPart(parts, blockIdx.x);
  const uint8_t* __restrict__ w = part.w;
  float* __restrict__ y = part.y;
  const int64_t rows = part.rows;
  const int rr = threadIdx.x / kTpr, tr = threadIdx.x % kTpr;
  const int64_t r = static_cast<int64_t>(part.block) * RowsPerBlock<kTpr>() + rr;
  const int64_t slices = cols / 32, pairs = cols / 64;
  float acc[N];
#pragma unroll
  for (int j = 0; j < N; ++j) acc[j] = 0.0f;
  if (r < rows) {
    const uint8_t* row = w + r * row_bytes;
#pragma unroll 2
    for (int64_t p = tr; p < pairs; p += kTpr) {
#pragma unroll
      for (int j = 0; j < N; ++j) acc[j] += DotPairK<T>(row, p, xq + j * slices + 2 * p);
    }
  }
  ReduceRow<kTpr, N>(acc, r, rows, y);
}

// 8 consecutive weights as floats; F32 and F16 rows are 16-byte aligned
// (cols % 8 == 0, checked at LoadWeight), so they load as 16-byte vectors.
template <GgmlType T>
__device__ __forceinline__ void LoadWeights8(const uint8_t* row, int64_t e0, float* out) {
  if constexpr (T == GgmlType::F32) {
    const float4* p = reinterpret_cast<const float4*>(row) + e0 / 4;
    const float4 a = p[0], b = p[1];
    out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
    out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
  } else if constexpr (T == GgmlType::F16) {
    const uint4 v = reinterpret_cast<const uint4*>(row)[e0 / 8];
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

// Float weights: each thread reads 8 consecutive weights per step.
template <GgmlType T, int N, int kTpr>
__global__ void __launch_bounds__(kThreads) MatVecFKernel(const uint8_t* __restrict__ w,
                                                          int64_t rows, int64_t cols,
                                                          int64_t row_bytes,
                                                          const float* __restrict__ x,
                                                          float* __restrict__ y) {
  const int rr = threadIdx.x / kTpr, tr = threadIdx.x % kTpr;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * RowsPerBlock<kTpr>() + rr;
  float acc[N];
#pragma unroll
  for (int j = 0; j < N; ++j) acc[j] = 0.0f;
  if (r < rows) {
    const uint8_t* row = w + r * row_bytes;
#pragma unroll 4
    for (int64_t e0 = tr * 8; e0 < cols; e0 += kTpr * 8) {
      float wv[8];
      LoadWeights8<T>(row, e0, wv);
#pragma unroll
      for (int j = 0; j < N; ++j) {
        const float4* xp = reinterpret_cast<const float4*>(x + j * cols + e0);
        const float4 a = xp[0], b = xp[1];
        acc[j] += wv[0] * a.x + wv[1] * a.y + wv[2] * a.z + wv[3] * a.w + wv[4] * b.x +
                  wv[5] * b.y + wv[6] * b.z + wv[7] * b.w;
      }
    }
  }
  ReduceRow<kTpr, N>(acc, r, rows, y);
}

// Default: pairs on, auto threads per row (best tg128 in the H100 sweep, docs/gpu.md).
MatVecConfig g_config;  // benchmarks may change it (SetMatVecConfig)

// Quantized weights: one launch over the parts.
template <GgmlType T, int N, int kTpr>
void LaunchPartsTpr(const MatVecPart* ps, int n_parts, int64_t cols, const void* xq, Stream s) {
  const int64_t row_bytes = cols / BlockElems(T) * BlockBytes(T);
  Parts parts{};
  unsigned blocks = 0;
  for (int i = 0; i < kMaxMatVecParts; ++i) {
    const int k = i < n_parts ? i : n_parts - 1;  // unused slots repeat the last part, with no blocks
    parts.w[i] = static_cast<const uint8_t*>(ps[k].w);
    parts.y[i] = ps[k].y;
    parts.rows[i] = ps[k].rows;
    if (i < n_parts) blocks += Blocks(ps[k].rows, RowsPerBlock<kTpr>());
    parts.end[i] = blocks;
  }
  if (blocks == 0) return;
  const auto* x8 = static_cast<const ActQ8*>(xq);
  if constexpr (T == GgmlType::Q4_K || T == GgmlType::Q5_K) {
    if (g_config.pairs) {
      MatVecQPairKernel<T, N, kTpr><<<blocks, kThreads, 0, ToStream(s)>>>(parts, cols, row_bytes, x8);
      return;
    }
  }
  MatVecQKernel<T, N, kTpr><<<blocks, kThreads, 0, ToStream(s)>>>(parts, cols, row_bytes, x8);
}

template <GgmlType T, int N, int kTpr>
void LaunchTpr(const void* w, int64_t rows, int64_t cols, const float* x, const void* xq, float* y,
               Stream s) {
  if constexpr (T == GgmlType::F32 || T == GgmlType::F16 || T == GgmlType::BF16) {
    const int64_t row_bytes = cols / BlockElems(T) * BlockBytes(T);
    const unsigned grid = Blocks(rows, RowsPerBlock<kTpr>());
    MatVecFKernel<T, N, kTpr><<<grid, kThreads, 0, ToStream(s)>>>(static_cast<const uint8_t*>(w), rows,
                                                                  cols, row_bytes, x, y);
  } else {
    const MatVecPart part{w, y, rows};
    LaunchPartsTpr<T, N, kTpr>(&part, 1, cols, xq, s);
  }
}

// Threads per row for batch 1 (see LaunchN).
template <GgmlType T>
int BatchOneTpr(int64_t cols) {
#if defined(RF_GPU_CUDA)
  constexpr bool kLongRowsPrefer32 = T == GgmlType::Q4_K || T == GgmlType::Q5_K || T == GgmlType::Q4_0;
  if (g_config.threads_per_row == 0) {
    return kLongRowsPrefer32 && cols >= 8192 && (g_config.pairs || T == GgmlType::Q4_0) ? 32 : 64;
  }
  return g_config.threads_per_row;
#else
  (void)cols;
  return g_config.threads_per_row == 128 ? 128 : 64;
#endif
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
    const int tpr = BatchOneTpr<T>(cols);
#if defined(RF_GPU_CUDA)
    if (tpr == 32) return LaunchTpr<T, N, 32>(w, rows, cols, x, xq, y, s);
#endif
    if (tpr == 128) return LaunchTpr<T, N, 128>(w, rows, cols, x, xq, y, s);
  }
  return LaunchTpr<T, N, 64>(w, rows, cols, x, xq, y, s);
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
  if (t != 0 && t != 32 && t != 128) g_config.threads_per_row = 64;
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
template <GgmlType T>
void LaunchGroupType(const MatVecPart* parts, int n_parts, int64_t cols, const void* xq, Stream s) {
  const int tpr = BatchOneTpr<T>(cols);
#if defined(RF_GPU_CUDA)
  if (tpr == 32) return LaunchPartsTpr<T, 1, 32>(parts, n_parts, cols, xq, s);
#endif
  if (tpr == 128) return LaunchPartsTpr<T, 1, 128>(parts, n_parts, cols, xq, s);
  return LaunchPartsTpr<T, 1, 64>(parts, n_parts, cols, xq, s);
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
