// Large-batch (prefill) matmul: y[n][rows] = x[n][cols] . W^T with 64x64 output
// tiles; each 32-wide K step dequantizes a weight tile into shared memory once
// and reuses it for 64 tokens. Float32 SIMT arithmetic (portable to every
// target; a matrix-core path is future work, see docs/gpu.md).
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/quant_device.h"

namespace rocmforge::gpu {
namespace {

constexpr int kBM = 64, kBN = 64, kBK = 32, kThreads = 256;

template <GgmlType T>
__global__ void __launch_bounds__(kThreads) GemmKernel(const uint8_t* w, int64_t rows,
                                                       int64_t cols, int64_t row_bytes,
                                                       const float* x, float* y, int n) {
  __shared__ __align__(16) float ws[kBK][kBM + 4];
  __shared__ __align__(16) float xs[kBK][kBN + 4];
  const int t = threadIdx.x;
  const int tx = t % 16, ty = t / 16;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kBM;
  const int tok0 = blockIdx.y * kBN;
  const int lr = t / 4, lk = (t % 4) * 8;  // loader: tile row / token and K offset
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < cols; k0 += kBK) {
    float v[8];
    const int64_t r = row0 + lr;
    if (r < rows && k0 + lk < cols) {
      Dequant8<T>(w + r * row_bytes, k0 + lk, v);
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] = 0.0f;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) ws[lk + i][lr] = v[i];
    const int tok = tok0 + lr;
    if (tok < n && k0 + lk < cols) {
      const float4* xp = reinterpret_cast<const float4*>(x + static_cast<int64_t>(tok) * cols + k0 + lk);
      const float4 a = xp[0], b = xp[1];
      v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
      v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] = 0.0f;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) xs[lk + i][lr] = v[i];
    __syncthreads();
#pragma unroll 8
    for (int kk = 0; kk < kBK; ++kk) {
      const float4 a = *reinterpret_cast<const float4*>(&ws[kk][tx * 4]);
      const float4 b = *reinterpret_cast<const float4*>(&xs[kk][ty * 4]);
      const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int tok = tok0 + ty * 4 + j;
    if (tok >= n) continue;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t r = row0 + tx * 4 + i;
      if (r < rows) y[static_cast<int64_t>(tok) * rows + r] = acc[i][j];
    }
  }
}

template <GgmlType T>
void Launch(const void* w, int64_t rows, int64_t cols, const float* x, float* y, int n, Stream s) {
  const int64_t row_bytes = cols / BlockElems(T) * BlockBytes(T);
  const dim3 grid(Blocks(rows, kBM), Blocks(n, kBN));
  GemmKernel<T><<<grid, kThreads, 0, ToStream(s)>>>(static_cast<const uint8_t*>(w), rows, cols,
                                                     row_bytes, x, y, n);
}

}  // namespace

void LaunchMatMulTiled(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x,
                       float* y, int n, Stream s) {
  if (n == 0 || rows == 0) return;
  switch (type) {
    case GgmlType::F32: return Launch<GgmlType::F32>(w, rows, cols, x, y, n, s);
    case GgmlType::F16: return Launch<GgmlType::F16>(w, rows, cols, x, y, n, s);
    case GgmlType::BF16: return Launch<GgmlType::BF16>(w, rows, cols, x, y, n, s);
    case GgmlType::Q8_0: return Launch<GgmlType::Q8_0>(w, rows, cols, x, y, n, s);
    case GgmlType::Q4_0: return Launch<GgmlType::Q4_0>(w, rows, cols, x, y, n, s);
    case GgmlType::Q4_K: return Launch<GgmlType::Q4_K>(w, rows, cols, x, y, n, s);
    case GgmlType::Q5_K: return Launch<GgmlType::Q5_K>(w, rows, cols, x, y, n, s);
    case GgmlType::Q6_K: return Launch<GgmlType::Q6_K>(w, rows, cols, x, y, n, s);
    case GgmlType::Q2_K: return Launch<GgmlType::Q2_K>(w, rows, cols, x, y, n, s);
    case GgmlType::Q3_K: return Launch<GgmlType::Q3_K>(w, rows, cols, x, y, n, s);
    default: return;
  }
}

}  // namespace rocmforge::gpu
