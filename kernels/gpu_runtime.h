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
#define hipStreamNonBlocking cudaStreamNonBlocking
#define hipStreamDestroy cudaStreamDestroy
#define hipStreamSynchronize cudaStreamSynchronize
#define hipDeviceSynchronize cudaDeviceSynchronize
#define hipEventCreate cudaEventCreate
#define hipEventDestroy cudaEventDestroy
#define hipEventRecord cudaEventRecord
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

#include <mma.h>

namespace rocmforge::gpu {
constexpr int kWaveSize = 32;

// Matrix cores: 16x16x16 half-precision tiles with float accumulation (WMMA).
constexpr bool kHasMatrixCores = true;
namespace mma {
using FragA = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __half, nvcuda::wmma::row_major>;
using FragB = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __half, nvcuda::wmma::col_major>;
using FragC = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>;
__device__ __forceinline__ void Zero(FragC& c) { nvcuda::wmma::fill_fragment(c, 0.0f); }
__device__ __forceinline__ void LoadA(FragA& a, const __half* p, unsigned ld) { nvcuda::wmma::load_matrix_sync(a, p, ld); }
__device__ __forceinline__ void LoadB(FragB& b, const __half* p, unsigned ld) { nvcuda::wmma::load_matrix_sync(b, p, ld); }
__device__ __forceinline__ void Mma(FragC& c, const FragA& a, const FragB& b) { nvcuda::wmma::mma_sync(c, a, b, c); }
__device__ __forceinline__ void StoreRowMajor(float* p, const FragC& c, unsigned ld) {
  nvcuda::wmma::store_matrix_sync(p, c, ld, nvcuda::wmma::mem_row_major);
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
// The MFMA/WMMA path is not written yet for AMD (ROCm 5.2 ships no rocWMMA);
// matmuls there take the float32 tiled path.
constexpr bool kHasMatrixCores = false;
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
    defined(__gfx1030__) || defined(__gfx1100__) || defined(__gfx908__) || defined(__gfx906__)
  return __builtin_amdgcn_sdot4(a, b, c, false);
#else
  const int8_t* pa = reinterpret_cast<const int8_t*>(&a);
  const int8_t* pb = reinterpret_cast<const int8_t*>(&b);
  return c + pa[0] * pb[0] + pa[1] * pb[1] + pa[2] * pb[2] + pa[3] * pb[3];
#endif
}
}  // namespace rocmforge::gpu
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

__device__ __forceinline__ float HalfBitsToFloat(uint16_t h) {
  return __half2float(__ushort_as_half(h));
}

}  // namespace rocmforge::gpu
