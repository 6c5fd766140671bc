// The one place that knows the GPU vendor. Device code (kernels/*.hip) includes
// this header and uses HIP spellings only; on NVIDIA (nvcc compiling the same
// .hip files as CUDA) the HIP names used here map to their CUDA equivalents.
//
// Contract for kernels:
//  * Never assume a wave of 32: use kWaveSize (64 on gfx9 / CDNA, 32 on RDNA and
//    NVIDIA) and the Wave* helpers below, whose lane masks are sized by the wave.
//  * Launch configurations use fixed thread counts that are multiples of 64, so
//    the host never needs the device's wave size; kernels derive the number of
//    waves per block as blockDim.x / kWaveSize.
//  * Int8 dot products go through Dot4I8 (NVIDIA dp4a, AMD sdot4).
//  * Random numbers: engine/sampling/philox.h (host and device), the same
//    Philox4x32-10 that rocRAND and cuRAND implement.
#pragma once

#include <cstdint>

#if defined(__CUDACC__) && !defined(__HIP__)
// ---------------------------------------------------------------- NVIDIA
#define RF_GPU_CUDA 1
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/mma_layout.h"

using hipError_t = cudaError_t;
using hipStream_t = cudaStream_t;
using hipEvent_t = cudaEvent_t;
using hipGraph_t = cudaGraph_t;
using hipGraphExec_t = cudaGraphExec_t;
using hipDeviceProp_t = cudaDeviceProp;
using hip_bfloat16 = __nv_bfloat16;
#define hipSuccess cudaSuccess
#define hipGetErrorString cudaGetErrorString
#define hipGetLastError cudaGetLastError
#define hipGetDeviceCount cudaGetDeviceCount
#define hipSetDevice cudaSetDevice
#define hipGetDevice cudaGetDevice
#define hipGetDeviceProperties cudaGetDeviceProperties
#define hipMemGetInfo cudaMemGetInfo
#define hipMalloc cudaMalloc
#define hipFree cudaFree
#define hipHostMalloc(p, n, f) cudaMallocHost(p, n)
#define hipHostFree cudaFreeHost
#define hipMemcpy cudaMemcpy
#define hipMemcpyAsync cudaMemcpyAsync
#define hipMemsetAsync cudaMemsetAsync
#define hipMemcpyHostToDevice cudaMemcpyHostToDevice
#define hipMemcpyDeviceToHost cudaMemcpyDeviceToHost
#define hipMemcpyDeviceToDevice cudaMemcpyDeviceToDevice
#define hipMemcpyDefault cudaMemcpyDefault
#define hipStreamCreateWithFlags cudaStreamCreateWithFlags
#define hipStreamCreateWithPriority cudaStreamCreateWithPriority
#define hipDeviceGetStreamPriorityRange cudaDeviceGetStreamPriorityRange
#define hipStreamNonBlocking cudaStreamNonBlocking
#define hipStreamDestroy cudaStreamDestroy
#define hipStreamSynchronize cudaStreamSynchronize
#define hipDeviceSynchronize cudaDeviceSynchronize
#define hipEventCreate cudaEventCreate
#define hipEventDestroy cudaEventDestroy
#define hipEventRecord cudaEventRecord
#define hipStreamWaitEvent cudaStreamWaitEvent
#define hipEventCreateWithFlags cudaEventCreateWithFlags
#define hipEventDisableTiming cudaEventDisableTiming
#define hipEventSynchronize cudaEventSynchronize
#define hipEventElapsedTime cudaEventElapsedTime
#define hipStreamBeginCapture cudaStreamBeginCapture
#define hipStreamEndCapture cudaStreamEndCapture
#define hipStreamCaptureModeThreadLocal cudaStreamCaptureModeThreadLocal
#define hipGraphInstantiate(exec, graph, a, b, c) cudaGraphInstantiate(exec, graph, 0)
#define hipGraphLaunch cudaGraphLaunch
#define hipGraphExecDestroy cudaGraphExecDestroy
#define hipGraphDestroy cudaGraphDestroy
#define hipFuncSetAttribute(f, a, v) cudaFuncSetAttribute(f, a, v)

