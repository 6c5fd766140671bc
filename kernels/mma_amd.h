// The mma:: interface of kernels/gpu_runtime.h on AMD: 16x16x16 tiles, f16
// operands, float accumulation, one tile product per wave. Included from the
// AMD branch of gpu_runtime.h (after kWaveSize and WaveShfl); kernels use only
// the names below, which the NVIDIA branch gives the same meaning:
//   FragA  A, 16 m x 16 k, loaded from p[m*ld + k]
//   FragB  B, 16 k x 16 n, loaded from p[n*ld + k] (stored as 16 n x 16 k)
//   FragC  C, 16 x 16 float
//   Zero(c); LoadA(a, p, ld); LoadB(b, p, ld); Mma(c, a, b) (c += a.b);
//   FillA(a, f): register-direct A, f(m, k) (k even) -> half2(A[m][k], A[m][k+1])
//   for each pair of items this lane holds (mma_layout::APair order);
//   kAPairs, APairCoord(p): how many pairs a lane holds, and pair p's (m, k);
//   StoreRowMajor(p, c, ld) (element (m, n) to p[m*ld + n]);
//   ForEachAcc(c, f): f(m, n, value) for each element this lane holds.
// Every function is called by all lanes of the wave together. Preconditions of
// the loads (as for CUDA's wmma::load_matrix_sync): p 16-byte aligned, ld a
// multiple of 8. StoreRowMajor ends with WaveSync(), so on return every lane
// of the wave can read the whole stored tile.
//
// One implementation per device pass, chosen by the target (the lane layouts
// are in kernels/mma_layout.h, tested on the CPU):
//  * gfx908 / gfx90a / gfx94x / gfx950 (wave 64): v_mfma_f32_16x16x16f16.
//  * gfx11 in wave 32: v_wmma_f32_16x16x16_f16 (A and B replicated in both
//    half-waves, as the instruction requires).
//  * anything else (gfx1030, gfx12, the host pass): a portable product built
//    from lane shuffles, correct but no faster than SIMT math. kHasMatrixCores
//    is false there and the host never picks the matrix-core matmul for such a
//    device (DeviceHasMatrixCores() in kernels/gpu_api.h).
#pragma once

#include <cstdint>

#include "kernels/mma_layout.h"

#if defined(__HIP_DEVICE_COMPILE__) &&                                                     \
    (defined(__gfx908__) || defined(__gfx90a__) || defined(__gfx940__) ||                  \
     defined(__gfx941__) || defined(__gfx942__) || defined(__gfx950__))
#define RF_MMA_MFMA 1
#elif defined(__HIP_DEVICE_COMPILE__) && __AMDGCN_WAVEFRONT_SIZE == 32 &&                  \
    (defined(__GFX11__) || defined(__gfx1100__) || defined(__gfx1101__) ||                 \
     defined(__gfx1102__) || defined(__gfx1103__))
#define RF_MMA_WMMA 1
#else
#define RF_MMA_PORTABLE 1
#endif

