// Large-batch (prefill) matmul on the matrix cores: y[n][rows] = x[n][cols] . W^T
// with 64x64 output tiles. Each 32-wide K step dequantizes the weight tile and
// converts the activation tile to f16 in shared memory once; four waves each
// accumulate a 32x32 block in float with 16x16x16 MMA tiles. Activations are
// rounded to f16 (relative error ~1e-3, inside the quantized-path budget).
// Targets without matrix cores in gpu_runtime.h use LaunchMatMulTiled instead.
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/quant_device.h"

namespace rocmforge::gpu {

#if defined(RF_GPU_CUDA)
namespace {

constexpr int kBM = 64, kBN = 64, kBK = 32, kThreads = 128, kPad = 8;
constexpr int kLd = kBK + kPad;  // halves per shared row (keeps 16-byte alignment, spreads banks)

template <GgmlType T>
__global__ void __launch_bounds__(kThreads) GemmMmaKernel(const uint8_t* w, int64_t rows,
                                                          int64_t cols, int64_t row_bytes,
                                                          const float* x, float* y, int n) {
  __shared__ __align__(32) __half ws[kBM * kLd];  // [weight row][k]
  __shared__ __align__(32) __half xs[kBN * kLd];  // [token][k]
  __shared__ __align__(32) float out_s[4][16 * 16];
  const int t = threadIdx.x, wave = t / kWaveSize, lane = t % kWaveSize;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kBM;
  const int tok0 = blockIdx.y * kBN;
  const int wr = (wave % 2) * 32, wt = (wave / 2) * 32;  // this wave's rows / tokens in the tile
  mma::FragC acc[2][2];  // [token sub-tile][row sub-tile]
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) mma::Zero(acc[i][j]);

  for (int64_t k0 = 0; k0 < cols; k0 += kBK) {
    // 64 rows x 32 k = 256 groups of 8: two per thread.
#pragma unroll
    for (int g = 0; g < 2; ++g) {
      const int idx = t + g * kThreads;
      const int r = idx / 4, kk = (idx % 4) * 8;
      float v[8];
      if (row0 + r < rows && k0 + kk < cols) {
        Dequant8<T>(w + (row0 + r) * row_bytes, k0 + kk, v);
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) v[i] = 0.0f;
      }
#pragma unroll
      for (int i = 0; i < 8; ++i) ws[r * kLd + kk + i] = __float2half(v[i]);
      const int tok = tok0 + r;
      if (tok < n && k0 + kk < cols) {
        const float4* xp = reinterpret_cast<const float4*>(x + static_cast<int64_t>(tok) * cols + k0 + kk);
        const float4 a = xp[0], b = xp[1];
        v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
        v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) v[i] = 0.0f;
      }
#pragma unroll
      for (int i = 0; i < 8; ++i) xs[r * kLd + kk + i] = __float2half(v[i]);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      mma::FragA a[2];
      mma::FragB b[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) mma::LoadA(a[i], xs + (wt + i * 16) * kLd + kk, kLd);
#pragma unroll
      for (int j = 0; j < 2; ++j) mma::LoadB(b[j], ws + (wr + j * 16) * kLd + kk, kLd);
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) mma::Mma(acc[i][j], a[i], b[j]);
    }
    __syncthreads();
  }
  // acc[i][j] is y[tokens wt+16i..][rows wr+16j..] row-major by token.
#pragma unroll
  for (int i = 0; i < 2; ++i) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      mma::StoreRowMajor(out_s[wave], acc[i][j], 16);
      __syncwarp();
      for (int e = lane; e < 256; e += kWaveSize) {
        const int tok = tok0 + wt + i * 16 + e / 16;
        const int64_t r = row0 + wr + j * 16 + e % 16;
        if (tok < n && r < rows) y[static_cast<int64_t>(tok) * rows + r] = out_s[wave][e];
      }
      __syncwarp();
    }
  }
}

template <GgmlType T>
void Launch(const void* w, int64_t rows, int64_t cols, const float* x, float* y, int n, Stream s) {
  const int64_t row_bytes = cols / BlockElems(T) * BlockBytes(T);
  const dim3 grid(Blocks(rows, kBM), Blocks(n, kBN));
  GemmMmaKernel<T><<<grid, kThreads, 0, ToStream(s)>>>(static_cast<const uint8_t*>(w), rows, cols,
                                                        row_bytes, x, y, n);
}

}  // namespace

bool MatMulMmaAvailable() { return true; }

void LaunchMatMulMma(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x,
                     float* y, int n, Stream s) {
  if (n == 0 || rows == 0) return;
  switch (type) {
    case GgmlType::F16: return Launch<GgmlType::F16>(w, rows, cols, x, y, n, s);
    case GgmlType::BF16: return Launch<GgmlType::BF16>(w, rows, cols, x, y, n, s);
    case GgmlType::Q8_0: return Launch<GgmlType::Q8_0>(w, rows, cols, x, y, n, s);
    case GgmlType::Q4_0: return Launch<GgmlType::Q4_0>(w, rows, cols, x, y, n, s);
    case GgmlType::Q4_K: return Launch<GgmlType::Q4_K>(w, rows, cols, x, y, n, s);
    case GgmlType::Q5_K: return Launch<GgmlType::Q5_K>(w, rows, cols, x, y, n, s);
    case GgmlType::Q6_K: return Launch<GgmlType::Q6_K>(w, rows, cols, x, y, n, s);
    default: return LaunchMatMulTiled(type, w, rows, cols, x, y, n, s);  // F32 stays exact
  }
}

#else

bool MatMulMmaAvailable() { return false; }

void LaunchMatMulMma(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x,
                     float* y, int n, Stream s) {
  LaunchMatMulTiled(type, w, rows, cols, x, y, n, s);
}

#endif

}  // namespace rocmforge::gpu
