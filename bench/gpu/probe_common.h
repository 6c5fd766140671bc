// Helpers shared by the stand-alone CUDA probes (bench/gpu/probe_*.hip; NVIDIA
// only, never built by CI): a warp sum, an acquire load for flags and barrier
// counters, a launch with programmatic dependent launch, random Q4_K weights
// with sane scales and random int8 activations.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "bench/gpu/probe_cuda_check.h"
#include "kernels/quant_device.h"

namespace rocmforge::probe {

// The sum of v over the 32 lanes of a full warp, in every lane.
__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// *p read with acquire semantics at device scope (pairs with a release
// store or reduction by another block).
__device__ __forceinline__ unsigned LoadAcquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// kernel<<<grid, block, 0, s>>>(args...) with programmatic stream
// serialization allowed (the kernel may start before the previous one in s
// ends; it waits in griddepcontrol.wait). Errors end the probe (CHECK).
template <typename... KArgs, typename... Args>
void LaunchPdl(void (*kernel)(KArgs...), unsigned grid, unsigned block, cudaStream_t s, Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(grid);
  cfg.blockDim = dim3(block);
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  CHECK(cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...));
}

// `rows` Q4_K rows of `row_bytes` (144 bytes a 256-value block) of random
// bytes, each block's d and dmin set to small positive halves so no sum is
// NaN or infinite.
inline void FillRandomQ4K(std::vector<uint8_t>& host, int64_t rows, int64_t row_bytes, std::mt19937& rng) {
  host.resize(static_cast<size_t>(rows * row_bytes));
  for (auto& b : host) b = static_cast<uint8_t>(rng());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < row_bytes / 144; ++b) {
      uint8_t* blk = host.data() + r * row_bytes + b * 144;
      const uint16_t d = static_cast<uint16_t>(0x1800 + rng() % 0x0400);
      const uint16_t dm = static_cast<uint16_t>(0x1800 + rng() % 0x0400);
      std::memcpy(blk, &d, 2);
      std::memcpy(blk + 2, &dm, 2);
    }
  }
}

// `slices` activation blocks of 32 random int8 values in [-127, 127]; each
// block's scale is d() (called after its values are drawn) and s = d * sum.
template <typename D>
std::vector<gpu::ActQ8> RandomActQ8(int64_t slices, std::mt19937& rng, D d) {
  std::vector<gpu::ActQ8> xs(static_cast<size_t>(slices));
  for (auto& a : xs) {
    int sum = 0;
    for (auto& q : a.qs) {
      q = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
      sum += q;
    }
    a.d = d();
    a.s = a.d * static_cast<float>(sum);
  }
  return xs;
}

}  // namespace rocmforge::probe
