// Matrix x vector / small batch (n <= kSmallBatchMax activation rows):
// y[j][r] = sum_k x[j][k] * W[r][k]. Memory-bound on the weights, so each
// weight byte is read once for all n rows. Quantized weights meet int8
// activations (ActQ8) through Dot4I8; F16/F32/BF16 weights use float math.
// One wave per weight row; each lane walks 32-element slices of the row.
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/quant_device.h"

namespace rocmforge::gpu {

void LaunchQuantizeActivation(const float* x, int64_t total, void* out, Stream s);

namespace {

constexpr int kThreads = 128;
constexpr int kRowsPerBlock = 4;

template <GgmlType T, int N>
__global__ void __launch_bounds__(kThreads) MatVecQKernel(const uint8_t* w, int64_t rows,
                                                          int64_t cols, int64_t row_bytes,
                                                          const ActQ8* xq, float* y) {
  const int lane = threadIdx.x % kWaveSize, wave = threadIdx.x / kWaveSize;
  const int n_waves = blockDim.x / kWaveSize;
  const int64_t slices = cols / 32;
  for (int rr = wave; rr < kRowsPerBlock; rr += n_waves) {
    const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + rr;
    if (r >= rows) break;
    const uint8_t* row = w + r * row_bytes;
    float acc[N];
#pragma unroll
    for (int j = 0; j < N; ++j) acc[j] = 0.0f;
#pragma unroll 2
    for (int64_t u = lane; u < slices; u += kWaveSize) {
#pragma unroll
      for (int j = 0; j < N; ++j) acc[j] += DotSlice<T>(row, u, xq[j * slices + u]);
    }
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const float v = WaveSum(acc[j]);
      if (lane == 0) y[j * rows + r] = v;
    }
  }
}

// Float weights: each lane reads 8 consecutive weights per step.
template <GgmlType T, int N>
__global__ void __launch_bounds__(kThreads) MatVecFKernel(const uint8_t* w, int64_t rows,
                                                          int64_t cols, int64_t row_bytes,
                                                          const float* x, float* y) {
  const int lane = threadIdx.x % kWaveSize, wave = threadIdx.x / kWaveSize;
  const int n_waves = blockDim.x / kWaveSize;
  for (int rr = wave; rr < kRowsPerBlock; rr += n_waves) {
    const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + rr;
    if (r >= rows) break;
    const uint8_t* row = w + r * row_bytes;
    float acc[N];
#pragma unroll
    for (int j = 0; j < N; ++j) acc[j] = 0.0f;
#pragma unroll 2
    for (int64_t e0 = lane * 8; e0 < cols; e0 += kWaveSize * 8) {
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
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const float v = WaveSum(acc[j]);
      if (lane == 0) y[j * rows + r] = v;
    }
  }
}

template <GgmlType T, int N>
void LaunchN(const void* w, int64_t rows, int64_t cols, const float* x, float* y, void* scratch,
             Stream s) {
  const int64_t row_bytes = cols / BlockElems(T) * BlockBytes(T);
  const unsigned grid = Blocks(rows, kRowsPerBlock);
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  if constexpr (T == GgmlType::F32 || T == GgmlType::F16 || T == GgmlType::BF16) {
    (void)scratch;
    MatVecFKernel<T, N><<<grid, kThreads, 0, ToStream(s)>>>(wb, rows, cols, row_bytes, x, y);
  } else {
    LaunchQuantizeActivation(x, static_cast<int64_t>(N) * cols, scratch, s);
    MatVecQKernel<T, N><<<grid, kThreads, 0, ToStream(s)>>>(wb, rows, cols, row_bytes,
                                                            static_cast<const ActQ8*>(scratch), y);
  }
}

template <GgmlType T>
void LaunchType(const void* w, int64_t rows, int64_t cols, const float* x, float* y, int n,
                void* scratch, Stream s) {
  switch (n) {
    case 1: return LaunchN<T, 1>(w, rows, cols, x, y, scratch, s);
    case 2: return LaunchN<T, 2>(w, rows, cols, x, y, scratch, s);
    case 3: return LaunchN<T, 3>(w, rows, cols, x, y, scratch, s);
    case 4: return LaunchN<T, 4>(w, rows, cols, x, y, scratch, s);
    case 5: return LaunchN<T, 5>(w, rows, cols, x, y, scratch, s);
    case 6: return LaunchN<T, 6>(w, rows, cols, x, y, scratch, s);
    case 7: return LaunchN<T, 7>(w, rows, cols, x, y, scratch, s);
    default: return LaunchN<T, 8>(w, rows, cols, x, y, scratch, s);
  }
}

}  // namespace

void LaunchMatMulSmallBatch(GgmlType type, const void* w, int64_t rows, int64_t cols,
                            const float* x, float* y, int n, void* scratch, Stream s) {
  // Larger batches run in chunks of kSmallBatchMax rows.
  for (int j0 = 0; j0 < n; j0 += kSmallBatchMax) {
    const int nj = n - j0 < kSmallBatchMax ? n - j0 : kSmallBatchMax;
    const float* xj = x + static_cast<int64_t>(j0) * cols;
    float* yj = y + static_cast<int64_t>(j0) * rows;
    switch (type) {
      case GgmlType::F32: LaunchType<GgmlType::F32>(w, rows, cols, xj, yj, nj, scratch, s); break;
      case GgmlType::F16: LaunchType<GgmlType::F16>(w, rows, cols, xj, yj, nj, scratch, s); break;
      case GgmlType::BF16: LaunchType<GgmlType::BF16>(w, rows, cols, xj, yj, nj, scratch, s); break;
      case GgmlType::Q8_0: LaunchType<GgmlType::Q8_0>(w, rows, cols, xj, yj, nj, scratch, s); break;
      case GgmlType::Q4_0: LaunchType<GgmlType::Q4_0>(w, rows, cols, xj, yj, nj, scratch, s); break;
      case GgmlType::Q4_K: LaunchType<GgmlType::Q4_K>(w, rows, cols, xj, yj, nj, scratch, s); break;
      case GgmlType::Q5_K: LaunchType<GgmlType::Q5_K>(w, rows, cols, xj, yj, nj, scratch, s); break;
      case GgmlType::Q6_K: LaunchType<GgmlType::Q6_K>(w, rows, cols, xj, yj, nj, scratch, s); break;
      default: break;
    }
  }
}

}  // namespace rocmforge::gpu
