// Shared-memory mbarriers and bulk copies (NVIDIA sm_90+ device code only):
// the handful of PTX wrappers that the Hopper kernels (the dense wgmma GEMM,
// the bulk-copy matrix x vector) use to stream global memory into shared
// memory. A barrier is a 64-bit word in shared memory, addressed by its 32-bit
// shared-window address (__cvta_generic_to_shared). Not available elsewhere:
// callers guard their use with RF_MBARRIER_AVAILABLE.
#pragma once

#include <cstdint>

#include "kernels/gpu_runtime.h"

#if defined(RF_GPU_CUDA) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define RF_MBARRIER_AVAILABLE 1

namespace rocmforge::gpu {

// `count` arrivals complete a phase (plus any transaction bytes expected).
__device__ __forceinline__ void MbarInit(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// Makes initialized barriers visible to the copy engine (the async proxy).
__device__ __forceinline__ void MbarInitFence() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
// Spins until the phase with this parity has completed. A fresh barrier
// counts its (complete) previous phase as parity 1.
__device__ __forceinline__ void MbarWait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred p;\nWAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
      "@!p bra WAIT;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
__device__ __forceinline__ void MbarArrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// One arrival that also expects `bytes` more of copies to land.
__device__ __forceinline__ void MbarExpectTx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
// Orders this thread's earlier shared-memory accesses (generic proxy) before
// later copies into that memory (async proxy): before refilling a buffer.
__device__ __forceinline__ void FenceProxyAsyncShared() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
// Copies `bytes` (a multiple of 16; both addresses 16-byte aligned) from
// global memory into this block's shared memory at `dst`; the bytes count
// toward `bar`'s expected transactions.
__device__ __forceinline__ void BulkCopyToShared(uint32_t dst, const void* src, uint32_t bytes,
                                                 uint32_t bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
      "l"(src), "r"(bytes), "r"(bar)
      : "memory");
}

}  // namespace rocmforge::gpu
#endif
