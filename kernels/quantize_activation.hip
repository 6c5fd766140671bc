// Quantizes float activations to int8 slices of 32 values (ActQ8) for the int8
// dot-product matmul path, with exactly the CPU reference's rules
// (engine/gguf/quant_*.cc), so GPU and CPU dot the same integers:
//  * legacy weights (Q8_0, Q4_0) pair with Q8_0 activations: per 32 values
//    d = amax / 127 stored as f16, q = round(x / d) (half away from zero);
//  * k-quant weights pair with Q8_K activations: per 256 values
//    iscale = -127 / max (max = the value of largest magnitude),
//    q = clamp(round-half-even(iscale * x), -127, 127), d = 1 / iscale.
// Each ActQ8 slice carries its d and s = d * sum(q). The per-value math lives in
// kernels/act_quant_device.h, shared with the fused producers (RMSNorm in
// rmsnorm.hip, SwiGLU below), so every path yields the same integers.
#include "kernels/act_quant_device.h"
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/quant_device.h"

namespace rocmforge::gpu {
namespace {

constexpr int kThreads = 256;  // one thread per value; one Q8_K group per block

// Where the values come from: the activation itself, or SwiGLU of gate and up
// (then the float result is also written, as LaunchSwiGLU does).
struct Plain {
  const float* x;
  __device__ float operator()(int64_t i) const { return x[i]; }
};
struct SwiGLUValue {
  const float* gate;
  const float* up;
  float* out;
  __device__ float operator()(int64_t i) const {
    const float g = gate[i];
    const float v = g / (1.0f + expf(-g)) * up[i];  // as elementwise.hip
    out[i] = v;
    return v;
  }
};

template <class Producer>
__global__ void QuantizeQ8_0Kernel(Producer f, int64_t total, ActQ8* out) {
  GridDependencyBegin();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const float v = i < total ? f(i) : 0.0f;
  QuantizeQ8_0Value(v, i, i < total, out);
}

// One block = one 256-value Q8_K group (total is a multiple of 256).
template <class Producer>
__global__ void QuantizeQ8_KKernel(Producer f, ActQ8* out) {
  __shared__ AbsMaxArg g_red[kMaxWaves];
  __shared__ float s_max;
  GridDependencyBegin();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const float v = f(i);
  const AbsMaxArg a = WaveAbsMaxArg(AbsMaxArg{fabsf(v), v, static_cast<int>(threadIdx.x)});
  const int lane = threadIdx.x % kWaveSize, wave = threadIdx.x / kWaveSize;
  if (lane == 0) g_red[wave] = a;
  __syncthreads();
  if (threadIdx.x == 0) {
    AbsMaxArg b = g_red[0];
    for (int w = 1; w < static_cast<int>(blockDim.x) / kWaveSize; ++w) b = Better(b, g_red[w]);
    s_max = b.amax == 0.0f ? 0.0f : b.value;
  }
  __syncthreads();
  QuantizeQ8_KValue(v, s_max, i, true, out);
}

template <class Producer>
void Launch(GgmlType weight_type, Producer f, int64_t total, ActQ8* out, Stream s) {
  if (total == 0) return;
  if (weight_type == GgmlType::Q8_0 || weight_type == GgmlType::Q4_0) {
    LaunchKernel(QuantizeQ8_0Kernel<Producer>, Blocks(total, kThreads), kThreads, 0, s, f, total, out);
  } else {
    LaunchKernel(QuantizeQ8_KKernel<Producer>, static_cast<unsigned>(total / kThreads), kThreads, 0, s,
                 f, out);
  }
}

}  // namespace

void LaunchQuantizeActivation(GgmlType weight_type, const float* x, int64_t total, void* out,
                              Stream s) {
  Launch(weight_type, Plain{x}, total, static_cast<ActQ8*>(out), s);
}

void LaunchSwiGLUQuantize(const float* gate, const float* up, float* out, int64_t n,
                          GgmlType weight_type, void* xq, Stream s) {
  Launch(weight_type, SwiGLUValue{gate, up, out}, n, static_cast<ActQ8*>(xq), s);
}

}  // namespace rocmforge::gpu
