// Quantizes float activations to 32-value int8 blocks (ActQ8) for the int8
// dot-product matmul path: one wave-sized group of threads per block.
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/quant_device.h"

namespace rocmforge::gpu {

constexpr int kQuantThreads = 256;

// One thread per value; 32 consecutive threads form one block (a wave of 64
// holds two blocks, so the reductions use 32-lane groups explicitly).
__global__ void QuantizeActKernel(const float* x, int64_t total, ActQ8* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const float v = i < total ? x[i] : 0.0f;
  float amax = fabsf(v);
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) amax = fmaxf(amax, WaveShflXor(amax, m));
  const float d = amax / 127.0f;
  const int q = d > 0.0f ? __float2int_rn(v / d) : 0;
  int qsum = q;
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) qsum += WaveShflXor(qsum, m);
  if (i < total) {
    ActQ8& b = out[i / 32];
    b.qs[i % 32] = static_cast<int8_t>(q);
    if (i % 32 == 0) {
      b.d = d;
      b.s = d * static_cast<float>(qsum);
    }
  }
}

void LaunchQuantizeActivation(const float* x, int64_t total, void* out, Stream s) {
  QuantizeActKernel<<<Blocks(total, kQuantThreads), kQuantThreads, 0, ToStream(s)>>>(
      x, total, static_cast<ActQ8*>(out));
}

}  // namespace rocmforge::gpu
