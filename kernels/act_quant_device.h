// Device helpers that quantize float activations to ActQ8 slices, one value
// per thread, with exactly the CPU reference's rules (see
// kernels/quantize_activation.hip for the rules themselves). Shared by the
// stand-alone quantize kernels and by the ops that produce a matmul input and
// quantize it in the same pass (RMSNorm, SwiGLU), so fused and unfused paths
// produce identical integers.
//
// Layout contract: value i of a flattened activation array goes to
// out[i / 32].qs[i % 32]; the 32 values of a slice are held by 32 consecutive
// threads (lanes 32j .. 32j+31 of one wave), which call the helpers together.
#pragma once

#include <cstdint>

#include "kernels/gpu_runtime.h"
#include "kernels/act_quant_launch.h"
#include "kernels/quant_device.h"

namespace rocmforge::gpu {

// Max / sum over the 32 lanes of one slice (a wave of 64 holds two slices).
__device__ __forceinline__ float SliceMax(float v) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v = fmaxf(v, WaveShflXor(v, m));
  return v;
}
__device__ __forceinline__ int SliceSum(int v) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v += WaveShflXor(v, m);
  return v;
}

// Stores value i's int8 `q` into its slice; the slice's first lane also stores
// the scale d and s = d * sum(q). All 32 lanes of the slice call it.
__device__ __forceinline__ void StoreSliceValue(int q, float d, int64_t i, bool store, ActQ8* out) {
  const int qsum = SliceSum(q);
  if (store) {
    ActQ8& b = out[i / 32];
    b.qs[i % 32] = static_cast<int8_t>(q);
    if (i % 32 == 0) {
      b.d = d;
      b.s = d * static_cast<float>(qsum);
    }
  }
}

// Q8_0 rule (Q8_0 / Q4_0 weights): d = amax / 127 kept as f16, q = round(x / d),
// half away from zero. All 32 lanes of the slice call it; `store` is false for
// lanes past the end (they pass v = 0).
__device__ __forceinline__ void QuantizeQ8_0Value(float v, int64_t i, bool store, ActQ8* out) {
  const float amax = SliceMax(fabsf(v));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const int q = static_cast<int>(roundf(v * id));
  const float d16 = __half2float(__float2half(d));  // the CPU keeps d as f16
  StoreSliceValue(q, d16, i, store, out);
}

// The Q8_0 rule for a thread's kPer registers at once: value i = threadIdx.x +
// k * kThreads of a block's row sits in o[k] and goes to flattened index
// base + i; values at i >= n are not stored (n a multiple of 32 and the same
// for the whole block). The slice reductions of four registers run
// interleaved, so their shuffle latencies overlap instead of adding up: a
// register-by-register loop of QuantizeQ8_0Value made the batch-1 RMSNorm +
// quantize kernel 7.1 us against 4.1 us for the norm alone on the H100.
// The integers, d and s are QuantizeQ8_0Value's (max and integer sums do not
// depend on the order).
template <int kThreads, int kPer>
__device__ __forceinline__ void QuantizeQ8_0Registers(const float (&o)[kPer], int64_t base, int n,
                                                      ActQ8* out) {
  constexpr int kChunk = kPer % 4 == 0 ? 4 : (kPer % 2 == 0 ? 2 : 1);
#pragma unroll
  for (int k0 = 0; k0 < kPer; k0 += kChunk) {
    if (k0 * kThreads >= n) continue;  // block-uniform
    float amax[kChunk], d16[kChunk];
    int q[kChunk], qsum[kChunk];
#pragma unroll
    for (int j = 0; j < kChunk; ++j) amax[j] = fabsf(o[k0 + j]);
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) {
#pragma unroll
      for (int j = 0; j < kChunk; ++j) amax[j] = fmaxf(amax[j], WaveShflXor(amax[j], m));
    }
#pragma unroll
    for (int j = 0; j < kChunk; ++j) {
      const float d = amax[j] / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      q[j] = static_cast<int>(roundf(o[k0 + j] * id));
      d16[j] = __half2float(__float2half(d));  // the CPU keeps d as f16
      qsum[j] = q[j];
    }
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) {
#pragma unroll
      for (int j = 0; j < kChunk; ++j) qsum[j] += WaveShflXor(qsum[j], m);
    }
#pragma unroll
    for (int j = 0; j < kChunk; ++j) {
      const int64_t i = threadIdx.x + (k0 + j) * kThreads;
      if (i < n) {
        ActQ8& b = out[(base + i) / 32];
        b.qs[(base + i) % 32] = static_cast<int8_t>(q[j]);
        if ((base + i) % 32 == 0) {
          b.d = d16[j];
          b.s = d16[j] * static_cast<float>(qsum[j]);
        }
      }
    }
  }
}

