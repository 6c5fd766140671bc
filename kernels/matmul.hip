// Matmul path selection: small batches read each weight byte once through the
// per-row dot kernels; larger ones reuse dequantized tiles across tokens on the
// matrix cores where the target has them (LaunchMatMulMma, which takes its
// batched-decode kernel for 9..64 tokens of Q4_K / Q6_K / Q8_0 where it applies:
// MatMulMmaNarrowTakes). Large n (prefill) takes the dense path where the
// caller's scratch holds the f16 copies (MatMulDenseTakes: the weights
// dequantized once, then a plain f16 GEMM; kernels/matmul_dense.hip).
#include "kernels/gpu_api.h"
#include "kernels/quant_device.h"

namespace rocmforge::gpu {

bool MatMulSupported(GgmlType type) {
  switch (type) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q8_0:
    case GgmlType::Q4_0: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
    case GgmlType::Q2_K: case GgmlType::Q3_K:
      return true;
    default:
      return false;
  }
}

size_t MatMulScratchBytes(int64_t cols, int n) {
  const int rows = n < kSmallBatchMax ? n : kSmallBatchMax;
  return static_cast<size_t>(rows) * static_cast<size_t>((cols + 31) / 32) * sizeof(ActQ8);
}

void LaunchMatMul(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x,
                  float* y, int n, void* scratch, Stream s) {
  LaunchMatMul(type, w, rows, cols, x, y, n, scratch, DenseScratch{}, s);
}

void LaunchMatMul(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x,
                  float* y, int n, void* scratch, const DenseScratch& dense, Stream s) {
  if (MatMulDenseTakes(type, w, rows, cols, n, dense)) {
    LaunchMatMulDense(type, w, rows, cols, x, y, n, dense, s);
  } else if (n <= kSmallBatchMax) {
    LaunchMatMulSmallBatch(type, w, rows, cols, x, y, n, scratch, s);
  } else {
    LaunchMatMulMma(type, w, rows, cols, x, y, n, s);
  }
}

}  // namespace rocmforge::gpu
