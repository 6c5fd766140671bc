// MeasureSyncCost (kernels/sync_probe.h): loops of ordering steps with no
// other work, timed with events; the barrier kernels check that every block
// arrived each round (a count that can only be right if the barrier held).
#include "kernels/sync_probe.h"

#include "kernels/launch_util.h"

#if defined(RF_GPU_CUDA)
#include <cooperative_groups.h>
#endif

namespace rocmforge::gpu {

#if defined(RF_GPU_CUDA)
namespace {

constexpr int kThreads = 256;

// Each round every block adds 1 to arrivals[round % 2] after the barrier of
// the round before, so after round r's barrier that slot holds gridDim.x
// (checked by block 0; a wrong count sets *bad).
__global__ void __launch_bounds__(kThreads) GridSyncKernel(int steps, unsigned* arrivals, int* bad) {
  auto grid = cooperative_groups::this_grid();
  for (int r = 0; r < steps; ++r) {
    if (threadIdx.x == 0) atomicAdd(&arrivals[r % 2], 1u);
    grid.sync();
    if (blockIdx.x == 0 && threadIdx.x == 0) {
      if (atomicExch(&arrivals[r % 2], 0u) != gridDim.x) *bad = 1;
    }
  }
}

// The barrier from one monotonically growing counter: round r ends when it
// reaches (r + 1) * gridDim.x; fences order each block's work around it.
__global__ void __launch_bounds__(kThreads) CounterBarrierKernel(int steps, unsigned* counter, int* bad) {
  for (int r = 0; r < steps; ++r) {
    __syncthreads();
    if (threadIdx.x == 0) {
      __threadfence();
      atomicAdd(counter, 1u);
      const unsigned target = static_cast<unsigned>(r + 1) * gridDim.x;
      unsigned seen = 0;
      while ((seen = *static_cast<volatile unsigned*>(counter)) < target) {
      }
      if (seen > target + gridDim.x) *bad = 1;  // a block ran two rounds ahead: no barrier
      __threadfence();
    }
    __syncthreads();
  }
}

__global__ void __launch_bounds__(kThreads) EmptyLinkKernel() { GridDependencyBegin(); }

// ~`cycles` of work a block after the wait (the clock, not memory).
__device__ __forceinline__ void Spin(long long cycles) {
  const long long t0 = clock64();
  while (clock64() - t0 < cycles) {
  }
}
__global__ void __launch_bounds__(kThreads) BusyLinkKernel(long long cycles) {
  GridDependencyBegin();
  Spin(cycles);
}
// The same with dynamic shared memory (touched, so it is really there).
__global__ void __launch_bounds__(kThreads) BusySmemLinkKernel(long long cycles) {
  extern __shared__ unsigned char smem[];
  GridDependencyBegin();
  if (threadIdx.x == 0) smem[0] = 1;
  Spin(cycles);
}
constexpr long long kBusyCycles = 3500;  // ~2 us at the H100's ~1.75 GHz
constexpr size_t kBusySmem = 48 * 1024;

// MeasureSplitChain's shapes: threads a block and dynamic shared memory.
struct LinkShape {
  int threads;
  size_t smem;
};
constexpr LinkShape kLinkShapes[] = {{256, 1024}, {256, 96 * 1024}, {64, 0}};
// One kernel per shape, so the driver keeps a split per kernel.
template <int kShape>
__global__ void __launch_bounds__(kThreads) SplitLinkKernel(long long cycles) {
  extern __shared__ unsigned char smem[];
  GridDependencyBegin();
  if (kLinkShapes[kShape].smem > 0 && threadIdx.x == 0) smem[0] = 1;
  Spin(cycles);
}
void LaunchSplitLink(int shape, int blocks, Stream s) {
  const LinkShape& l = kLinkShapes[shape];
  if (shape == 0) LaunchKernel(SplitLinkKernel<0>, blocks, l.threads, l.smem, s, kBusyCycles);
  if (shape == 1) LaunchKernel(SplitLinkKernel<1>, blocks, l.threads, l.smem, s, kBusyCycles);
  if (shape == 2) LaunchKernel(SplitLinkKernel<2>, blocks, l.threads, l.smem, s, kBusyCycles);
}

double TimeMs(Event a, Event b) {
  float ms = -1.0f;
  if (!EventElapsedMs(a, b, &ms).ok) return -1.0;
  return ms;
}

}  // namespace
#endif

double MeasureSyncCost(SyncProbeKind kind, int blocks, int steps, Stream s) {
#if defined(RF_GPU_CUDA)
  if (blocks <= 0 || steps <= 0) return -1.0;
  Event a = nullptr, b = nullptr;
  if (!EventCreate(&a).ok || !EventCreate(&b).ok) return -1.0;
  double ms = -1.0;
  if (kind == SyncProbeKind::kGridSync || kind == SyncProbeKind::kCounterBarrier) {
    const void* fn = kind == SyncProbeKind::kGridSync ? reinterpret_cast<const void*>(GridSyncKernel)
                                                      : reinterpret_cast<const void*>(CounterBarrierKernel);
    int per_sm = 0;
    (void)cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, fn, kThreads, 0);
    const int fit = per_sm * MultiprocessorCount();
    int grid = blocks < fit ? blocks : fit;
    unsigned* counters = nullptr;
    int* bad = nullptr;
    if (grid > 0 && Malloc(reinterpret_cast<void**>(&counters), 2 * sizeof(unsigned)).ok &&
        Malloc(reinterpret_cast<void**>(&bad), sizeof(int)).ok) {
      (void)Memset(counters, 0, 2 * sizeof(unsigned), s);
      (void)Memset(bad, 0, sizeof(int), s);
      void* args[] = {&steps, &counters, &bad};
      (void)EventRecord(a, s);
      const cudaError_t e = cudaLaunchCooperativeKernel(fn, dim3(grid), dim3(kThreads), args, 0, ToStream(s));
      (void)EventRecord(b, s);
      int host_bad = 1;
      if (e == cudaSuccess && StreamSync(s).ok &&
          cudaMemcpy(&host_bad, bad, sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess && host_bad == 0) {
        ms = TimeMs(a, b);
      }
      (void)cudaGetLastError();
    }
    Free(counters);
    Free(bad);
  } else {
    const bool saved = GetPdl();
    SetPdl(kind != SyncProbeKind::kEmptyKernels);
    const bool busy = kind == SyncProbeKind::kPdlBusyKernels || kind == SyncProbeKind::kPdlBusyKernelsSmemAlternate;
    const bool alternate = kind == SyncProbeKind::kPdlBusyKernelsSmemAlternate;
    GraphExec exec = nullptr;
    if (BeginCapture(s).ok) {
      for (int i = 0; i < steps; ++i) {
        if (!busy) {
          LaunchKernel(EmptyLinkKernel, blocks, kThreads, 0, s);
        } else if (alternate && i % 2 == 1) {
          LaunchKernel(BusySmemLinkKernel, blocks, kThreads, kBusySmem, s, kBusyCycles);
        } else {
          LaunchKernel(BusyLinkKernel, blocks, kThreads, 0, s, kBusyCycles);
        }
      }
      if (EndCapture(s, &exec).ok && GraphLaunch(exec, s).ok && StreamSync(s).ok) {  // warm
        (void)EventRecord(a, s);
        (void)GraphLaunch(exec, s);
        (void)EventRecord(b, s);
        if (StreamSync(s).ok) ms = TimeMs(a, b);
      }
      if (exec != nullptr) GraphDestroy(exec);
    }
    SetPdl(saved);
  }
  EventDestroy(a);
  EventDestroy(b);
  return ms < 0.0 ? -1.0 : ms * 1e3 / steps;
#else
  (void)kind;
  (void)blocks;
  (void)steps;
  (void)s;
  return -1.0;
#endif
}

double MeasureSplitChain(int shape_a, int shape_b, int blocks, int steps, Stream s) {
#if defined(RF_GPU_CUDA)
  if (shape_a < 0 || shape_a > 2 || shape_b < 0 || shape_b > 2 || blocks <= 0 || steps <= 0) return -1.0;
  if (cudaFuncSetAttribute(reinterpret_cast<const void*>(SplitLinkKernel<1>),
                           cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kLinkShapes[1].smem)) !=
      cudaSuccess) {
    (void)cudaGetLastError();
    return -1.0;
  }
  Event a = nullptr, b = nullptr;
  if (!EventCreate(&a).ok || !EventCreate(&b).ok) return -1.0;
  double ms = -1.0;
  const bool saved = GetPdl();
  SetPdl(true);
  GraphExec exec = nullptr;
  if (BeginCapture(s).ok) {
    for (int i = 0; i < steps; ++i) LaunchSplitLink(i % 2 == 0 ? shape_a : shape_b, blocks, s);
    if (EndCapture(s, &exec).ok && GraphLaunch(exec, s).ok && StreamSync(s).ok) {  // warm
      (void)EventRecord(a, s);
      (void)GraphLaunch(exec, s);
      (void)EventRecord(b, s);
      if (StreamSync(s).ok) ms = TimeMs(a, b);
    }
    if (exec != nullptr) GraphDestroy(exec);
  }
  SetPdl(saved);
  (void)cudaGetLastError();
  EventDestroy(a);
  EventDestroy(b);
  return ms < 0.0 ? -1.0 : ms * 1e3 / steps;
#else
  (void)shape_a;
  (void)shape_b;
  (void)blocks;
  (void)steps;
  (void)s;
  return -1.0;
#endif
}

}  // namespace rocmforge::gpu