// Q8_K rule (k-quant weights), given m = the value of largest magnitude of the
// value's 256-group (first one on ties; 0 for an all-zero group):
// iscale = -127 / m, q = clamp(round-half-even(iscale * x), -127, 127), d = 1 / iscale.
__device__ __forceinline__ void QuantizeQ8_KValue(float v, float m, int64_t i, bool store,
                                                  ActQ8* out) {
  int q = 0;
  float d = 0.0f;
  if (m != 0.0f) {
    const float iscale = -127.0f / m;
    q = min(127, max(-127, __float2int_rn(iscale * v)));
    d = 1.0f / iscale;
  }
  StoreSliceValue(q, d, i, store, out);
}

// The Q8_K group maximum is "largest |x|, lowest index on ties": a unique
// element, so any reduction order finds the same one.
struct AbsMaxArg {
  float amax;   // |x|
  float value;  // x
  int index;
};
__device__ __forceinline__ AbsMaxArg Better(AbsMaxArg a, AbsMaxArg b) {
  return (b.amax > a.amax || (b.amax == a.amax && b.index < a.index)) ? b : a;
}
// Reduction over the whole wave (all lanes must hold values of one group).
__device__ __forceinline__ AbsMaxArg WaveAbsMaxArg(AbsMaxArg a) {
#pragma unroll
  for (int m = kWaveSize / 2; m > 0; m >>= 1) {
    AbsMaxArg o;
    o.amax = WaveShflXor(a.amax, m);
    o.value = WaveShflXor(a.value, m);
    o.index = WaveShflXor(a.index, m);
    a = Better(a, o);
  }
  return a;
}

// Quantizes one row of `dim` values held by a block of kThreads threads,
// value i in thread i % kThreads, register i / kThreads (o[k], k < kPer), to
// xq slices starting at flattened index `base` (a multiple of the group size).
// kRule 1: Q8_0 rule (dim a multiple of 32); 2: Q8_K rule (dim a multiple of
// 256; a 256-group is 256 consecutive threads of one register index).
// Call from all threads of the block (contains __syncthreads).
template <int kThreads, int kPer, int kRule>
__device__ __forceinline__ void BlockQuantizeRow(const float (&o)[kPer], int64_t base, int dim,
                                                 ActQ8* xq) {
  static_assert(kThreads % 256 == 0, "a Q8_K group must not straddle registers");
  if constexpr (kRule == 1) {
    QuantizeQ8_0Registers<kThreads, kPer>(o, base, dim, xq);
  } else {
    constexpr int kGroups = kPer * kThreads / 256;
    __shared__ AbsMaxArg red[kPer][kThreads / 32];
    __shared__ float group_max[kGroups];
    const int lane = threadIdx.x % kWaveSize, wave = threadIdx.x / kWaveSize;
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int i = threadIdx.x + k * kThreads;
      if (k * kThreads < dim) {
        const AbsMaxArg a = WaveAbsMaxArg(AbsMaxArg{fabsf(o[k]), o[k], i});
        if (lane == 0) red[k][wave] = a;
      }
    }
    __syncthreads();
    const int n_groups = dim / 256;
    if (static_cast<int>(threadIdx.x) < n_groups) {
      const int g = threadIdx.x;
      const int k = g * 256 / kThreads, w0 = (g * 256 % kThreads) / kWaveSize;
      AbsMaxArg b = red[k][w0];
      for (int j = 1; j < 256 / kWaveSize; ++j) b = Better(b, red[k][w0 + j]);
      group_max[g] = b.amax == 0.0f ? 0.0f : b.value;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int i = threadIdx.x + k * kThreads;
      if (k * kThreads < dim) {
        QuantizeQ8_KValue(o[k], i < dim ? group_max[i / 256] : 0.0f, base + i, i < dim, xq);
      }
    }
  }
}

// ---- 256 consecutive values per 32 lanes, 8 per lane --------------------
// The layout of the group-per-warp quantizers (quantize_activation.hip,
// the RMSNorm + quantize kernel): lane l of a 32-lane group holds values
// 8l .. 8l + 7 of a 256-value run (one Q8_K group, eight Q8_0 slices), so a
// slice is 4 lanes and a Q8_K group 32: the reductions are mostly within a
// thread's registers (2 shuffles a slice, 10 a Q8_K group, instead of 10 a
// slice of 32 lanes and a cross-wave shared-memory pass a group), and each lane
// stores its 8 integers with one 8-byte store. Same rules, same integers, d
// and s as QuantizeQ8_0Value / QuantizeQ8_KValue (maxima and integer sums do
// not depend on the order; the Q8_K maximum is a unique element).

