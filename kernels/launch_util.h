// Small helpers shared by the launchers in kernels/*.hip.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/gpu_api.h"
#include "kernels/gpu_runtime.h"

namespace rocmforge::gpu {

inline hipStream_t ToStream(Stream s) { return static_cast<hipStream_t>(s); }
inline unsigned Blocks(int64_t n, int per_block) {
  return static_cast<unsigned>((n + per_block - 1) / per_block);
}

// Whether the current device is NVIDIA sm_90+ running rf_kernels code built
// for it (PDL, mbarriers, bulk copies); false on AMD. Asked once per device.
// kernels/runtime.hip.
bool DeviceRunsSm90Code();

// Whether LaunchKernel launches with programmatic dependent launch now: SetPdl
// is on (gpu_api.h) and the device and the compiled device code support it
// (NVIDIA sm_90 or later; never on AMD). kernels/runtime.hip.
bool PdlActive();

// The current device's highest stream priority (numerically the least: both
// vendors count down from 0), for high-priority streams and launches.
// kernels/runtime.hip.
GpuStatus HighestStreamPriority(int* priority);

// Sets kernel's preferred shared-memory carveout to GetSmemCarveout() when it
// differs from what this process last set for it (kernels/runtime.hip).
void ApplySmemCarveout(const void* kernel);

// Launches kernel<<<grid, block, smem, s>>>(args...), with programmatic stream
// serialization while PdlActive(): the kernel may then start before the
// previous kernel in the stream has finished, so it MUST follow the contract
// of GridDependencyWait (kernels/gpu_runtime.h). Inside stream capture the
// launch becomes a programmatic edge of the graph. Errors surface through
// LastLaunchError, as for <<<>>>.
template <typename... KernelArgs, typename... Args>
inline void LaunchKernel(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem,
                         Stream s, Args... args) {
#if defined(RF_GPU_CUDA)
  ApplySmemCarveout(reinterpret_cast<const void*>(kernel));
  if (PdlActive()) {
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = ToStream(s);
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    (void)cudaLaunchKernelEx(&cfg, kernel, static_cast<KernelArgs>(args)...);
    return;
  }
#endif
  kernel<<<grid, block, smem, ToStream(s)>>>(static_cast<KernelArgs>(args)...);
}

}  // namespace rocmforge::gpu
