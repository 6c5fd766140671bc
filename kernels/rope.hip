// Rotary position embedding, NORM (adjacent pairs, GGUF 'llama') and NEOX
// (x[i], x[i + rot_dim/2]) orders. Angles in float from the integer position,
// so positions far beyond 2048 keep their precision.
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"

namespace rocmforge::gpu {
namespace {

constexpr int kThreads = 128;

// grid: (pair blocks, tokens); one thread per rotated pair, so a decode token's
// pairs are spread over many SMs (one block per token was latency-bound: ~9 us).
__global__ void RopeKernel(float* x, const int32_t* positions, int n_heads, int head_dim,
                           int rot_dim, float freq_base, bool neox) {
  const int t = blockIdx.y;
  const int half = rot_dim / 2;
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx < n_heads * half) {
    const float pos = static_cast<float>(positions[t]);
    float* row = x + static_cast<int64_t>(t) * n_heads * head_dim;
    const int h = idx / half, i = idx % half;
    // theta_i = pos * base^(-2i/rot_dim), as ggml computes it.
    const float theta = pos * powf(freq_base, -2.0f * i / rot_dim);
    float sn, cs;
    sincosf(theta, &sn, &cs);
    float* head = row + h * head_dim;
    const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    const float x0 = head[a], x1 = head[b];
    head[a] = x0 * cs - x1 * sn;
    head[b] = x0 * sn + x1 * cs;
  }
}

}  // namespace

void LaunchRope(float* x, const int32_t* positions, int n, int n_heads, int head_dim, int rot_dim,
                float freq_base, bool neox, Stream s) {
  if (n == 0) return;
  const dim3 grid(Blocks(static_cast<int64_t>(n_heads) * (rot_dim / 2), kThreads), n);
  if (grid.x == 0) return;
  RopeKernel<<<grid, kThreads, 0, ToStream(s)>>>(x, positions, n_heads, head_dim, rot_dim, freq_base,
                                               neox);
}

}  // namespace rocmforge::gpu
