// Weight prefetch into L2 on a side stream (gpu_api.h, "L2 prefetch"): while
// a latency-bound kernel (attention, a norm, SwiGLU) leaves DRAM idle on the
// main stream, one small block on a forked stream asks L2 for the next
// matvec's weights, so that matvec starts on L2 hits. The prefetch reads
// weights only (constant during a step) and writes nothing, so it cannot
// change any result; only the fork / join events order it.
#include <algorithm>
#include <string>

#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"

namespace rocmforge::gpu {
namespace {

#if defined(RF_GPU_CUDA)
constexpr int kPrefetchThreads = 128;
// Bytes one bulk prefetch asks for: the hardware splits it; a few hundred of
// them cover the largest slice we ask for.
constexpr uint32_t kChunk = 64 * 1024;

__global__ void __launch_bounds__(kPrefetchThreads)
    PrefetchL2Kernel(const char* __restrict__ p, size_t bytes) {
#if defined(RF_GPU_CUDA) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  for (size_t off = static_cast<size_t>(threadIdx.x) * kChunk; off < bytes;
       off += static_cast<size_t>(kPrefetchThreads) * kChunk) {
    // Multiples of 16 bytes from a 16-byte aligned start (the caller's contract).
    const uint32_t n = static_cast<uint32_t>(std::min<size_t>(kChunk, bytes - off)) & ~15u;
    if (n != 0) {
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(p + off), "r"(n) : "memory");
    }
  }
#else
  (void)p;
  (void)bytes;
#endif
}
#endif  // RF_GPU_CUDA

GpuStatus Check(hipError_t e, const char* what) {
  if (e == hipSuccess) return {};
  return GpuStatus{false, std::string(what) + " failed: " + hipGetErrorString(e)};
}

}  // namespace

GpuStatus EventCreateNoTiming(Event* e) {
  hipEvent_t ev = nullptr;
  GpuStatus r = Check(hipEventCreateWithFlags(&ev, hipEventDisableTiming), "event create");
  *e = ev;
  return r;
}

GpuStatus StreamWaitEvent(Stream s, Event e) {
  return Check(hipStreamWaitEvent(ToStream(s), static_cast<hipEvent_t>(e), 0), "stream wait event");
}

void LaunchPrefetchL2(const void* p, size_t bytes, Stream s) {
#if defined(RF_GPU_CUDA)
  bytes &= ~static_cast<size_t>(15);
  if (p == nullptr || bytes == 0 || reinterpret_cast<uintptr_t>(p) % 16 != 0) return;
  PrefetchL2Kernel<<<1, kPrefetchThreads, 0, ToStream(s)>>>(static_cast<const char*>(p), bytes);
#else
  (void)p;  // AMD: no L2 prefetch instruction worth a launch
  (void)bytes;
  (void)s;
#endif
}

}  // namespace rocmforge::gpu
