// Hopper (sm_90a) dense f16 GEMM for prefill: TMA loads into 128-byte-swizzled
// shared memory on mbarriers, wgmma from shared memory, one producer warp and
// two consumer warpgroups (kernels/matmul_dense_wgmma.hip). Internal to
// kernels/: LaunchGemmF16 / LaunchGemmF16SwiGLU (kernels/matmul_dense.hip) call
// these while SetDenseWgmma is on. Each returns false ("not taken": the caller
// falls back to the mma.sync kernel) where the path is not available: not an
// NVIDIA build, not an sm_90 device, no cuTensorMapEncodeTiled, operands not
// 16-byte aligned or cols % 8 != 0, or the device refuses the shared memory.
#pragma once

#include <cstdint>

#include "kernels/gpu_api.h"

namespace rocmforge::gpu {

// Whether the device (current at the first call) can run the wgmma GEMM
// (NVIDIA compute capability 9.x and the driver's tensor-map encoder). Cached.
bool DenseWgmmaAvailable();

// Row tile of the wgmma GEMM for tests and benchmark sweeps: 0 = automatic
// (a wave cost model), 128, 224 or 256 forced (RF_DENSE_WGMMA_TILE sets it at
// start-up). Global; read at each launch.
void SetDenseWgmmaTile(int bn);
int GetDenseWgmmaTile();
// The SwiGLU epilogue: staged through shared memory and written as whole rows
// (on, the default) or stored from the accumulators directly (off).
// RF_DENSE_WGMMA_STAGED=0|1 sets it at start-up. Global; read at each launch.
void SetDenseWgmmaStagedSwiGLU(bool on);
bool GetDenseWgmmaStagedSwiGLU();

// y[n][rows] (f32) = x16[n][cols] . w16[rows][cols]^T, f32 accumulation.
// splits_hint: K splits (0 = automatic: only for grids short of one wave,
// partial sums added into y zeroed by a memset; 1 = none).
bool LaunchGemmF16Wgmma(const uint16_t* w16, int64_t rows, int64_t cols, const uint16_t* x16, float* y, int n,
                        int splits_hint, Stream s);

// LaunchGemmF16SwiGLU's contract: rows 2i / 2i + 1 of w16 are gate / up of FFN
// column i; out[n][rows / 2] = silu(g) * u, out16 the same as f16 (round to
// nearest even), g / u into gate / up where not null. Never K-split.
bool LaunchGemmF16SwiGLUWgmma(const uint16_t* w16, int64_t rows, int64_t cols, const uint16_t* x16, float* out,
                              uint16_t* out16, float* gate, float* up, int n, Stream s);

}  // namespace rocmforge::gpu
