// Matrix-core rate probe (benchmarks only, bench_gpu_kernels `mma_rate`).
//
// Why: the int8 MMQ GEMM (kernels/matmul_mmq.hip) at 64..128 tokens slowed
// down when it traded integer multiply-adds for twice the mma.sync products,
// so the question for its next version (wgmma or not) is how many products
// mma.sync completes on this device at best. This measures it with a loop of
// independent products (8 accumulator chains a warp, 8 warps a block, 4 blocks
// an SM) and no memory traffic.
#pragma once

#include "kernels/gpu_api.h"

namespace rocmforge::gpu {

enum class MmaRateKind {
  kInt8M16N8K32,         // mma.sync s8 x s8 -> s32
  kF16M16N8K16,          // mma.sync f16 x f16 -> f32
  kInt8WgmmaM64N128K32,  // wgmma s8 x s8 -> s32, A from registers, B in shared memory (sm_90a)
};

// Tera-operations per second (a multiply-add counts 2) of `iters` rounds of
// products on every SM, timed with events on `s` (blocks until done); 0 where
// the target (or the loaded code: wgmma needs the sm_90a build of this file)
// has no such instruction (AMD for now).
double MeasureMmaRate(MmaRateKind kind, int iters, Stream s);

}  // namespace rocmforge::gpu
