// RMSNorm, alone and fused with the residual add that precedes it in every
// transformer block (one pass over x instead of two).
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"

namespace rocmforge::gpu {
namespace {

constexpr int kThreads = 256;
// Rows of up to kRegThreads * kRegPer values keep them in registers: every load
// of the row is issued before the first use, instead of a loop of dependent
// round trips per thread (a 4096-wide decode row took ~11 us that way).
constexpr int kRegThreads = 512;
constexpr int kRegPer = 16;

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

template <bool kAddResidual>
__global__ void __launch_bounds__(kRegThreads)
    RmsNormRegKernel(float* x, const float* residual, const float* w, float* out, int dim,
                     float eps) {
  __shared__ float scratch[kMaxWaves];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * dim;
  float* xr = x + base;
  float v[kRegPer];
#pragma unroll
  for (int k = 0; k < kRegPer; ++k) {
    const int i = threadIdx.x + k * kRegThreads;
    v[k] = i < dim ? xr[i] : 0.0f;
    if constexpr (kAddResidual) {
      if (i < dim) v[k] += residual[base + i];
    }
  }
  float ss = 0.0f;
#pragma unroll
  for (int k = 0; k < kRegPer; ++k) ss += v[k] * v[k];
  ss = BlockSum(ss, scratch);
  const float inv = rsqrtf(ss / dim + eps);
#pragma unroll
  for (int k = 0; k < kRegPer; ++k) {
    const int i = threadIdx.x + k * kRegThreads;
    if (i < dim) {
      if constexpr (kAddResidual) xr[i] = v[k];
      out[base + i] = v[k] * inv * w[i];
    }
  }
}

template <bool kAddResidual>
void Launch(float* x, const float* residual, const float* w, float* out, int n, int dim, float eps,
            Stream s) {
  if (n == 0) return;
  if (dim <= kRegThreads * kRegPer) {
    RmsNormRegKernel<kAddResidual><<<n, kRegThreads, 0, ToStream(s)>>>(x, residual, w, out, dim, eps);
  } else {
    RmsNormKernel<kAddResidual><<<n, kThreads, 0, ToStream(s)>>>(x, residual, w, out, dim, eps);
  }
}

}  // namespace

void LaunchRmsNorm(const float* x, const float* w, float* out, int n, int dim, float eps,
                   Stream s) {
  Launch<false>(const_cast<float*>(x), nullptr, w, out, n, dim, eps, s);
}

void LaunchAddRmsNorm(float* x, const float* residual, const float* w, float* out, int n, int dim,
                      float eps, Stream s) {
  Launch<true>(x, residual, w, out, n, dim, eps, s);
}

}  // namespace rocmforge::gpu
