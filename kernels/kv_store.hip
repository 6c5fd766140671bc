// Writes a step's K and V rows (float) into the paged f16 cache at their slots.
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"

namespace rocmforge::gpu {
namespace {

constexpr int kThreads = 256;

__global__ void StoreKvKernel(const float* k, const float* v, const int32_t* slots, int kv_dim,
                              __half* k_cache, __half* v_cache) {
  GridDependencyBegin();
  const int t = blockIdx.x;
  const int64_t dst = static_cast<int64_t>(slots[t]) * kv_dim;
  const int64_t src = static_cast<int64_t>(t) * kv_dim;
  for (int i = threadIdx.x; i < kv_dim; i += blockDim.x) {
    k_cache[dst + i] = __float2half(k[src + i]);
    v_cache[dst + i] = __float2half(v[src + i]);
  }
}

}  // namespace

void LaunchStoreKv(const float* k, const float* v, const int32_t* slots, int n, int kv_dim,
                   uint16_t* k_cache, uint16_t* v_cache, Stream s) {
  if (n == 0) return;
  LaunchKernel(StoreKvKernel, n, kThreads, 0, s, k, v, slots, kv_dim,
               reinterpret_cast<__half*>(k_cache), reinterpret_cast<__half*>(v_cache));
}

}  // namespace rocmforge::gpu
