// Elementwise ops on float32 activations: bias add, SwiGLU, add, row gather.
#include "kernels/gpu_api.h"
#include "kernels/gpu_runtime.h"
#include "kernels/launch_util.h"
#include "kernels/swiglu_device.h"

namespace rocmforge::gpu {
namespace {

constexpr int kThreads = 256;

__global__ void AddBiasKernel(float* y, const float* bias, int64_t total, int cols) {
  GridDependencyBegin();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < total) y[i] += bias[i % cols];
}

// out = silu(gate) * up. With kF16 it also writes the result rounded to f16
// (round to nearest even of the same float) for the dense f16 GEMM that reads
// it next.
template <bool kF16>
__global__ void SwiGLUKernel(const float* gate, const float* up, float* out, uint16_t* out16, int64_t n) {
  GridDependencyBegin();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) {
    const float g = gate[i];
    const float o = SiluMul(g, up[i]);
    out[i] = o;
    if constexpr (kF16) out16[i] = __half_as_ushort(__float2half_rn(o));
  }
}

__global__ void AddKernel(float* x, const float* y, int64_t n) {
  GridDependencyBegin();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] += y[i];
}

__global__ void GatherRowsKernel(const float* x, const int32_t* rows, int dim, float* out) {
  GridDependencyBegin();
  const int r = blockIdx.y;
  const float* src = x + static_cast<int64_t>(rows[r]) * dim;
  float* dst = out + static_cast<int64_t>(r) * dim;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < dim; i += gridDim.x * blockDim.x) {
    dst[i] = src[i];
  }
}

}  // namespace

void LaunchAddBias(float* y, const float* bias, int n, int cols, Stream s) {
  const int64_t total = static_cast<int64_t>(n) * cols;
  if (total == 0) return;
  LaunchKernel(AddBiasKernel, Blocks(total, kThreads), kThreads, 0, s, y, bias, total, cols);
}

void LaunchSwiGLU(const float* gate, const float* up, float* out, int64_t n, Stream s) {
  if (n == 0) return;
  LaunchKernel(SwiGLUKernel<false>, Blocks(n, kThreads), kThreads, 0, s, gate, up, out,
               static_cast<uint16_t*>(nullptr), n);
}

void LaunchSwiGLUF16(const float* gate, const float* up, float* out, uint16_t* out16, int64_t n, Stream s) {
  if (n == 0) return;
  LaunchKernel(SwiGLUKernel<true>, Blocks(n, kThreads), kThreads, 0, s, gate, up, out, out16, n);
}

void LaunchAdd(float* x, const float* y, int64_t n, Stream s) {
  if (n == 0) return;
  LaunchKernel(AddKernel, Blocks(n, kThreads), kThreads, 0, s, x, y, n);
}

void LaunchGatherRows(const float* x, const int32_t* rows, int n_rows, int dim, float* out,
                      Stream s) {
  if (n_rows == 0 || dim == 0) return;
  const dim3 grid(Blocks(dim, kThreads) > 8 ? 8 : Blocks(dim, kThreads), n_rows);
  LaunchKernel(GatherRowsKernel, grid, kThreads, 0, s, x, rows, dim, out);
}

}  // namespace rocmforge::gpu
