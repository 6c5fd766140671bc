// Rotary position embedding, NORM (adjacent pairs, GGUF 'llama') and NEOX
// (x[i], x[i + rot_dim/2]) orders. Angles in float from the integer position,
// so positions far beyond 2048 keep their precision.
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/rope_device.h"

namespace rocmforge::gpu {
namespace {

constexpr int kThreads = 128;

// grid: (pair blocks, tokens); one thread per rotated pair, so a decode token's
// pairs are spread over many SMs (one block per token was latency-bound: ~9 us).
__global__ void RopeKernel(float* x, const int32_t* positions, int n_heads, int head_dim,
                           int rot_dim, float freq_base, bool neox) {
  GridDependencyBegin();
  const int t = blockIdx.y;
  const int half = rot_dim / 2;
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx < n_heads * half) {
    float* head = x + (static_cast<int64_t>(t) * n_heads + idx / half) * head_dim;
    int a, b;
    RopePairOffsets(idx % half, rot_dim, neox, &a, &b);
    RopeRotate(positions[t], idx % half, rot_dim, freq_base, &head[a], &head[b]);
  }
}

}  // namespace

void LaunchRope(float* x, const int32_t* positions, int n, int n_heads, int head_dim, int rot_dim,
                float freq_base, bool neox, Stream s) {
  if (n == 0) return;
  const dim3 grid(Blocks(static_cast<int64_t>(n_heads) * (rot_dim / 2), kThreads), n);
  if (grid.x == 0) return;
  LaunchKernel(RopeKernel, grid, kThreads, 0, s, x, positions, n_heads, head_dim, rot_dim, freq_base,
               neox);
}

}  // namespace rocmforge::gpu