namespace rocmforge::gpu {
constexpr int kWaveSize = 32;

// Matrix cores: 16x16x16 half-precision tiles with float accumulation, as two
// mma.sync m16n8k16 per tile with operands loaded by ldmatrix (WMMA's fixed
// fragment layout would need a shared-memory round trip to write outputs).
// LoadA / LoadB read SHARED memory: p 16-byte aligned, ld a multiple of 8.
constexpr bool kHasMatrixCores = true;
constexpr bool kHasInt8MatrixCores = true;  // mma::MmaI8 below
constexpr bool kBuildMatrixCoreKernels = true;  // see kernels/mma_amd.h
namespace mma {
struct FragA {  // 16 m x 16 k, row-major: a0..a3 of the m16n8k16 A operand
  uint32_t x[4];
};
struct FragB {  // 16 n x 16 k ([n][k] in memory): b0,b1 of n 0..7, then of n 8..15
  uint32_t x[4];
};
struct FragC {  // 16 x 16 float: c0..c3 of n 0..7, then of n 8..15
  float x[8];
};
__device__ __forceinline__ void Zero(FragC& c) {
#pragma unroll
  for (int i = 0; i < 8; ++i) c.x[i] = 0.0f;
}
__device__ __forceinline__ void LoadA(FragA& a, const __half* p, unsigned ld) {
  // Lanes 0-15 address rows 0-15 at k 0, lanes 16-31 rows 0-15 at k 8: the four
  // 8x8 matrices come back as (m0-7,k0-7) (m8-15,k0-7) (m0-7,k8-15) (m8-15,k8-15).
  const int l = threadIdx.x % 32;
  const unsigned addr =
      static_cast<unsigned>(__cvta_generic_to_shared(p + (l % 16) * ld + (l / 16) * 8));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(a.x[0]), "=r"(a.x[1]), "=r"(a.x[2]), "=r"(a.x[3])
               : "r"(addr));
}
__device__ __forceinline__ void LoadB(FragB& b, const __half* p, unsigned ld) {
  // Matrices (n0-7,k0-7) (n0-7,k8-15) (n8-15,k0-7) (n8-15,k8-15).
  const int l = threadIdx.x % 32;
  const unsigned addr = static_cast<unsigned>(
      __cvta_generic_to_shared(p + ((l / 16) * 8 + l % 8) * ld + ((l / 8) % 2) * 8));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(b.x[0]), "=r"(b.x[1]), "=r"(b.x[2]), "=r"(b.x[3])
               : "r"(addr));
}
__device__ __forceinline__ void Mma(FragC& c, const FragA& a, const FragB& b) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c.x[4 * h + 0]), "+f"(c.x[4 * h + 1]), "+f"(c.x[4 * h + 2]), "+f"(c.x[4 * h + 3])
        : "r"(a.x[0]), "r"(a.x[1]), "r"(a.x[2]), "r"(a.x[3]), "r"(b.x[2 * h]),
          "r"(b.x[2 * h + 1]));
  }
}
// Register-direct A: for each pair of consecutive-k items this lane holds (in
// mma_layout::APair<MmaSync16x16x16> order), f(m, k) (k even) returns
// half2(A[m][k], A[m][k+1]) and FillA stores it where Mma expects it. Lets a
// kernel decode weights straight into fragments, without a shared f16 tile.
constexpr int kAPairs = 4;  // half2 registers of A per lane
// (m, k) of this lane's A pair p (mma_layout::APair order).
__device__ __forceinline__ mma_layout::Coord APairCoord(int p) {
  return mma_layout::APair<mma_layout::MmaSync16x16x16>(static_cast<int>(threadIdx.x % 32), p);
}
template <class F>
__device__ __forceinline__ void FillA(FragA& a, F f) {
  const int l = threadIdx.x % 32;
#pragma unroll
  for (int p = 0; p < 4; ++p) {
    const mma_layout::Coord mk = mma_layout::APair<mma_layout::MmaSync16x16x16>(l, p);
    const __half2 h = f(mk.row, mk.col);
    a.x[p] = *reinterpret_cast<const uint32_t*>(&h);
  }
}
// f(row, col, value) for each of the 8 elements this lane holds (row = m, col = n).
template <class F>
__device__ __forceinline__ void ForEachAcc(const FragC& c, F f) {
  const int l = threadIdx.x % 32, g = l / 4, q = (l % 4) * 2;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    f(g, 8 * h + q, c.x[4 * h + 0]);
    f(g, 8 * h + q + 1, c.x[4 * h + 1]);
    f(g + 8, 8 * h + q, c.x[4 * h + 2]);
    f(g + 8, 8 * h + q + 1, c.x[4 * h + 3]);
  }
}
__device__ __forceinline__ void StoreRowMajor(float* p, const FragC& c, unsigned ld) {
  ForEachAcc(c, [&](int r, int col, float v) { p[r * ld + col] = v; });
}
// Int8 tiles (kernels/matmul_mmq.hip): C (16 m x 8 n, int32) += A . B with s8
// operands, mma.sync m16n8k32 / m16n8k16. With g = lane / 4, t = lane % 4:
//   FragAI8 x[0]: A[g][4t..4t+3], x[1]: A[g+8][4t..], x[2]: A[g][16+4t..], x[3]: A[g+8][16+4t..]
//     (bytes in k order; the k16 form uses x[0], x[1] only);
//   FragBI8 x[0]: B[4t..4t+3][g], x[1]: B[16+4t..][g] (k16: x[0] only);
//   FragCI8 x[0]: C[g][2t], x[1]: C[g][2t+1], x[2]: C[g+8][2t], x[3]: C[g+8][2t+1].
// Any permutation of k inside one product is allowed if A and B use the same one.
struct FragAI8 {
  uint32_t x[4];
};
struct FragBI8 {
  uint32_t x[2];
};
struct FragCI8 {
  int x[4];
};
__device__ __forceinline__ void MmaI8(FragCI8& c, const FragAI8& a, const FragBI8& b) {
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+r"(c.x[0]), "+r"(c.x[1]), "+r"(c.x[2]), "+r"(c.x[3])
      : "r"(a.x[0]), "r"(a.x[1]), "r"(a.x[2]), "r"(a.x[3]), "r"(b.x[0]), "r"(b.x[1]));
}
__device__ __forceinline__ void MmaI8K16(FragCI8& c, const FragAI8& a, const FragBI8& b) {
  asm("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
      : "+r"(c.x[0]), "+r"(c.x[1]), "+r"(c.x[2]), "+r"(c.x[3])
      : "r"(a.x[0]), "r"(a.x[1]), "r"(b.x[0]));
}
}  // namespace mma
using LaneMask = uint32_t;
constexpr LaneMask kFullMask = 0xffffffffu;

