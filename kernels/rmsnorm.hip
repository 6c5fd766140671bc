// RMSNorm, alone and fused with the residual add that precedes it in every
// transformer block (one pass over x instead of two).
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"

namespace rocmforge::gpu {
namespace {

constexpr int kThreads = 256;

template <bool kAddResidual>
__global__ void RmsNormKernel(float* x, const float* residual, const float* w, float* out, int dim,
                              float eps) {
  __shared__ float scratch[kMaxWaves];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * dim;
  float* xr = x + base;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = xr[i];
    if constexpr (kAddResidual) {
      v += residual[base + i];
      xr[i] = v;
    }
    ss += v * v;
  }
  ss = BlockSum(ss, scratch);
  const float inv = rsqrtf(ss / dim + eps);
  for (int i = threadIdx.x; i < dim; i += blockDim.x) out[base + i] = xr[i] * inv * w[i];
}

}  // namespace

void LaunchRmsNorm(const float* x, const float* w, float* out, int n, int dim, float eps,
                   Stream s) {
  if (n == 0) return;
  RmsNormKernel<false><<<n, kThreads, 0, ToStream(s)>>>(const_cast<float*>(x), nullptr, w, out,
                                                         dim, eps);
}

void LaunchAddRmsNorm(float* x, const float* residual, const float* w, float* out, int n, int dim,
                      float eps, Stream s) {
  if (n == 0) return;
  RmsNormKernel<true><<<n, kThreads, 0, ToStream(s)>>>(x, residual, w, out, dim, eps);
}

}  // namespace rocmforge::gpu
