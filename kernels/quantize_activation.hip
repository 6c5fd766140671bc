// Quantizes float activations to int8 slices of 32 values (ActQ8) for the int8
// dot-product matmul path, with exactly the CPU reference's rules
// (engine/gguf/quant_*.cc), so GPU and CPU dot the same integers:
//  * legacy weights (Q8_0, Q4_0) pair with Q8_0 activations: per 32 values
//    d = amax / 127 stored as f16, q = round(x / d) (half away from zero);
//  * k-quant weights pair with Q8_K activations: per 256 values
//    iscale = -127 / max (max = the value of largest magnitude),
//    q = clamp(round-half-even(iscale * x), -127, 127), d = 1 / iscale.
// Each ActQ8 slice carries its d and s = d * sum(q). The per-value math lives in
// kernels/act_quant_device.h, shared with the fused producers (RMSNorm in
// rmsnorm.hip, SwiGLU below), so every path yields the same integers.
#include <algorithm>

#include "kernels/act_quant_device.h"
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/act_quant_launch.h"
#include "kernels/quant_device.h"
#include "kernels/swiglu_device.h"

namespace rocmforge::gpu {
namespace {

constexpr int kThreads = 256;  // one thread per value; one Q8_K group per block

// Where the values come from: the activation itself, or SwiGLU of gate and up
// (then the float result is also written, as LaunchSwiGLU does).
struct Plain {
  const float* x;
  __device__ float operator()(int64_t i) const { return x[i]; }
};
struct SwiGLUValue {
  const float* gate;
  const float* up;
  float* out;
  __device__ float operator()(int64_t i) const {
    const float g = gate[i];
    const float v = SiluMul(g, up[i]);
    out[i] = v;
    return v;
  }
};

// The same producers, 8 consecutive values at a time (i a multiple of 8; the
// arrays 16-byte aligned): two 16-byte loads per array instead of eight.
__device__ __forceinline__ void Load8(const float* p, int64_t i, float (&v)[8]) {
  const float4 a = *reinterpret_cast<const float4*>(p + i), b = *reinterpret_cast<const float4*>(p + i + 4);
  v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}
__device__ __forceinline__ void Store8(float* p, int64_t i, const float (&v)[8]) {
  *reinterpret_cast<float4*>(p + i) = make_float4(v[0], v[1], v[2], v[3]);
  *reinterpret_cast<float4*>(p + i + 4) = make_float4(v[4], v[5], v[6], v[7]);
}
struct Plain8 {
  const float* x;
  __device__ void operator()(int64_t i, float (&v)[8]) const { Load8(x, i, v); }
  bool Aligned() const { return reinterpret_cast<uintptr_t>(x) % 16 == 0; }
};
struct SwiGLU8 {
  const float* gate;
  const float* up;
  float* out;
  __device__ void operator()(int64_t i, float (&v)[8]) const {
    float g[8], u[8];
    Load8(gate, i, g);
    Load8(up, i, u);
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = SiluMul(g[j], u[j]);
    Store8(out, i, v);
  }
  bool Aligned() const {
    return (reinterpret_cast<uintptr_t>(gate) | reinterpret_cast<uintptr_t>(up) | reinterpret_cast<uintptr_t>(out)) %
               16 == 0;
  }
};

// One 256-value run per 32 lanes, 8 values per lane (act_quant_device.h,
// QuantizeEightPerLane): total a multiple of 32 (kRule 1) or 256 (kRule 2).
// Used for the Q8_K rule (RunsByDefault) and by the zeroing launches where the
// arrays allow: the one-value-per-thread kernels below need a block-wide
// reduction per Q8_K group (a 32 x 14336 SwiGLU + Q8_K took 7.3 us on the
// H100, 4.5 us here). Also zeroes `zero` (the next GEMM's K-split outputs).
constexpr int kGroupThreads = 64;  // 2 runs a block: a 14336-value row still spreads over 28 SMs
template <int kRule, class Producer>
__global__ void __launch_bounds__(kGroupThreads) QuantizeRunsKernel(Producer f, int64_t total, ActQ8* out,
                                                                   ZeroSpans zero) {
  GridDependencyBegin();
  const int64_t first = (static_cast<int64_t>(blockIdx.x) * kGroupThreads + threadIdx.x) / 32 * 256;
  const int64_t i = first + 8 * (threadIdx.x % 32);
  float v[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  const bool in = i < total;
  if (in) f(i, v);
  if (first < total) QuantizeEightPerLane<kRule>(v, first, in, out);  // warp-uniform
  ZeroSpansGridStride(zero);
}

template <class Producer>
__global__ void QuantizeQ8_0Kernel(Producer f, int64_t total, ActQ8* out) {
  GridDependencyBegin();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const float v = i < total ? f(i) : 0.0f;
  QuantizeQ8_0Value(v, i, i < total, out);
}

// One block = one 256-value Q8_K group (total is a multiple of 256).
template <class Producer>
__global__ void QuantizeQ8_KKernel(Producer f, ActQ8* out) {
  __shared__ AbsMaxArg g_red[kMaxWaves];
  __shared__ float s_max;
  GridDependencyBegin();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const float v = f(i);
  const AbsMaxArg a = WaveAbsMaxArg(AbsMaxArg{fabsf(v), v, static_cast<int>(threadIdx.x)});
  const int lane = threadIdx.x % kWaveSize, wave = threadIdx.x / kWaveSize;
  if (lane == 0) g_red[wave] = a;
  __syncthreads();
  if (threadIdx.x == 0) {
    AbsMaxArg b = g_red[0];
    for (int w = 1; w < static_cast<int>(blockDim.x) / kWaveSize; ++w) b = Better(b, g_red[w]);
    s_max = b.amax == 0.0f ? 0.0f : b.value;
  }
  __syncthreads();
  QuantizeQ8_KValue(v, s_max, i, true, out);
}

// The runs kernel where it applies (whole slices / groups, aligned arrays),
// else the one-value-per-thread kernels. Zeroing needs the runs kernel.
template <class Producer8>
bool LaunchRuns(GgmlType weight_type, Producer8 f, int64_t total, ActQ8* out, const ZeroSpans& zero, Stream s) {
  const int rule = ActivationRule(weight_type);
  if (rule == 0 || total <= 0 || total % (rule == 2 ? 256 : 32) != 0 || !f.Aligned()) return false;
  const int64_t threads = (total + 255) / 256 * 32;
  const unsigned blocks = static_cast<unsigned>((threads + kGroupThreads - 1) / kGroupThreads);
  if (rule == 1) {
    LaunchKernel(QuantizeRunsKernel<1, Producer8>, blocks, kGroupThreads, 0, s, f, total, out, zero);
  } else {
    LaunchKernel(QuantizeRunsKernel<2, Producer8>, blocks, kGroupThreads, 0, s, f, total, out, zero);
  }
  return true;
}

// The runs kernel without zeroing for the Q8_K rule only. H100 (ncu, one
// decode step, 2026-11-26): SwiGLU + Q8_K 3.98 vs 4.15 us at batch 1, 4.47 vs
// 7.35 us for 32 x 14336; Q8_K alone 3.4 vs 3.7 us for 32 x 4096; but
// SwiGLU + Q8_0 at batch 1 3.70 vs 3.58 us, so the Q8_0 rule keeps the
// one-value-per-thread kernel.
bool RunsByDefault(GgmlType weight_type) { return ActivationRule(weight_type) == 2; }

template <class Producer>
void Launch(GgmlType weight_type, Producer f, int64_t total, ActQ8* out, Stream s) {
  if (total == 0) return;
  if (weight_type == GgmlType::Q8_0 || weight_type == GgmlType::Q4_0) {
    LaunchKernel(QuantizeQ8_0Kernel<Producer>, Blocks(total, kThreads), kThreads, 0, s, f, total, out);
  } else {
    LaunchKernel(QuantizeQ8_KKernel<Producer>, static_cast<unsigned>(total / kThreads), kThreads, 0, s,
                 f, out);
  }
}

// The spans alone, for producers that cannot zero them in their own pass.
__global__ void ZeroSpansKernel(ZeroSpans zero) {
  GridDependencyBegin();
  ZeroSpansGridStride(zero);
}

}  // namespace

void LaunchZeroSpans(const ZeroSpans& zero, Stream s) {
  if (zero.n <= 0) return;
  int64_t most = 0;
  for (int k = 0; k < zero.n && k < ZeroSpans::kMax; ++k) most = std::max(most, zero.count[k]);
  if (most == 0) return;
  // 4 floats a thread (16-byte stores where the span allows), at most 1024 blocks.
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(1024, (most / 4 + kThreads - 1) / kThreads + 1));
  LaunchKernel(ZeroSpansKernel, blocks, kThreads, 0, s, zero);
}

// The runs kernel where it must zero (or for the Q8_K rule, RunsByDefault)
// and applies; else the one-value-per-thread kernels, then the zeros apart.
void LaunchQuantizeActivation(GgmlType weight_type, const float* x, int64_t total, void* out, Stream s,
                              const ZeroSpans& zero) {
  if ((zero.n > 0 || RunsByDefault(weight_type)) &&
      LaunchRuns(weight_type, Plain8{x}, total, static_cast<ActQ8*>(out), zero, s)) {
    return;
  }
  Launch(weight_type, Plain{x}, total, static_cast<ActQ8*>(out), s);
  LaunchZeroSpans(zero, s);
}

void LaunchSwiGLUQuantize(const float* gate, const float* up, float* out, int64_t n, GgmlType weight_type, void* xq,
                          Stream s, const ZeroSpans& zero) {
  if ((zero.n > 0 || RunsByDefault(weight_type)) &&
      LaunchRuns(weight_type, SwiGLU8{gate, up, out}, n, static_cast<ActQ8*>(xq), zero, s)) {
    return;
  }
  Launch(weight_type, SwiGLUValue{gate, up, out}, n, static_cast<ActQ8*>(xq), s);
  LaunchZeroSpans(zero, s);
}

}  // namespace rocmforge::gpu
