// Helpers shared by the stand-alone CUDA probes (bench/gpu/probe_*.hip; NVIDIA
// only, never built by CI): a warp sum, an acquire load for flags and barrier
// counters, and random Q4_K weights with sane scales.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

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

}  // namespace rocmforge::probe
