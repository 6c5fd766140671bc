// RoPE of a step's Q and K rows and the store of K and V into the paged f16
// cache, in one launch (decode ran three small kernels for this: RoPE of Q,
// RoPE of K, KV store). Same rotation math as rope.hip (rope_device.h) and the
// same f16 conversion as kv_store.hip, so the results are identical.
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/rope_device.h"

namespace rocmforge::gpu {
namespace {

constexpr int kThreads = 128;

// grid: (item blocks, tokens). Items of one token, one thread each:
//   [0, q_items):            rotated pair of a Q head (n_heads * rot_dim/2)
//   [q_items, +kv_dim/2):    two elements of K: a rotated pair, or two
//                            pass-through dims (>= rot_dim) of a head; K is
//                            rotated in place and stored in the cache
//   [.., +kv_dim/2):         two elements of V, stored in the cache
__global__ void RopeStoreKvKernel(float* q, float* k, const float* v, const int32_t* positions,
                                  const int32_t* slots, int n_heads, int n_kv_heads, int head_dim,
                                  int rot_dim, float freq_base, bool neox, __half* k_cache,
                                  __half* v_cache) {
  GridDependencyBegin();
  const int t = blockIdx.y;
  const int half = rot_dim / 2;
  const int kv_dim = n_kv_heads * head_dim;
  const int q_items = n_heads * half;
  int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx < q_items) {
    float* head = q + (static_cast<int64_t>(t) * n_heads + idx / half) * head_dim;
    int a, b;
    RopePairOffsets(idx % half, rot_dim, neox, &a, &b);
    RopeRotate(positions[t], idx % half, rot_dim, freq_base, &head[a], &head[b]);
    return;
  }
  idx -= q_items;
  const int64_t dst = static_cast<int64_t>(slots[t]) * kv_dim;
  const int64_t src = static_cast<int64_t>(t) * kv_dim;
  const int per_head = head_dim / 2;
  if (idx < kv_dim / 2) {
    const int h = idx / per_head, j = idx % per_head;
    float* head = k + src + h * head_dim;
    int a, b;
    if (j < half) {
      RopePairOffsets(j, rot_dim, neox, &a, &b);
      float x0 = head[a], x1 = head[b];
      RopeRotate(positions[t], j, rot_dim, freq_base, &x0, &x1);
      head[a] = x0;
      head[b] = x1;
    } else {
      a = rot_dim + 2 * (j - half);
      b = a + 1;
    }
    k_cache[dst + h * head_dim + a] = __float2half(head[a]);
    k_cache[dst + h * head_dim + b] = __float2half(head[b]);
    return;
  }
  idx -= kv_dim / 2;
  if (idx < kv_dim / 2) {
    v_cache[dst + 2 * idx] = __float2half(v[src + 2 * idx]);
    v_cache[dst + 2 * idx + 1] = __float2half(v[src + 2 * idx + 1]);
  }
}

}  // namespace

void LaunchRopeStoreKv(float* q, float* k, const float* v, const int32_t* positions,
                       const int32_t* slots, int n, int n_heads, int n_kv_heads, int head_dim,
                       int rot_dim, float freq_base, bool neox, uint16_t* k_cache,
                       uint16_t* v_cache, Stream s) {
  if (n == 0) return;
  const int64_t items = static_cast<int64_t>(n_heads) * (rot_dim / 2) +
                        static_cast<int64_t>(n_kv_heads) * head_dim;
  const dim3 grid(Blocks(items, kThreads), n);
  if (grid.x == 0) return;
  LaunchKernel(RopeStoreKvKernel, grid, kThreads, 0, s, q, k, v, positions, slots, n_heads,
               n_kv_heads, head_dim, rot_dim, freq_base, neox, reinterpret_cast<__half*>(k_cache),
               reinterpret_cast<__half*>(v_cache));
}

}  // namespace rocmforge::gpu