template <typename T>
__device__ __forceinline__ T WaveShflXor(T v, int lane_mask) {
  return __shfl_xor_sync(kFullMask, v, lane_mask, kWaveSize);
}
template <typename T>
__device__ __forceinline__ T WaveShfl(T v, int src_lane) {
  return __shfl_sync(kFullMask, v, src_lane, kWaveSize);
}
// sum over i of a.byte[i] * b.byte[i] (signed) + c.
__device__ __forceinline__ int Dot4I8(int a, int b, int c) { return __dp4a(a, b, c); }
}  // namespace rocmforge::gpu

#else
// ---------------------------------------------------------------- AMD
#define RF_GPU_HIP 1
#include <hip/hip_bfloat16.h>
#include <hip/hip_fp16.h>
#include <hip/hip_runtime.h>

namespace rocmforge::gpu {
#if defined(__AMDGCN_WAVEFRONT_SIZE)
constexpr int kWaveSize = __AMDGCN_WAVEFRONT_SIZE;
#elif defined(__GFX9__)
constexpr int kWaveSize = 64;
#else
// Host pass: the wave size is a device property; host code must not depend on it.
constexpr int kWaveSize = 64;
#endif
// kHasMatrixCores and the mma:: tile interface: kernels/mma_amd.h (included at
// the end of this branch): MFMA on CDNA, WMMA on RDNA3, a portable fallback elsewhere.
using LaneMask = uint64_t;
constexpr LaneMask kFullMask = kWaveSize == 64 ? ~0ull : 0xffffffffull;

// ROCm's __shfl_* take the width, not a mask: every lane of the wave takes part.
template <typename T>
__device__ __forceinline__ T WaveShflXor(T v, int lane_mask) {
  return __shfl_xor(v, lane_mask, kWaveSize);
}
template <typename T>
__device__ __forceinline__ T WaveShfl(T v, int src_lane) {
  return __shfl(v, src_lane, kWaveSize);
}
__device__ __forceinline__ int Dot4I8(int a, int b, int c) {
#if defined(__gfx90a__) || defined(__gfx940__) || defined(__gfx941__) || defined(__gfx942__) || \
    defined(__gfx1030__) || defined(__gfx908__) || defined(__gfx906__)
  return __builtin_amdgcn_sdot4(a, b, c, false);
#elif defined(__GFX11__)
  // RDNA3 has no v_dot4_i32_i8 (sdot4 does not compile there); the mixed-sign form does it.
  return __builtin_amdgcn_sudot4(true, a, true, b, c, false);
#else
  const int8_t* pa = reinterpret_cast<const int8_t*>(&a);
  const int8_t* pb = reinterpret_cast<const int8_t*>(&b);
  return c + pa[0] * pb[0] + pa[1] * pb[1] + pa[2] * pb[2] + pa[3] * pb[3];
#endif
}
// CUDA's __syncwarp() for one wave (ROCm 5.2 has none): this lane's earlier
// memory writes are visible to the other lanes of its wave after the call.
__device__ __forceinline__ void WaveSync() {
  __builtin_amdgcn_fence(__ATOMIC_RELEASE, "wavefront");
  __builtin_amdgcn_wave_barrier();
  __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "wavefront");
}
}  // namespace rocmforge::gpu
#include "kernels/mma_amd.h"
#endif

