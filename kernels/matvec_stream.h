// Batch-1 quantized matrix x vector fed by bulk copies (NVIDIA sm_90+; the
// launch reports "not taken" elsewhere). kernels/matvec_stream.hip says how it
// works; kernels/matmul_small_batch.hip calls it before its portable kernels.
#pragma once

#include <cstdint>

#include "kernels/gpu_api.h"
#include "kernels/matvec_rope_kv_epilogue.h"

namespace rocmforge::gpu {

// y = W x for each part (parts[i].y[r] = row r of parts[i].w . x), all parts
// of `type` and width `cols`, x quantized as ActivationRule(type) says (xq),
// with the RoPE + KV store epilogue when epi.on. Returns false, having
// launched nothing, where the kernel does not apply: settings (c.stream != 1:
// it is an option, off by default), no sm_90 device or code,
// a type other than Q4_0 / Q8_0 / Q4_K / Q5_K / Q6_K, cols not a whole number
// of the type's 32-lane units (1024 or 2048 weights), a weight not 16-byte
// aligned, or (epilogue) a part with an odd number of rows.
bool LaunchMatVecStream(GgmlType type, const MatVecPart* parts, int n_parts, int64_t cols,
                        const void* xq, const RopeKvEpi& epi, const MatVecConfig& c, Stream s);

// Whether LaunchMatVecStream would take these parts under `c` (same conditions;
// gpu_api.h's MatVecStreamTakes asks it under the current settings).
bool StreamKernelTakes(GgmlType type, const MatVecPart* parts, int n_parts, int64_t cols,
                       bool epilogue, const MatVecConfig& c);

}  // namespace rocmforge::gpu
