// Host runtime wrappers of gpu_api.h: device memory, streams, events, graphs.
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>

#include "kernels/gpu_api.h"
#include "kernels/gpu_runtime.h"
#include "kernels/launch_util.h"

#if defined(RF_GPU_CUDA)
#include <cuda_profiler_api.h>
#else
#include "kernels/mma_layout.h"
#endif

namespace rocmforge::gpu {
namespace {

GpuStatus Check(hipError_t e, const char* what) {
  if (e == hipSuccess) return {};
  return GpuStatus{false, std::string(what) + " failed: " + hipGetErrorString(e)};
}
hipStream_t S(Stream s) { return static_cast<hipStream_t>(s); }

// A yes/no property of the current device, asked once per device (the first
// kCachedDevices devices): `ask(device)` answers kFlagYes, kFlagNo or
// kFlagUnknown (the query failed: answered no and not cached, so a later call
// asks again). Races only repeat the question.
constexpr int kFlagUnknown = 0, kFlagYes = 1, kFlagNo = 2;
constexpr int kCachedDevices = 64;
using DeviceFlagCache = std::atomic<int>[kCachedDevices];
template <class Ask>
bool PerDeviceFlag(DeviceFlagCache& cache, Ask ask) {
  int device = 0;
  if (hipGetDevice(&device) != hipSuccess) {
    (void)hipGetLastError();
    return false;
  }
  const bool cacheable = device >= 0 && device < kCachedDevices;
  if (cacheable) {
    const int known = cache[device].load(std::memory_order_relaxed);
    if (known != kFlagUnknown) return known == kFlagYes;
  }
  const int answer = ask(device);
  if (answer == kFlagUnknown) {
    (void)hipGetLastError();
    return false;
  }
  if (cacheable) cache[device].store(answer, std::memory_order_relaxed);
  return answer == kFlagYes;
}

}  // namespace

const char* RuntimeName() {
#if defined(RF_GPU_CUDA)
  return "cuda";
#else
  return "hip";
#endif
}

GpuStatus DeviceCount(int* count) {
  *count = 0;
  const hipError_t e = hipGetDeviceCount(count);
  if (e != hipSuccess) {
    (void)hipGetLastError();  // "no device" is an answer, not a sticky error
    *count = 0;
    return Check(e, "hipGetDeviceCount");
  }
  return {};
}
GpuStatus SetDevice(int device) { return Check(hipSetDevice(device), "hipSetDevice"); }
GpuStatus DeviceName(int device, std::string* name) {
  hipDeviceProp_t prop;
  GpuStatus st = Check(hipGetDeviceProperties(&prop, device), "hipGetDeviceProperties");
  if (st.ok) *name = prop.name;
  return st;
}
bool DeviceHasMatrixCores() {
#if defined(RF_GPU_CUDA)
  return true;  // every supported NVIDIA target (sm_70 and later) has tensor cores
#else
  static DeviceFlagCache cache;
  return PerDeviceFlag(cache, [](int device) {
    hipDeviceProp_t prop;
    if (hipGetDeviceProperties(&prop, device) != hipSuccess) return kFlagUnknown;
    return mma_layout::GcnArchHasMatrixCores(prop.gcnArchName) ? kFlagYes : kFlagNo;
  });
#endif
}
int MultiprocessorCount() {
  static const int count = [] {
    int device = 0;
    if (hipGetDevice(&device) != hipSuccess) device = 0;
    hipDeviceProp_t p;
    return hipGetDeviceProperties(&p, device) == hipSuccess ? p.multiProcessorCount : 64;
  }();
  return count;
}
GpuStatus MemInfo(size_t* free_bytes, size_t* total_bytes) {
  return Check(hipMemGetInfo(free_bytes, total_bytes), "hipMemGetInfo");
}
GpuStatus Malloc(void** p, size_t bytes) {
  *p = nullptr;
  return Check(hipMalloc(p, bytes == 0 ? 1 : bytes), "hipMalloc");
}
void Free(void* p) {
  if (p != nullptr) (void)hipFree(p);
}
GpuStatus HostAlloc(void** p, size_t bytes) {
  return Check(hipHostMalloc(p, bytes == 0 ? 1 : bytes, 0), "hipHostMalloc");
}
void HostFree(void* p) {
  if (p != nullptr) (void)hipHostFree(p);
}
GpuStatus CopyToDevice(void* dst, const void* src, size_t bytes, Stream s) {
  return Check(hipMemcpyAsync(dst, src, bytes, hipMemcpyHostToDevice, S(s)), "copy to device");
}
GpuStatus CopyToHost(void* dst, const void* src, size_t bytes, Stream s) {
  return Check(hipMemcpyAsync(dst, src, bytes, hipMemcpyDeviceToHost, S(s)), "copy to host");
}
GpuStatus CopyDeviceToDevice(void* dst, const void* src, size_t bytes, Stream s) {
  return Check(hipMemcpyAsync(dst, src, bytes, hipMemcpyDeviceToDevice, S(s)), "device copy");
}
GpuStatus Memset(void* dst, int value, size_t bytes, Stream s) {
  return Check(hipMemsetAsync(dst, value, bytes, S(s)), "memset");
}
GpuStatus StreamCreate(Stream* s) {
  hipStream_t st = nullptr;
  GpuStatus r = Check(hipStreamCreateWithFlags(&st, hipStreamNonBlocking), "stream create");
  *s = st;
  return r;
}
GpuStatus HighestStreamPriority(int* priority) {
  int least = 0;
  *priority = 0;
  return Check(hipDeviceGetStreamPriorityRange(&least, priority), "stream priority range");
}
GpuStatus StreamCreateHighPriority(Stream* s) {
  int greatest = 0;
  hipStream_t st = nullptr;
  GpuStatus r = HighestStreamPriority(&greatest);
  if (r.ok) r = Check(hipStreamCreateWithPriority(&st, hipStreamNonBlocking, greatest), "high-priority stream create");
  *s = st;
  return r;
}
void StreamDestroy(Stream s) {
  if (s != nullptr) (void)hipStreamDestroy(S(s));
}
GpuStatus StreamSync(Stream s) { return Check(hipStreamSynchronize(S(s)), "stream synchronize"); }
GpuStatus LastLaunchError() { return Check(hipGetLastError(), "kernel launch"); }
GpuStatus EventCreate(Event* e) {
  hipEvent_t ev = nullptr;
  GpuStatus r = Check(hipEventCreate(&ev), "event create");
  *e = ev;
  return r;
}
void EventDestroy(Event e) {
  if (e != nullptr) (void)hipEventDestroy(static_cast<hipEvent_t>(e));
}
GpuStatus EventRecord(Event e, Stream s) {
  return Check(hipEventRecord(static_cast<hipEvent_t>(e), S(s)), "event record");
}
GpuStatus EventElapsedMs(Event start, Event stop, float* ms) {
  GpuStatus r = Check(hipEventSynchronize(static_cast<hipEvent_t>(stop)), "event synchronize");
  if (!r.ok) return r;
  return Check(hipEventElapsedTime(ms, static_cast<hipEvent_t>(start), static_cast<hipEvent_t>(stop)),
               "event elapsed time");
}
GpuStatus BeginCapture(Stream s) {
  return Check(hipStreamBeginCapture(S(s), hipStreamCaptureModeThreadLocal), "begin graph capture");
}
GpuStatus EndCapture(Stream s, GraphExec* exec) {
  hipGraph_t graph = nullptr;
  GpuStatus r = Check(hipStreamEndCapture(S(s), &graph), "end graph capture");
  if (!r.ok) return r;
  hipGraphExec_t ge = nullptr;
#if defined(RF_GPU_CUDA)
  // Node priorities (the prefetch kernel's, SetL2PrefetchHighPriority) hold
  // only in a graph instantiated with this flag.
  const unsigned long long flags = GetL2PrefetchHighPriority() ? cudaGraphInstantiateFlagUseNodePriority : 0;
  r = Check(cudaGraphInstantiate(&ge, graph, flags), "graph instantiate");
#else
  r = Check(hipGraphInstantiate(&ge, graph, nullptr, nullptr, 0), "graph instantiate");
#endif
  (void)hipGraphDestroy(graph);
  *exec = ge;
  return r;
}
GpuStatus GraphLaunch(GraphExec exec, Stream s) {
  return Check(hipGraphLaunch(static_cast<hipGraphExec_t>(exec), S(s)), "graph launch");
}
void GraphDestroy(GraphExec exec) {
  if (exec != nullptr) (void)hipGraphExecDestroy(static_cast<hipGraphExec_t>(exec));
}

// ---- programmatic dependent launch (launch_util.h LaunchKernel)
namespace {
std::atomic<bool> g_pdl{true};

#if defined(RF_GPU_CUDA)
// Compiled like every kernel of rf_kernels: its binary version says whether the
// device code that runs was built for sm_90+ (where GridDependencyWait is the
// real instruction, not the no-op of older targets).
__global__ void Sm90ProbeKernel() {}
#endif
}  // namespace

bool DeviceRunsSm90Code() {
#if defined(RF_GPU_CUDA)
  static DeviceFlagCache cache;
  return PerDeviceFlag(cache, [](int device) {
    int major = 0;
    cudaFuncAttributes attr{};
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaFuncGetAttributes(&attr, Sm90ProbeKernel) != cudaSuccess) {
      return kFlagUnknown;
    }
    return major >= 9 && attr.ptxVersion >= 90 && attr.binaryVersion >= 90 ? kFlagYes : kFlagNo;
  });
#else
  return false;
#endif
}

