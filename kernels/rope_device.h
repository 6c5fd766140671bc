// The rotation of one RoPE pair, shared by the stand-alone RoPE kernel and the
// fused RoPE + KV store kernel so both produce the same floats.
#pragma once

#include "kernels/gpu_runtime.h"

namespace rocmforge::gpu {

// Element offsets (within a head) of rotated pair i: NORM (GGUF 'llama')
// rotates adjacent (2i, 2i+1), NEOX rotates (i, i + rot_dim/2).
__device__ __forceinline__ void RopePairOffsets(int i, int rot_dim, bool neox, int* a, int* b) {
  const int half = rot_dim / 2;
  *a = neox ? i : 2 * i;
  *b = neox ? i + half : 2 * i + 1;
}

// Rotates (x0, x1) of pair i at position `pos`:
// theta_i = pos * base^(-2i/rot_dim), as ggml computes it, in float from the
// integer position so positions far beyond 2048 keep their precision.
__device__ __forceinline__ void RopeRotate(int pos, int i, int rot_dim, float freq_base, float* x0,
                                           float* x1) {
  const float theta = static_cast<float>(pos) * powf(freq_base, -2.0f * i / rot_dim);
  float sn, cs;
  sincosf(theta, &sn, &cs);
  const float a = *x0, b = *x1;
  *x0 = a * cs - b * sn;
  *x1 = a * sn + b * cs;
}

}  // namespace rocmforge::gpu