namespace rocmforge::gpu {

// Sum / max over the lanes of one wave; every lane gets the result.
template <typename T>
__device__ __forceinline__ T WaveSum(T v) {
#pragma unroll
  for (int m = kWaveSize / 2; m > 0; m >>= 1) v += WaveShflXor(v, m);
  return v;
}
template <typename T>
__device__ __forceinline__ T WaveMax(T v) {
#pragma unroll
  for (int m = kWaveSize / 2; m > 0; m >>= 1) {
    const T o = WaveShflXor(v, m);
    v = o > v ? o : v;
  }
  return v;
}

// Largest block size any launcher uses; shared scratch for block reductions is
// sized for the most waves such a block can have (wave 32).
constexpr int kMaxBlock = 1024;
constexpr int kMaxWaves = kMaxBlock / 32;

// Block-wide sum; every thread gets the result. `scratch` holds kMaxWaves
// floats of shared memory. Contains __syncthreads: call from all threads.
__device__ __forceinline__ float BlockSum(float v, float* scratch) {
  const int lane = threadIdx.x % kWaveSize, wave = threadIdx.x / kWaveSize;
  const int n_waves = (blockDim.x + kWaveSize - 1) / kWaveSize;
  v = WaveSum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[wave] = v;
  __syncthreads();
  v = lane < n_waves ? scratch[lane] : 0.0f;
  return WaveSum(v);
}
__device__ __forceinline__ float BlockMax(float v, float* scratch) {
  const int lane = threadIdx.x % kWaveSize, wave = threadIdx.x / kWaveSize;
  const int n_waves = (blockDim.x + kWaveSize - 1) / kWaveSize;
  v = WaveMax(v);
  __syncthreads();
  if (lane == 0) scratch[wave] = v;
  __syncthreads();
  v = lane < n_waves ? scratch[lane] : -INFINITY;
  return WaveMax(v);
}

// Asynchronous 16-byte global -> shared copies (cp.async on NVIDIA; a plain
// 16-byte load and store elsewhere, complete on return). Both pointers 16-byte
// aligned. AsyncCommit closes a group of copies; AsyncWait<N> waits until at
// most N groups are in flight (this thread's copies only: follow with a barrier
// before other threads read them).
__device__ __forceinline__ void AsyncCopy16(void* smem, const void* gmem) {
#if defined(RF_GPU_CUDA)
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
#else
  *static_cast<uint4*>(smem) = *static_cast<const uint4*>(gmem);
#endif
}
__device__ __forceinline__ void AsyncCommit() {
#if defined(RF_GPU_CUDA)
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void AsyncWait() {
#if defined(RF_GPU_CUDA)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}
__device__ __forceinline__ void AsyncWaitAll() {
#if defined(RF_GPU_CUDA)
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#endif
}

__device__ __forceinline__ float HalfBitsToFloat(uint16_t h) {
  return __half2float(__ushort_as_half(h));
}

}  // namespace rocmforge::gpu

namespace rocmforge::gpu {

// ---- Programmatic dependent launch (PDL) ------------------------------------
// A kernel launched by LaunchKernel (kernels/launch_util.h) while PDL is on may
// start while the kernel before it in the stream is still running (NVIDIA
// sm_90+: programmatic stream serialization; elsewhere an ordinary launch).
// Contract for every kernel launched that way:
//  * every thread calls GridDependencyWait() before it reads or writes global
//    memory that another kernel writes or reads (activations, outputs, KV cache,
//    scratch), and no block returns before that call: the wait returns once the
//    previous kernel has completed and its writes are visible, and a kernel's
//    completion then implies its predecessor's, so the chain stays ordered;
//  * only constant data (weights) may be touched before the wait, and only with
//    PrefetchL2 or copies into the block's own shared memory (the bulk-copy
//    matrix x vector, kernels/matvec_stream.hip), neither of which can change
//    any result;
//  * GridDependencyLaunchDependents() (after the wait) lets the NEXT kernel be
//    scheduled once every block of this one has called it or exited; the next
//    kernel still waits for this one's completion in its own wait, so calling it
//    early is always correct and only moves the next kernel's launch forward.
// Kernels launched the ordinary way wait for everything before them, as always;
// the wait is a no-op in a kernel that was not launched with PDL.
__device__ __forceinline__ void GridDependencyWait() {
#if defined(RF_GPU_CUDA) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void GridDependencyLaunchDependents() {
#if defined(RF_GPU_CUDA) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
// Both, at the top of a PDL kernel with nothing to do before the wait.
__device__ __forceinline__ void GridDependencyBegin() {
  GridDependencyWait();
  GridDependencyLaunchDependents();
}
// Asks for the 128-byte line holding p to be brought into L2 (NVIDIA); no
// effect on any result, so it may run before GridDependencyWait. A no-op on AMD.
__device__ __forceinline__ void PrefetchL2(const void* p) {
#if defined(RF_GPU_CUDA) && defined(__CUDA_ARCH__)
  asm volatile("prefetch.global.L2 [%0];\n" ::"l"(p));
#else
  (void)p;
#endif
}

}  // namespace rocmforge::gpu