namespace rocmforge::gpu {

// No int8 tile op (mma::MmaI8, kernels/matmul_mmq.hip) on AMD yet: MFMA i8
// (v_mfma_i32_16x16x16i8 / _16x16x32_i8) is not wired; the MMQ path is NVIDIA-only.
constexpr bool kHasInt8MatrixCores = false;
#if defined(RF_MMA_MFMA) || defined(RF_MMA_WMMA)
constexpr bool kHasMatrixCores = true;
#else
// Also false in the host pass: host code asks DeviceHasMatrixCores() instead.
constexpr bool kHasMatrixCores = false;
#endif
// Whether this pass builds the bodies of the kernels that only matrix-core
// devices launch (the host checks DeviceHasMatrixCores first: the matrix-core,
// narrow and dense GEMMs and the prefill attention). False only in the device
// passes of AMD targets without matrix cores (gfx1030), where those kernels trap
// on entry instead of compiling a portable mma:: body that never runs: it cut
// that target's build of them from ~200 s to seconds. The host pass still
// checks every body.
#if defined(__HIP_DEVICE_COMPILE__) && defined(RF_MMA_PORTABLE)
constexpr bool kBuildMatrixCoreKernels = false;
#else
constexpr bool kBuildMatrixCoreKernels = true;
#endif

namespace mma {
namespace detail {

// The lane's index in its wave, independent of the block's shape.
__device__ __forceinline__ int Lane() { return static_cast<int>(__lane_id()); }

// `bytes` bytes at p (aligned to `bytes`, at most 16) as one vector load; memcpy
// keeps it free of type-based aliasing assumptions about the __half stores.
template <class V>
__device__ __forceinline__ V LoadVec(const __half* p) {
  V v;
  constexpr unsigned kAlign = sizeof(V) < 16 ? sizeof(V) : 16;
  __builtin_memcpy(&v, __builtin_assume_aligned(p, kAlign), sizeof(V));
  return v;
}

}  // namespace detail

#if defined(RF_MMA_MFMA)
// ------------------------------------------------------------- CDNA MFMA
using Layout = mma_layout::Mfma16x16x16;
static_assert(kWaveSize == Layout::kWave, "MFMA 16x16x16 needs wave 64");
typedef _Float16 Half4 __attribute__((ext_vector_type(4)));
typedef float Float4 __attribute__((ext_vector_type(4)));
struct FragA { Half4 x; };
struct FragB { Half4 x; };
struct FragC { Float4 x; };

__device__ __forceinline__ void Zero(FragC& c) { c.x = Float4{0.0f, 0.0f, 0.0f, 0.0f}; }
__device__ __forceinline__ void LoadA(FragA& a, const __half* p, unsigned ld) {
  const mma_layout::Coord mk = Layout::A(detail::Lane(), 0);  // items: k, k+1, k+2, k+3
  a.x = detail::LoadVec<Half4>(p + mk.row * ld + mk.col);
}
__device__ __forceinline__ void LoadB(FragB& b, const __half* p, unsigned ld) {
  const mma_layout::Coord kn = Layout::B(detail::Lane(), 0);
  b.x = detail::LoadVec<Half4>(p + kn.col * ld + kn.row);
}
__device__ __forceinline__ void Mma(FragC& c, const FragA& a, const FragB& b) {
  c.x = __builtin_amdgcn_mfma_f32_16x16x16f16(a.x, b.x, c.x, 0, 0, 0);
}

#elif defined(RF_MMA_WMMA)
// ------------------------------------------------------------- RDNA3 WMMA
using Layout = mma_layout::Wmma16x16x16W32;
static_assert(kWaveSize == Layout::kWave, "gfx11 WMMA here is the wave-32 form");
typedef _Float16 Half16 __attribute__((ext_vector_type(16)));
typedef _Float16 Half8 __attribute__((ext_vector_type(8)));
typedef float Float8 __attribute__((ext_vector_type(8)));
struct FragA { Half16 x; };
struct FragB { Half16 x; };
struct FragC { Float8 x; };

namespace detail {
// 16 consecutive halves as two 16-byte loads.
__device__ __forceinline__ Half16 Load16(const __half* p) {
  const Half8 lo = LoadVec<Half8>(p), hi = LoadVec<Half8>(p + 8);
  return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
}  // namespace detail

__device__ __forceinline__ void Zero(FragC& c) {
  c.x = Float8{0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
}
__device__ __forceinline__ void LoadA(FragA& a, const __half* p, unsigned ld) {
  const mma_layout::Coord mk = Layout::A(detail::Lane(), 0);  // row m, k 0..15
  a.x = detail::Load16(p + mk.row * ld + mk.col);
}
__device__ __forceinline__ void LoadB(FragB& b, const __half* p, unsigned ld) {
  const mma_layout::Coord kn = Layout::B(detail::Lane(), 0);  // column n, k 0..15
  b.x = detail::Load16(p + kn.col * ld + kn.row);
}
__device__ __forceinline__ void Mma(FragC& c, const FragA& a, const FragB& b) {
  c.x = __builtin_amdgcn_wmma_f32_16x16x16_f16_w32(a.x, b.x, c.x);
}

#else
// ------------------------------------------------------------- portable
using Layout = mma_layout::Portable<kWaveSize>;
constexpr int kPairs = Layout::kPer / 2;
struct FragA { uint32_t w[kPairs]; };  // two halves per word, lower k in the low half
struct FragB { uint32_t w[kPairs]; };
struct FragC { float x[Layout::kPer]; };

namespace detail {
template <class Frag>
__device__ __forceinline__ void LoadRun(Frag& f, const __half* p) {
  struct Run { uint32_t w[kPairs]; };
  const Run r = LoadVec<Run>(p);
#pragma unroll
  for (int i = 0; i < kPairs; ++i) f.w[i] = r.w[i];
}
__device__ __forceinline__ float HalfToFloat(uint32_t bits) {
  return static_cast<float>(__builtin_bit_cast(_Float16, static_cast<uint16_t>(bits & 0xffffu)));
}
// Items 2*pair and 2*pair+1 of `f` as held by lane `src`.
template <class Frag>
__device__ __forceinline__ void FetchPair(const Frag& f, int src, int pair, float* out) {
  uint32_t word = 0;
#pragma unroll
  for (int i = 0; i < kPairs; ++i) {
    if (i == pair) word = f.w[i];  // pair is a constant once the caller's loop unrolls
  }
  const uint32_t got = static_cast<uint32_t>(WaveShfl(static_cast<int>(word), src));
  out[0] = HalfToFloat(got);
  out[1] = HalfToFloat(got >> 16);
}
}  // namespace detail

__device__ __forceinline__ void Zero(FragC& c) {
#pragma unroll
  for (int i = 0; i < Layout::kPer; ++i) c.x[i] = 0.0f;
}
__device__ __forceinline__ void LoadA(FragA& a, const __half* p, unsigned ld) {
  const mma_layout::Coord mk = Layout::A(detail::Lane(), 0);
  detail::LoadRun(a, p + mk.row * ld + mk.col);
}
__device__ __forceinline__ void LoadB(FragB& b, const __half* p, unsigned ld) {
  const mma_layout::Coord kn = Layout::B(detail::Lane(), 0);
  detail::LoadRun(b, p + kn.col * ld + kn.row);
}
__device__ __forceinline__ void Mma(FragC& c, const FragA& a, const FragB& b) {
  mma_layout::PortableMmaLane<kWaveSize>(
      detail::Lane(), c.x,
      [&](int src, int pair, float* out) { detail::FetchPair(a, src, pair, out); },
      [&](int src, int pair, float* out) { detail::FetchPair(b, src, pair, out); });
}
#endif

namespace detail {
__device__ __forceinline__ _Float16 HalfBits(uint32_t bits) {
  return __builtin_bit_cast(_Float16, static_cast<uint16_t>(bits & 0xffffu));
}
template <class F>
__device__ __forceinline__ uint32_t PairBits(F& f, int pair) {
  const mma_layout::Coord mk = mma_layout::APair<Layout>(Lane(), pair);
  const __half2 h = f(mk.row, mk.col);
  uint32_t bits;
  __builtin_memcpy(&bits, &h, 4);
  return bits;
}
}  // namespace detail

constexpr int kAPairs = Layout::kAPerLane / 2;  // half2 pairs of A per lane
// (m, k) of this lane's A pair p (mma_layout::APair order).
__device__ __forceinline__ mma_layout::Coord APairCoord(int p) {
  return mma_layout::APair<Layout>(detail::Lane(), p);
}
// Register-direct A (see the list above): f(m, k) for each pair this lane holds.
template <class F>
__device__ __forceinline__ void FillA(FragA& a, F f) {
#if defined(RF_MMA_MFMA) || defined(RF_MMA_WMMA)
#pragma unroll
  for (int p = 0; p < Layout::kAPerLane / 2; ++p) {
    const uint32_t bits = detail::PairBits(f, p);
    a.x[2 * p] = detail::HalfBits(bits);
    a.x[2 * p + 1] = detail::HalfBits(bits >> 16);
  }
#else
#pragma unroll
  for (int p = 0; p < kPairs; ++p) a.w[p] = detail::PairBits(f, p);
#endif
}

// f(m, n, value) for each C element this lane holds.
template <class F>
__device__ __forceinline__ void ForEachAcc(const FragC& c, F f) {
  const int lane = detail::Lane();
#pragma unroll
  for (int i = 0; i < Layout::kCPerLane; ++i) {
    const mma_layout::Coord mn = Layout::C(lane, i);
    f(mn.row, mn.col, static_cast<float>(c.x[i]));
  }
}

__device__ __forceinline__ void StoreRowMajor(float* p, const FragC& c, unsigned ld) {
  ForEachAcc(c, [&](int m, int n, float v) { p[m * ld + n] = v; });
  WaveSync();
}

}  // namespace mma
}  // namespace rocmforge::gpu
