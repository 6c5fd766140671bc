// RMSNorm, alone and fused with the residual add that precedes it in every
// transformer block (one pass over x instead of two); both optionally also
// quantize their output for the int8 matmul that reads it next (one launch and
// one pass over the row fewer per matmul input).
#include "kernels/act_quant_device.h"
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/act_quant_launch.h"
#include "kernels/rmsnorm_device.h"

namespace rocmforge::gpu {
namespace {

constexpr int kThreads = 256;
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

// The rows of up to kRegThreads * kRegPer values in a block of kRegThreads:
// the normalized row left in registers (o; 0 past dim) for what the caller
// stores. With kAddResidual, x += residual is written back to x first.
template <bool kAddResidual>
__device__ __forceinline__ void NormalizeRowInRegisters(float* xr, const float* rr, const float* w,
                                                        int dim, float eps, float* scratch,
                                                        float (&o)[kRegPer]) {
  float v[1][kRegPer], wv[1][kRegPer];
  [[maybe_unused]] float rv[1][kRegPer];
  LoadRowVirtual<kRegThreads>(xr, dim, v);
  if constexpr (kAddResidual) LoadRowVirtual<kRegThreads>(rr, dim, rv);
  LoadRowVirtual<kRegThreads>(w, dim, wv);  // loaded with x: no round trip after the reduction
  if constexpr (kAddResidual) AddRows(v, rv);
  const float inv = RowInvRms<kRegThreads>(v, dim, eps, scratch);
#pragma unroll
  for (int k = 0; k < kRegPer; ++k) {
    const int i = threadIdx.x + k * kRegThreads;
    o[k] = 0.0f;
    if (i < dim) {
      if constexpr (kAddResidual) xr[i] = v[0][k];
      o[k] = v[0][k] * inv * wv[0][k];
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

// RMSNorm + quantization, the row's norm as RmsNormRegKernel computes it (the
// same loads, sum of squares and rounding: the same floats), with the row
// loaded a second time, in the layout of QuantizeEightPerLane (lane l of a
// warp: 8 consecutive values, two 16-byte loads per array), for the stores and
// the quantization. Both sets of loads are issued before the first use (the
// second hits the lines the first brings in), so the row still costs one
// round trip. BlockQuantizeRow's layout (value i in thread i % 512) made a
// 256-value Q8_K group span 8 waves (two block barriers, 3-field shuffles per
// register) and cost 10 shuffles per Q8_0 slice register: 5.9 us for a
// 4096-wide Q8_0 row on the H100 against 4.1 us for the norm alone; here a
// slice takes 2 shuffles and a group 13. (A version that moved the row through
// 32 KB of shared memory instead of loading it twice measured 7.3-7.5 us with
// the residual add, 4.0 us without, on the H100.) Also zeroes `zero` (the next
// K-split GEMM's outputs). Needs 16-byte aligned x, residual, w and out, dim a
// multiple of 32 (kRule 1) or 256 (kRule 2), at most kRegThreads * kRegPer.
constexpr int kRunChunk = kRegThreads * 8;  // values per pass of the block in the run layout
// p[i0 .. i0 + 8) as two 16-byte loads (p + i0 16-byte aligned), zeros if !in.
__device__ __forceinline__ void Load8Or0(const float* p, int i0, bool in, float (&d)[8]) {
  const float4 z = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  const float4 a = in ? *reinterpret_cast<const float4*>(p + i0) : z;
  const float4 b = in ? *reinterpret_cast<const float4*>(p + i0 + 4) : z;
  d[0] = a.x, d[1] = a.y, d[2] = a.z, d[3] = a.w, d[4] = b.x, d[5] = b.y, d[6] = b.z, d[7] = b.w;
}
__device__ __forceinline__ void Store8(float* p, int i0, const float (&d)[8]) {
  *reinterpret_cast<float4*>(p + i0) = make_float4(d[0], d[1], d[2], d[3]);
  *reinterpret_cast<float4*>(p + i0 + 4) = make_float4(d[4], d[5], d[6], d[7]);
}
template <bool kAddResidual, int kRule>
__global__ void __launch_bounds__(kRegThreads)
    RmsNormQuantKernel(float* x, const float* residual, const float* w, float* out, int dim, float eps, ActQ8* xq,
                       ZeroSpans zero) {
  static_assert(kRegThreads * kRegPer % kRunChunk == 0);
  constexpr int kChunks = kRegThreads * kRegPer / kRunChunk;
  __shared__ float scratch[kMaxWaves];
  GridDependencyBegin();
  const int64_t base = static_cast<int64_t>(blockIdx.x) * dim;
  float* const xr = x + base;
  const float* const rr = kAddResidual ? residual + base : nullptr;
  const int t = threadIdx.x;
  float v[1][kRegPer], xc[kChunks][8], rc[kChunks][8], wc[kChunks][8];
  [[maybe_unused]] float rv[1][kRegPer];
  LoadRowVirtual<kRegThreads>(xr, dim, v);  // NormalizeRowInRegisters' loads
  if constexpr (kAddResidual) LoadRowVirtual<kRegThreads>(rr, dim, rv);
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {  // the run layout, loaded with the above
    const int i0 = c * kRunChunk + 8 * t;
    Load8Or0(xr, i0, i0 < dim, xc[c]);
    if constexpr (kAddResidual) Load8Or0(rr, i0, i0 < dim, rc[c]);
    Load8Or0(w, i0, i0 < dim, wc[c]);
  }
  if constexpr (kAddResidual) AddRows(v, rv);
  const float inv = RowInvRms<kRegThreads>(v, dim, eps, scratch);  // and its sum
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    if (c * kRunChunk >= dim) continue;  // block-uniform (not break: the loop is unrolled)
    const int i0 = c * kRunChunk + 8 * t;
    const bool in = i0 < dim;
    float r[8], o[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      r[j] = xc[c][j];
      if constexpr (kAddResidual) r[j] += rc[c][j];  // the same sum as v
      o[j] = r[j] * inv * wc[c][j];
    }
    if (in) {
      if constexpr (kAddResidual) Store8(xr, i0, r);
      Store8(out + base, i0, o);
    }
    // The warp's 256-value run; a run past dim (Q8_0 rule) stores nothing.
    const int run0 = c * kRunChunk + (t / 32) * 256;
    if (run0 < dim) QuantizeEightPerLane<kRule>(o, base + run0, in, xq);
  }
  ZeroSpansGridStride(zero);
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
NormQuantKernel g_norm_quant_kernel = NormQuantKernel::kByRule;  // SetRmsNormQuantKernel

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
// The kernel for the arrays and settings: the 8-values-per-lane kernel where
// the arrays are 16-byte aligned and it is chosen or must zero; else the
// register kernel (then `zero` by a launch of its own).
template <bool kAddResidual>
void LaunchQuantized(float* x, const float* residual, const float* w, float* out, int n, int dim,
                     float eps, GgmlType weight_type, void* xq, const ZeroSpans& zero, Stream s) {
  if (n == 0) {
    if (zero.n > 0) LaunchZeroSpans(zero, s);
    return;
  }
  auto* q = static_cast<ActQ8*>(xq);
  const bool q8_0 = ActivationRule(weight_type) == 1;
  const bool aligned = Aligned16(x) && Aligned16(w) && Aligned16(out) && (!kAddResidual || Aligned16(residual));
  const bool run_layout = g_norm_quant_kernel == NormQuantKernel::kRunLayout ||
                          (g_norm_quant_kernel == NormQuantKernel::kByRule && !q8_0);
  if (aligned && (run_layout || zero.n > 0)) {
    if (q8_0) {
      LaunchKernel(RmsNormQuantKernel<kAddResidual, 1>, n, kRegThreads, 0, s, x, residual, w, out, dim, eps, q,
                   zero);
    } else {
      LaunchKernel(RmsNormQuantKernel<kAddResidual, 2>, n, kRegThreads, 0, s, x, residual, w, out, dim, eps, q,
                   zero);
    }
    return;
  }
  if (q8_0) {
    LaunchKernel(RmsNormRegKernel<kAddResidual, false, 1>, n, kRegThreads, 0, s, x, residual, w, out,
                 dim, eps, static_cast<uint16_t*>(nullptr), q);
  } else {
    LaunchKernel(RmsNormRegKernel<kAddResidual, false, 2>, n, kRegThreads, 0, s, x, residual, w, out,
                 dim, eps, static_cast<uint16_t*>(nullptr), q);
  }
  if (zero.n > 0) LaunchZeroSpans(zero, s);
}
}  // namespace

void LaunchRmsNormQuantize(const float* x, const float* w, float* out, int n, int dim, float eps,
                           GgmlType weight_type, void* xq, Stream s, const ZeroSpans& zero) {
  LaunchQuantized<false>(const_cast<float*>(x), nullptr, w, out, n, dim, eps, weight_type, xq, zero, s);
}

void LaunchAddRmsNormQuantize(float* x, const float* residual, const float* w, float* out, int n,
                              int dim, float eps, GgmlType weight_type, void* xq, Stream s, const ZeroSpans& zero) {
  LaunchQuantized<true>(x, residual, w, out, n, dim, eps, weight_type, xq, zero, s);
}

void SetRmsNormQuantKernel(NormQuantKernel k) { g_norm_quant_kernel = k; }
NormQuantKernel GetRmsNormQuantKernel() { return g_norm_quant_kernel; }

}  // namespace rocmforge::gpu
