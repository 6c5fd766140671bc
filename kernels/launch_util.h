// Small helpers shared by the launchers in kernels/*.hip.
#pragma once

#include <cstdint>

#include "kernels/gpu_api.h"
#include "kernels/gpu_runtime.h"

namespace rocmforge::gpu {

inline hipStream_t ToStream(Stream s) { return static_cast<hipStream_t>(s); }
inline unsigned Blocks(int64_t n, int per_block) {
  return static_cast<unsigned>((n + per_block - 1) / per_block);
}

}  // namespace rocmforge::gpu