namespace {
int InitialCarveout() {
  const char* e = std::getenv("RF_SMEM_CARVEOUT");
  if (e == nullptr) return -1;
  const int v = std::atoi(e);
  return v >= 0 && v <= 100 ? v : -1;
}
std::atomic<int> g_carveout{InitialCarveout()};
}  // namespace

void SetSmemCarveout(int percent) { g_carveout.store(percent >= 0 && percent <= 100 ? percent : -1); }
int GetSmemCarveout() { return g_carveout.load(std::memory_order_relaxed); }

void ApplySmemCarveout(const void* kernel) {
#if defined(RF_GPU_CUDA)
  const int want = GetSmemCarveout();
  static std::mutex mu;
  static std::unordered_map<const void*, int> applied;  // kernels never set are at the default (-1)
  std::lock_guard<std::mutex> lock(mu);
  const auto it = applied.find(kernel);
  if ((it == applied.end() ? -1 : it->second) == want) return;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, want) != cudaSuccess) {
    (void)cudaGetLastError();  // a hint: the launch goes ahead under the old split
    return;
  }
  applied[kernel] = want;
#else
  (void)kernel;
#endif
}

void SetPdl(bool on) { g_pdl.store(on, std::memory_order_relaxed); }
bool GetPdl() { return g_pdl.load(std::memory_order_relaxed); }
bool PdlActive() { return g_pdl.load(std::memory_order_relaxed) && DeviceRunsSm90Code(); }

// On AMD these are no-ops: hipProfilerStart/Stop are deprecated in favour of
// roctracer/rocTX, which the HIP build does not link.
void ProfilerStart() {
#if defined(RF_GPU_CUDA)
  (void)cudaProfilerStart();
#endif
}

void ProfilerStop() {
#if defined(RF_GPU_CUDA)
  (void)cudaProfilerStop();
#endif
}

}  // namespace rocmforge::gpu
