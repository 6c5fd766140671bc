// silu(g) * u, the one SwiGLU expression of every kernel that produces it (the
// separate kernel, the fused activation quantizers, the dense GEMMs' epilogues):
// the fused paths are tested bit for bit against the separate ones, so they must
// compute the same float.
#pragma once

#include "kernels/gpu_runtime.h"

namespace rocmforge::gpu {

__device__ __forceinline__ float SiluMul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

}  // namespace rocmforge::gpu
