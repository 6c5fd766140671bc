// The RMSNorm of one row held in registers, shared by the norm kernels
// (kernels/rmsnorm.hip) and the batch-1 matvec that normalizes its own input
// (kernels/matvec_stream.hip): every user forms the row's sum of squares in
// the same order, so their norms agree bit for bit whatever their block size.
#pragma once

#include "kernels/gpu_runtime.h"

namespace rocmforge::gpu {

// Rows of up to kRegThreads * kRegPer values keep them in registers: every load
// of the row is issued before the first use, instead of a loop of dependent
// round trips per thread (a 4096-wide decode row took ~11 us that way).
constexpr int kRegThreads = 512;
constexpr int kRegPer = 16;

// The register-resident rows are normalized as a block of kRegThreads threads
// would: value i in (virtual) thread i % kRegThreads, register i / kRegThreads.
// A block of kThreads < kRegThreads threads plays kRegThreads / kThreads of
// those threads each (thread t is virtual threads t + kThreads * j), so every
// user gets the same sum of squares, bit for bit, whatever its block.

// Loads a row (x or the residual) into v[j][k] = p[i] at i = t + kThreads * j
// + kRegThreads * k (0 past dim). Callers issue all their loads before the
// first arithmetic on any (AddRows after them): with the residual adds between
// the loads of x and those of the weights, the weights' loads waited for them
// (H100, ncu, a 4096-wide row with the residual add: 5.8 us instead of 4.05
// for the norm alone, 8.6 instead of 5.9 with Q8_0; all loads first: 3.9).
template <int kThreads>
__device__ __forceinline__ void LoadRowVirtual(const float* p, int dim,
                                               float (&v)[kRegThreads / kThreads][kRegPer]) {
  static_assert(kRegThreads % kThreads == 0);
#pragma unroll
  for (int j = 0; j < kRegThreads / kThreads; ++j) {
#pragma unroll
    for (int k = 0; k < kRegPer; ++k) {
      const int i = static_cast<int>(threadIdx.x) + kThreads * j + k * kRegThreads;
      v[j][k] = i < dim ? p[i] : 0.0f;
    }
  }
}
// v += r (x + residual; 0 + 0 past dim).
template <int kV>
__device__ __forceinline__ void AddRows(float (&v)[kV][kRegPer], const float (&r)[kV][kRegPer]) {
#pragma unroll
  for (int j = 0; j < kV; ++j) {
#pragma unroll
    for (int k = 0; k < kRegPer; ++k) v[j][k] += r[j][k];
  }
}

// 1 / rms of the row in v (LoadRowVirtual): the sum of squares of a
// kRegThreads-thread block, i.e. per virtual thread over its registers, then
// BlockSum's order (the wave sums, then the sum over the kRegThreads /
// kWaveSize waves). Every thread gets it. Contains __syncthreads.
template <int kThreads>
__device__ __forceinline__ float RowInvRms(const float (&v)[kRegThreads / kThreads][kRegPer], int dim, float eps,
                                           float* scratch) {
  constexpr int kV = kRegThreads / kThreads;
  static_assert(kThreads % kWaveSize == 0 && kRegThreads / kWaveSize <= kWaveSize);
  const int lane = threadIdx.x % kWaveSize, wave = threadIdx.x / kWaveSize;
  float ss[kV];
#pragma unroll
  for (int j = 0; j < kV; ++j) {
    ss[j] = 0.0f;
#pragma unroll
    for (int k = 0; k < kRegPer; ++k) ss[j] = fmaf(v[j][k], v[j][k], ss[j]);
  }
#pragma unroll
  for (int j = 0; j < kV; ++j) ss[j] = WaveSum(ss[j]);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) {
#pragma unroll
    for (int j = 0; j < kV; ++j) scratch[wave + (kThreads / kWaveSize) * j] = ss[j];
  }
  __syncthreads();
  const float total = WaveSum(lane < kRegThreads / kWaveSize ? scratch[lane] : 0.0f);
  return rsqrtf(total / dim + eps);
}

}  // namespace rocmforge::gpu
