// Quantizes float activations to int8 slices of 32 values (ActQ8) for the int8
// dot-product matmul path, with exactly the CPU reference's rules
// (engine/gguf/quant_*.cc), so GPU and CPU dot the same integers:
//  * legacy weights (Q8_0, Q4_0) pair with Q8_0 activations: per 32 values
//    d = amax / 127 stored as f16, q = round(x / d) (half away from zero);
//  * k-quant weights pair with Q8_K activations: per 256 values
//    iscale = -127 / max (max = the value of largest magnitude),
//    q = clamp(round-half-even(iscale * x), -127, 127), d = 1 / iscale.
// Each ActQ8 slice carries its d and s = d * sum(q).
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/quant_device.h"

namespace rocmforge::gpu {
namespace {

constexpr int kThreads = 256;  // one thread per value; one Q8_K group per block

// Max of |v| over 32 consecutive threads (a wave of 64 holds two such groups).
__device__ __forceinline__ float Max32(float v) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v = fmaxf(v, WaveShflXor(v, m));
  return v;
}
__device__ __forceinline__ int Sum32(int v) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v += WaveShflXor(v, m);
  return v;
}

__global__ void QuantizeQ8_0Kernel(const float* x, int64_t total, ActQ8* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const float v = i < total ? x[i] : 0.0f;
  const float amax = Max32(fabsf(v));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const int q = static_cast<int>(roundf(v * id));
  const float d16 = __half2float(__float2half(d));  // the CPU keeps d as f16
  const int qsum = Sum32(q);
  if (i < total) {
    ActQ8& b = out[i / 32];
    b.qs[i % 32] = static_cast<int8_t>(q);
    if (i % 32 == 0) {
      b.d = d16;
      b.s = d16 * static_cast<float>(qsum);
    }
  }
}

// One block = one 256-value Q8_K group (total is a multiple of 256).
__global__ void QuantizeQ8_KKernel(const float* x, ActQ8* out) {
  __shared__ float g_amax[kMaxWaves], g_max[kMaxWaves];
  __shared__ float s_max;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const float v = x[i];
  // Value of largest magnitude, first one on ties (as the CPU's scan).
  float amax = fabsf(v), mx = v;
  int first = threadIdx.x;
#pragma unroll
  for (int m = kWaveSize / 2; m > 0; m >>= 1) {
    const float oa = WaveShflXor(amax, m), om = WaveShflXor(mx, m);
    const int of = WaveShflXor(first, m);
    if (oa > amax || (oa == amax && of < first)) {
      amax = oa;
      mx = om;
      first = of;
    }
  }
  const int lane = threadIdx.x % kWaveSize, wave = threadIdx.x / kWaveSize;
  __shared__ int g_first[kMaxWaves];
  if (lane == 0) {
    g_amax[wave] = amax;
    g_max[wave] = mx;
    g_first[wave] = first;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float ba = g_amax[0], bm = g_max[0];
    int bf = g_first[0];
    for (int w = 1; w < static_cast<int>(blockDim.x) / kWaveSize; ++w) {
      if (g_amax[w] > ba || (g_amax[w] == ba && g_first[w] < bf)) {
        ba = g_amax[w];
        bm = g_max[w];
        bf = g_first[w];
      }
    }
    s_max = ba == 0.0f ? 0.0f : bm;
  }
  __syncthreads();
  const float m = s_max;
  int q = 0;
  float d = 0.0f;
  if (m != 0.0f) {
    const float iscale = -127.0f / m;
    q = min(127, max(-127, __float2int_rn(iscale * v)));
    d = 1.0f / iscale;
  }
  const int qsum = Sum32(q);
  ActQ8& b = out[i / 32];
  b.qs[i % 32] = static_cast<int8_t>(q);
  if (i % 32 == 0) {
    b.d = d;
    b.s = d * static_cast<float>(qsum);
  }
}

}  // namespace

void LaunchQuantizeActivation(GgmlType weight_type, const float* x, int64_t total, void* out,
                              Stream s) {
  auto* o = static_cast<ActQ8*>(out);
  if (weight_type == GgmlType::Q8_0 || weight_type == GgmlType::Q4_0) {
    QuantizeQ8_0Kernel<<<Blocks(total, kThreads), kThreads, 0, ToStream(s)>>>(x, total, o);
  } else {
    QuantizeQ8_KKernel<<<static_cast<unsigned>(total / kThreads), kThreads, 0, ToStream(s)>>>(x, o);
  }
}

}  // namespace rocmforge::gpu
