// The RoPE + KV store epilogue of the batch-1 Q/K/V group matrix x vector
// (LaunchMatVecQuantizedGroupRopeKv): shared by the portable kernels
// (kernels/matmul_small_batch_impl.h) and the bulk-copy kernel
// (kernels/matvec_stream.hip), so both finish a row pair the same way.
#pragma once

#include <cstdint>

#include "kernels/gpu_api.h"
#include "kernels/gpu_runtime.h"
#include "kernels/rope_device.h"

namespace rocmforge::gpu {

// The RoPE + KV store epilogue of a batch-1 group launch (Q, K, V): what a
// part's rows get besides y. Roles per part: kPlain (y only), kRope (y
// rotated: NORM pairs 2i, 2i+1 of each head), kRopeK (rotated, and stored as
// f16 into the K cache at the token's slot), kStoreV (y, and stored into the
// V cache). Off (on == false) for every other launch.
enum EpiRole : int { kPlain = 0, kRope = 1, kRopeK = 2, kStoreV = 3 };
struct RopeKvEpi {
  bool on = false;
  int role[kMaxMatVecParts] = {kPlain, kPlain, kPlain};
  const int32_t* positions = nullptr;  // [1]
  const int32_t* slots = nullptr;      // [1]
  __half* k_cache = nullptr;
  __half* v_cache = nullptr;
  int head_dim = 0, rot_dim = 0;
  int64_t kv_dim = 0;  // a cache row: the K and V parts' rows
  float freq_base = 0.0f;
  // With or without `on`: a plain row r (one-part launches) is also added
  // into add_to[r] (LaunchMatVecQuantizedAddTo, the residual add).
  float* add_to = nullptr;
};

// The epilogue of LaunchMatVecQuantizedGroupRopeKv: Q rotated, K rotated and
// stored, V stored (kv_dim = the K and V parts' rows).
inline RopeKvEpi MakeRopeKvEpi(const MatVecRopeKv& r, int64_t kv_dim) {
  RopeKvEpi e;
  e.on = true;
  e.role[0] = kRope;
  e.role[1] = kRopeK;
  e.role[2] = kStoreV;
  e.positions = r.positions;
  e.slots = r.slots;
  e.k_cache = reinterpret_cast<__half*>(r.k_cache);
  e.v_cache = reinterpret_cast<__half*>(r.v_cache);
  e.head_dim = r.head_dim;
  e.rot_dim = r.rot_dim;
  e.kv_dim = kv_dim;
  e.freq_base = r.freq_base;
  return e;
}

// A plain row's final sum v: y[r], and the residual add where asked.
__device__ __forceinline__ void StorePlainRow(const RopeKvEpi& e, int64_t r, float v, float* y) {
  y[r] = v;
  if (e.add_to != nullptr) e.add_to[r] += v;
}

// Rows r, r + 1 (r even) of a part with their final sums v0, v1: the same
// rotation (rope_device.h) and f16 conversion as RopeStoreKvKernel, so the
// values are those of the separate kernel.
__device__ __forceinline__ void EpiPair(const RopeKvEpi& e, int role, int64_t r, float v0, float v1,
                                        float* y) {
  const int j = static_cast<int>(r % e.head_dim);
  if ((role == kRope || role == kRopeK) && j < e.rot_dim) {
    RopeRotate(e.positions[0], j / 2, e.rot_dim, e.freq_base, &v0, &v1);
  }
  y[r] = v0;
  y[r + 1] = v1;
  if (role == kRopeK || role == kStoreV) {
    __half* cache = role == kRopeK ? e.k_cache : e.v_cache;
    const int64_t dst = static_cast<int64_t>(e.slots[0]) * e.kv_dim + r;
    cache[dst] = __float2half(v0);
    cache[dst + 1] = __float2half(v1);
  }
}

// The part's epilogue role (kPlain when the launch has none).
__device__ __forceinline__ int EpiRoleOf(const RopeKvEpi& e, int index) {
  if (!e.on) return kPlain;
  return index == 0 ? e.role[0] : index == 1 ? e.role[1] : e.role[2];
}

}  // namespace rocmforge::gpu
