// Weight prefetch into L2 on a side stream (gpu_api.h, "L2 prefetch"): while
// a latency-bound kernel (attention, a norm, SwiGLU) leaves DRAM idle on the
// main stream, one small block on a forked stream asks L2 for the next
// matvec's weights, so that matvec starts on L2 hits. The prefetch reads
// weights only (constant during a step) and writes nothing, so it cannot
// change any result; only the fork / join events order it.
#include <algorithm>
#include <atomic>
#include <string>

#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"

namespace rocmforge::gpu {
namespace {

#if defined(RF_GPU_CUDA)
constexpr int kPrefetchThreads = 128;
// The one-block form's bulk prefetch (SetL2PrefetchChunk(0)).
constexpr uint32_t kOneBlockChunk = 64 * 1024;

// gridDim.x x kPrefetchThreads threads, each asking for `chunk` bytes at a
// time, strided over [p, p + bytes).
__global__ void __launch_bounds__(kPrefetchThreads)
    PrefetchL2Kernel(const char* __restrict__ p, size_t bytes, uint32_t chunk) {
#if defined(RF_GPU_CUDA) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const size_t stride = static_cast<size_t>(gridDim.x) * kPrefetchThreads * chunk;
  for (size_t off = (static_cast<size_t>(blockIdx.x) * kPrefetchThreads + threadIdx.x) * chunk; off < bytes;
       off += stride) {
    // Multiples of 16 bytes from a 16-byte aligned start (the caller's contract).
    const uint32_t n = static_cast<uint32_t>(std::min<size_t>(chunk, bytes - off)) & ~15u;
    if (n != 0) {
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(p + off), "r"(n) : "memory");
    }
  }
#else
  (void)p;
  (void)bytes;
  (void)chunk;
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

namespace {
// Bytes a thread asks for in one bulk prefetch (0: the one-block form).
// 4 KiB: 512 KiB a block, ~19 blocks for a 9.4 MB matrix (tg128 Q4_K_M on the
// H100, 2026-11-27: 64 KiB in one block moved ~0.25 TB/s and lost 1-2%; a grid
// of 4 KiB prefetches +2.9%, of 2 KiB +1.5%; docs/gpu.md).
std::atomic<uint32_t> g_chunk{4096};
// On by default: never slower on the H100 (tg128 Q4_K_M, bench/RESULTS.md
// session 24: 2.291 -> 2.273 ms a token over four pairs in one call, equal
// in the next, 2.250-2.252 against 2.248-2.289; equal at 16 MB windows).
std::atomic<bool> g_high_priority{true};
}  // namespace

bool L2PrefetchWorks() {
#if defined(RF_GPU_CUDA)
  return DeviceRunsSm90Code();
#else
  return false;
#endif
}

void SetL2PrefetchChunk(uint32_t bytes) { g_chunk.store(bytes & ~15u, std::memory_order_relaxed); }
uint32_t GetL2PrefetchChunk() { return g_chunk.load(std::memory_order_relaxed); }
void SetL2PrefetchHighPriority(bool on) { g_high_priority.store(on, std::memory_order_relaxed); }
bool GetL2PrefetchHighPriority() { return g_high_priority.load(std::memory_order_relaxed); }

void LaunchPrefetchL2(const void* p, size_t bytes, Stream s) {
#if defined(RF_GPU_CUDA)
  bytes &= ~static_cast<size_t>(15);
  if (p == nullptr || bytes == 0 || reinterpret_cast<uintptr_t>(p) % 16 != 0) return;
  const uint32_t grid_chunk = GetL2PrefetchChunk();
  const uint32_t chunk = grid_chunk != 0 ? grid_chunk : kOneBlockChunk;
  const size_t per_block = static_cast<size_t>(kPrefetchThreads) * chunk;
  const size_t blocks = grid_chunk != 0 ? (bytes + per_block - 1) / per_block : 1;
  if (GetL2PrefetchHighPriority()) {
    // Asked once: the range is the same on every device (0 down to -5 on the
    // H100), and decode steps without graphs launch this ~100 times a token.
    static const int greatest = [] {
      int p = 0;
      (void)HighestStreamPriority(&p);
      return p;
    }();
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(static_cast<unsigned>(blocks));
    cfg.blockDim = dim3(kPrefetchThreads);
    cfg.stream = ToStream(s);
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributePriority;
    attr[0].val.priority = greatest;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    (void)cudaLaunchKernelEx(&cfg, PrefetchL2Kernel, static_cast<const char*>(p), bytes, chunk);
    return;
  }
  PrefetchL2Kernel<<<static_cast<unsigned>(blocks), kPrefetchThreads, 0, ToStream(s)>>>(
      static_cast<const char*>(p), bytes, chunk);
#else
  (void)p;  // AMD: no L2 prefetch instruction worth a launch
  (void)bytes;
  (void)s;
#endif
}

}  // namespace rocmforge::gpu
