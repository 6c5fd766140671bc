// Philox4x32-10 counter-based random numbers (Salmon et al., SC'11), the
// generator rocRAND and cuRAND use. Counter-based means the n-th random number
// of a sequence is a pure function of (seed, n): the CPU sampler, the GPU
// sampler and a worker that resumes a stream after failover all draw the same
// number for the same generated-token index.
#pragma once

#include <cstdint>

#if defined(__HIPCC__) || defined(__CUDACC__)
#define RF_HOST_DEVICE __host__ __device__
#else
#define RF_HOST_DEVICE
#endif

namespace rocmforge {

struct Philox4x32 {
  uint32_t v[4];
};

RF_HOST_DEVICE inline Philox4x32 Philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                               uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += kW0; k1 += kW1;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

// Uniform float in [0, 1) for generated-token index `step` of a sequence
// seeded with `seed`. This is THE definition both samplers use.
RF_HOST_DEVICE inline float SampleUniform(uint64_t seed, uint64_t step) {
  const Philox4x32 r = Philox4x32_10(static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32),
                                     0u, 0u, static_cast<uint32_t>(seed),
                                     static_cast<uint32_t>(seed >> 32));
  return static_cast<float>(r.v[0] >> 8) * (1.0f / 16777216.0f);
}

}  // namespace rocmforge
