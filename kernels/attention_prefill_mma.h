// The matrix-core prefill tile kernel (kernels/attention_prefill_mma.hip):
// internal to the attention launchers, not part of the host API.
#pragma once

#include "kernels/gpu_api.h"
#include "kernels/gpu_runtime.h"

namespace rocmforge::gpu::attn {

// Same contract as LaunchPrefillTileAttention (attention_device.h): the same
// grid (query-head chunks of per_block heads, tiles, splits), rows, causal mask,
// splits and outputs, computed on mma:: tiles (f16 Q, K, V and P; f32
// accumulation). head_dim 64 or 128; per_block = GroupedHeadsPerBlock(group).
// Only for devices with matrix cores (DeviceHasMatrixCores): it compiles
// everywhere, but the portable mma:: fallback is slower than the SIMT kernel.
void LaunchPrefillTileMma(dim3 grid, int per_block, const float* q, float* out,
                          const AttnBatch& b, int n_heads, int n_kv_heads, int head_dim,
                          float scale, const __half* k_cache, const __half* v_cache,
                          int block_size, float* partials, hipStream_t s);

}  // namespace rocmforge::gpu::attn
