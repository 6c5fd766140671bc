// RMSNorm, alone and fused with the residual add that precedes it in every
// transformer block (one pass over x instead of two); both optionally also
// quantize their output for the int8 matmul that reads it next (one launch and
// one pass over the row fewer per matmul input).
#include "kernels/act_quant_device.h"
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
  GridDependencyBegin();
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

// The rows of up to kRegThreads * kRegPer values: every load of the row is
// issued before the first use, the sum of squares reduced once, and the
// normalized row left in registers (o; 0 past dim) for what the caller stores.
// With kAddResidual, x += residual is written back to x first.
template <bool kAddResidual>
__device__ __forceinline__ void NormalizeRowInRegisters(float* xr, const float* rr, const float* w,
                                                        int dim, float eps, float* scratch,
                                                        float (&o)[kRegPer]) {
  float v[kRegPer], wv[kRegPer];
#pragma unroll
  for (int k = 0; k < kRegPer; ++k) {
    const int i = threadIdx.x + k * kRegThreads;
    v[k] = i < dim ? xr[i] : 0.0f;
    wv[k] = i < dim ? w[i] : 0.0f;  // loaded with x: no round trip after the reduction
    if constexpr (kAddResidual) {
      if (i < dim) v[k] += rr[i];
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
    o[k] = 0.0f;
    if (i < dim) {
      if constexpr (kAddResidual) xr[i] = v[k];
      o[k] = v[k] * inv * wv[k];
    }
  }
}

// One launch per row for the register-resident rows. Besides the float output
// it may write, from the same registers (so bit for bit what a separate pass
// over `out` would produce):
//   kF16:       out16, each value rounded to f16 (round to nearest even), for a
//               dense f16 GEMM that reads the row next;
//   kQuantRule: the row as ActQ8 slices for the int8 matmul that reads it next
//               (1: Q8_0 rule, 2: Q8_K rule; 0: none), with the stand-alone
//               quantize kernel's helpers, so the integers are the same. Value i
//               sits in thread i % 512, register i / 512: a 32-value slice is 32
//               consecutive lanes, a 256-value Q8_K group half the block for one
//               register index. dim a multiple of 32 (Q8_0) or 256 (Q8_K).
template <bool kAddResidual, bool kF16, int kQuantRule>
__global__ void __launch_bounds__(kRegThreads)
    RmsNormRegKernel(float* x, const float* residual, const float* w, float* out, int dim, float eps,
                     uint16_t* out16, ActQ8* xq) {
  __shared__ float scratch[kMaxWaves];
  GridDependencyBegin();
  const int64_t base = static_cast<int64_t>(blockIdx.x) * dim;
  float o[kRegPer];
  NormalizeRowInRegisters<kAddResidual>(x + base, kAddResidual ? residual + base : nullptr, w, dim,
                                        eps, scratch, o);
#pragma unroll
  for (int k = 0; k < kRegPer; ++k) {
    const int i = threadIdx.x + k * kRegThreads;
    if (i < dim) {
      out[base + i] = o[k];
      if constexpr (kF16) out16[base + i] = __half_as_ushort(__float2half_rn(o[k]));
    }
  }
  if constexpr (kQuantRule != 0) BlockQuantizeRow<kRegThreads, kRegPer, kQuantRule>(o, base, dim, xq);
}

template <bool kAddResidual>
void Launch(float* x, const float* residual, const float* w, float* out, int n, int dim, float eps,
            Stream s) {
  if (n == 0) return;
  if (dim <= kRegThreads * kRegPer) {
    LaunchKernel(RmsNormRegKernel<kAddResidual, false, 0>, n, kRegThreads, 0, s, x, residual, w, out,
                 dim, eps, static_cast<uint16_t*>(nullptr), static_cast<ActQ8*>(nullptr));
  } else {
    LaunchKernel(RmsNormKernel<kAddResidual>, n, kThreads, 0, s, x, residual, w, out, dim, eps);
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

bool RmsNormF16Supported(int dim) { return dim > 0 && dim <= kRegThreads * kRegPer; }

void LaunchRmsNormF16(const float* x, const float* w, float* out, uint16_t* out16, int n, int dim, float eps,
                      Stream s) {
  if (n == 0) return;
  LaunchKernel(RmsNormRegKernel<false, true, 0>, n, kRegThreads, 0, s, const_cast<float*>(x),
               static_cast<const float*>(nullptr), w, out, dim, eps, out16, static_cast<ActQ8*>(nullptr));
}

void LaunchAddRmsNormF16(float* x, const float* residual, const float* w, float* out, uint16_t* out16, int n,
                         int dim, float eps, Stream s) {
  if (n == 0) return;
  LaunchKernel(RmsNormRegKernel<true, true, 0>, n, kRegThreads, 0, s, x, residual, w, out, dim, eps, out16,
               static_cast<ActQ8*>(nullptr));
}

bool RmsNormQuantizeSupported(GgmlType weight_type, int dim) {
  const int rule = ActivationRule(weight_type);
  if (rule == 0 || dim <= 0 || dim > kRegThreads * kRegPer) return false;
  return dim % (rule == 2 ? 256 : 32) == 0;
}

namespace {
template <bool kAddResidual>
void LaunchQuantized(float* x, const float* residual, const float* w, float* out, int n, int dim,
                     float eps, GgmlType weight_type, void* xq, Stream s) {
  if (n == 0) return;
  auto* q = static_cast<ActQ8*>(xq);
  if (ActivationRule(weight_type) == 1) {
    LaunchKernel(RmsNormRegKernel<kAddResidual, false, 1>, n, kRegThreads, 0, s, x, residual, w, out,
                 dim, eps, static_cast<uint16_t*>(nullptr), q);
  } else {
    LaunchKernel(RmsNormRegKernel<kAddResidual, false, 2>, n, kRegThreads, 0, s, x, residual, w, out,
                 dim, eps, static_cast<uint16_t*>(nullptr), q);
  }
}
}  // namespace

void LaunchRmsNormQuantize(const float* x, const float* w, float* out, int n, int dim, float eps,
                           GgmlType weight_type, void* xq, Stream s) {
  LaunchQuantized<false>(const_cast<float*>(x), nullptr, w, out, n, dim, eps, weight_type, xq, s);
}

void LaunchAddRmsNormQuantize(float* x, const float* residual, const float* w, float* out, int n,
                              int dim, float eps, GgmlType weight_type, void* xq, Stream s) {
  LaunchQuantized<true>(x, residual, w, out, n, dim, eps, weight_type, xq, s);
}

}  // namespace rocmforge::gpu
