// Embedding lookup: dequantizes one table row per step token.
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/quant_device.h"

namespace rocmforge::gpu {
namespace {

constexpr int kThreads = 128;

template <GgmlType T>
__global__ void EmbedKernel(const uint8_t* table, int64_t rows, int64_t cols, int64_t row_bytes,
                            const int32_t* tokens, float* out) {
  GridDependencyBegin();
  const int t = blockIdx.x;
  const int64_t id = tokens[t];
  float* dst = out + static_cast<int64_t>(t) * cols;
  if (id < 0 || id >= rows) {
    for (int64_t e = threadIdx.x; e < cols; e += blockDim.x) dst[e] = 0.0f;
    return;
  }
  const uint8_t* row = table + id * row_bytes;
  for (int64_t e0 = threadIdx.x * 8; e0 < cols; e0 += blockDim.x * 8) {
    float v[8];
    Dequant8<T>(row, e0, v);
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[e0 + i] = v[i];
  }
}

template <GgmlType T>
void Launch(const void* table, int64_t rows, int64_t cols, const int32_t* tokens, int n, float* out,
            Stream s) {
  const int64_t row_bytes = cols / BlockElems(T) * BlockBytes(T);
  LaunchKernel(EmbedKernel<T>, n, kThreads, 0, s, static_cast<const uint8_t*>(table), rows, cols,
               row_bytes, tokens, out);
}

}  // namespace

void LaunchEmbed(GgmlType type, const void* table, int64_t rows, int64_t cols,
                 const int32_t* tokens, int n, float* out, Stream s) {
  if (n == 0) return;
  switch (type) {
    case GgmlType::F32: return Launch<GgmlType::F32>(table, rows, cols, tokens, n, out, s);
    case GgmlType::F16: return Launch<GgmlType::F16>(table, rows, cols, tokens, n, out, s);
    case GgmlType::BF16: return Launch<GgmlType::BF16>(table, rows, cols, tokens, n, out, s);
    case GgmlType::Q8_0: return Launch<GgmlType::Q8_0>(table, rows, cols, tokens, n, out, s);
    case GgmlType::Q4_0: return Launch<GgmlType::Q4_0>(table, rows, cols, tokens, n, out, s);
    case GgmlType::Q4_K: return Launch<GgmlType::Q4_K>(table, rows, cols, tokens, n, out, s);
    case GgmlType::Q5_K: return Launch<GgmlType::Q5_K>(table, rows, cols, tokens, n, out, s);
    case GgmlType::Q6_K: return Launch<GgmlType::Q6_K>(table, rows, cols, tokens, n, out, s);
    case GgmlType::Q2_K: return Launch<GgmlType::Q2_K>(table, rows, cols, tokens, n, out, s);
    case GgmlType::Q3_K: return Launch<GgmlType::Q3_K>(table, rows, cols, tokens, n, out, s);
    default: return;  // the backend rejects other types at load
  }
}

}  // namespace rocmforge::gpu