// Lane l's 8 integers (already in int8 range) as one 8-byte store.
__device__ __forceinline__ void StoreEight(const int (&q)[8], int8_t* dst) {
  uint32_t lo = 0, hi = 0;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    lo |= (static_cast<uint32_t>(q[j]) & 0xffu) << (8 * j);
    hi |= (static_cast<uint32_t>(q[j + 4]) & 0xffu) << (8 * j);
  }
  *reinterpret_cast<uint2*>(dst) = make_uint2(lo, hi);
}

// Quantizes v (lane l: values 8l .. 8l + 7 of a 256-value run whose first
// value is flattened index `first`, a multiple of 256 for kRule 2, of 32 for
// kRule 1) into out. Lanes with store == false hold zeros and store nothing;
// for kRule 1 the 4 lanes of a slice agree on it, for kRule 2 all 32 store.
// All 32 lanes of the group call it (lanes 32j .. 32j + 31 of a wave).
template <int kRule>
__device__ __forceinline__ void QuantizeEightPerLane(const float (&v)[8], int64_t first, bool store,
                                                     ActQ8* out) {
  const int lane = threadIdx.x % 32;
  int q[8];
  float d;
  if constexpr (kRule == 1) {
    float amax = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; ++j) amax = fmaxf(amax, fabsf(v[j]));
    amax = fmaxf(amax, WaveShflXor(amax, 1));
    amax = fmaxf(amax, WaveShflXor(amax, 2));
    const float dd = amax / 127.0f;
    const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
#pragma unroll
    for (int j = 0; j < 8; ++j) q[j] = static_cast<int>(roundf(v[j] * id));
    d = __half2float(__float2half(dd));  // the CPU keeps d as f16
  } else {
    // The lane's first value of largest magnitude, then the group's: the
    // lowest lane among those holding the maximum (lanes are in index order).
    float best = fabsf(v[0]), best_v = v[0];
#pragma unroll
    for (int j = 1; j < 8; ++j) {
      if (fabsf(v[j]) > best) {
        best = fabsf(v[j]);
        best_v = v[j];
      }
    }
    float amax = best;
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) amax = fmaxf(amax, WaveShflXor(amax, m));
    int src = best == amax ? lane : 32;
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) src = min(src, WaveShflXor(src, m));
    const float mv = WaveShfl(best_v, (static_cast<int>(threadIdx.x % kWaveSize) & ~31) + src);
    const float m = amax == 0.0f ? 0.0f : mv;
    d = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; ++j) q[j] = 0;
    if (m != 0.0f) {
      const float iscale = -127.0f / m;
#pragma unroll
      for (int j = 0; j < 8; ++j) q[j] = min(127, max(-127, __float2int_rn(iscale * v[j])));
      d = 1.0f / iscale;
    }
  }
  int qsum = 0;
#pragma unroll
  for (int j = 0; j < 8; ++j) qsum += q[j];
  qsum += WaveShflXor(qsum, 1);
  qsum += WaveShflXor(qsum, 2);
  if (store) {
    const int64_t i = first + 8 * lane;
    ActQ8& b = out[i / 32];
    StoreEight(q, b.qs + i % 32);
    if (lane % 4 == 0) {
      b.d = d;
      b.s = d * static_cast<float>(qsum);
    }
  }
}

// Zeroes every span, grid-stride over all threads of the launch (call after
// GridDependencyWait: the spans may be read by the kernel before this one).
__device__ __forceinline__ void ZeroSpansGridStride(const ZeroSpans& z) {
  const int64_t tid = static_cast<int64_t>(blockIdx.y * gridDim.x + blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * gridDim.y * blockDim.x;
#pragma unroll
  for (int k = 0; k < ZeroSpans::kMax; ++k) {
    if (k >= z.n) continue;  // (not break: the loop is unrolled)
    float* const p = k == 0 ? z.p[0] : k == 1 ? z.p[1] : z.p[2];
    const int64_t c = k == 0 ? z.count[0] : k == 1 ? z.count[1] : z.count[2];
    if (c % 4 == 0 && reinterpret_cast<uintptr_t>(p) % 16 == 0) {  // 16-byte stores
      float4* const p4 = reinterpret_cast<float4*>(p);
      for (int64_t i = tid; i < c / 4; i += stride) p4[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    } else {
      for (int64_t i = tid; i < c; i += stride) p[i] = 0.0f;
    }
  }
}

}  // namespace rocmforge::gpu
