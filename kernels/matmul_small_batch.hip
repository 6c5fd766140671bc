// Matrix x vector / small batch (n <= kSmallBatchMax activation rows):
// y[j][r] = sum_k x[j][k] * W[r][k]. Memory-bound on the weights, so each
// weight byte is read once for all n rows. Quantized weights meet int8
// activations (ActQ8) through Dot4I8; F16/F32/BF16 weights use float math.
// 64 threads per weight row; each walks 32-element slices of the row.
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

template <GgmlType T, int N, int kTpr>
__global__ void __launch_bounds__(kThreads) MatVecQKernel(const uint8_t* __restrict__ w,
                                                          int64_t rows, int64_t cols,
                                                          int64_t row_bytes,
                                                          const ActQ8* __restrict__ xq,
                                                          float* __restrict__ y) {
  const int rr = threadIdx.x / kTpr, tr = threadIdx.x % kTpr;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * RowsPerBlock<kTpr>() + rr;
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
__global__ void __launch_bounds__(kThreads) MatVecQPairKernel(const uint8_t* __restrict__ w,
                                                              int64_t rows, int64_t cols,
                                                              int64_t row_bytes,
                                                              const ActQ8* __restrict__ xq,
                                                              float* __restrict__ y) {
  const int rr = threadIdx.x / kTpr, tr = threadIdx.x % kTpr;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * RowsPerBlock<kTpr>() + rr;
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
      Dequant8<T>(row, e0, wv);
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

// Pairs on, 64 threads per row: best tg128 in the H100 sweep (docs/gpu.md).
MatVecConfig g_config;  // benchmarks may change it (SetMatVecConfig)

template <GgmlType T, int N, int kTpr>
void LaunchTpr(const void* w, int64_t rows, int64_t cols, const float* x, const void* xq, float* y,
               Stream s) {
  const int64_t row_bytes = cols / BlockElems(T) * BlockBytes(T);
  const unsigned grid = Blocks(rows, RowsPerBlock<kTpr>());
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  if constexpr (T == GgmlType::Q4_K || T == GgmlType::Q5_K) {
    if (g_config.pairs) {
      MatVecQPairKernel<T, N, kTpr><<<grid, kThreads, 0, ToStream(s)>>>(
          wb, rows, cols, row_bytes, static_cast<const ActQ8*>(xq), y);
      return;
    }
  }
  if constexpr (T == GgmlType::F32 || T == GgmlType::F16 || T == GgmlType::BF16) {
    MatVecFKernel<T, N, kTpr><<<grid, kThreads, 0, ToStream(s)>>>(wb, rows, cols, row_bytes, x, y);
  } else {
    MatVecQKernel<T, N, kTpr><<<grid, kThreads, 0, ToStream(s)>>>(
        wb, rows, cols, row_bytes, static_cast<const ActQ8*>(xq), y);
  }
}

template <GgmlType T, int N>
void LaunchN(const void* w, int64_t rows, int64_t cols, const float* x, const void* xq, float* y,
             Stream s) {
  // 64 threads per row measured best on the H100 (bench/RESULTS.md): 128 or 256
  // for short matrices (rows < 8192) lowered Q4_K/Q5_K at m=4096 and tg128.
  // Other widths are compiled for batch 1 only, for the benchmark's sweep.
  if constexpr (N == 1) {
#if defined(RF_GPU_CUDA)  // a row must not share a wave with another (AMD waves are 64 wide)
    if (g_config.threads_per_row == 32) return LaunchTpr<T, N, 32>(w, rows, cols, x, xq, y, s);
#endif
    if (g_config.threads_per_row == 128) return LaunchTpr<T, N, 128>(w, rows, cols, x, xq, y, s);
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
  if (g_config.threads_per_row != 32 && g_config.threads_per_row != 128) g_config.threads_per_row = 64;
}
MatVecConfig GetMatVecConfig() { return g_config; }

int ActivationRule(GgmlType type) {
  switch (type) {
    case GgmlType::Q8_0: case GgmlType::Q4_0: return 1;
    case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: return 2;
    default: return 0;
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
