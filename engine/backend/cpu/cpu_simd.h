// Float32 vector kernels the CPU backend's own ops use (attention, norms).
// An AVX2+FMA version is chosen at run time when the CPU has it; the scalar
// one is the reference and the fallback.
#pragma once

#include <cstdint>

namespace rocmforge::cpu {

// sum a[i] * b[i]
float DotF32(const float* a, const float* b, int64_t n);
// y[i] += a * x[i]
void AxpyF32(float a, const float* x, float* y, int64_t n);

// Attention over a run of n K / V rows `stride` floats apart (one KV block of
// one head), results equal to calling the one-row kernels row by row:
// scores[j] = DotF32(q, k + j * stride, hd) * scale, and
// AxpyF32(p[j], v + j * stride, out, hd) for j = 0, 1, ... n - 1 in order.
void ScoresF32(const float* q, const float* k, int64_t stride, int n, int hd, float scale, float* scores);
void AccumulateRowsF32(const float* p, const float* v, int64_t stride, int n, int hd, float* out);

// The scalar references (also used when AVX2 is absent).
float DotF32Scalar(const float* a, const float* b, int64_t n);
void AxpyF32Scalar(float a, const float* x, float* y, int64_t n);
// AVX2 versions (defined in cpu_simd_avx2.cc; call only when HaveAvx2()).
float DotF32Avx2(const float* a, const float* b, int64_t n);
void AxpyF32Avx2(float a, const float* x, float* y, int64_t n);
// The run kernels' AVX2 forms: ScoresF32Avx2 needs hd % 16 == 0 and
// AccumulateRowsF32Avx2 hd % 8 == 0 (the dispatchers check).
void ScoresF32Avx2(const float* q, const float* k, int64_t stride, int n, int hd, float scale, float* scores);
void AccumulateRowsF32Avx2(const float* p, const float* v, int64_t stride, int n, int hd, float* out);

bool HaveAvx2();

}  // namespace rocmforge::cpu

#include <cstddef>

#include "engine/gguf/ggml_types.h"

namespace rocmforge::cpu {

// MatMul micro-kernel for Q8_0 / Q4_0 weights with Q8_0 activations:
// y[t * y_stride + r] for weight rows [r0, r1) and tokens [t0, t1), several
// tokens per weight block load. The same integer block sums as quant::VecDot
// (float accumulation order differs: agreement to float rounding), and the
// same order for any number of tokens. act_scales[t * (cols / 32) + i]: token
// t's block i scale (its Q8_0 d) as a float, converted once by the caller for
// every row range and token tile. Returns false (computing nothing) for other
// types or without AVX2.
bool MatMulTileQ8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const uint8_t* act,
                  size_t act_bytes, const float* act_scales, int64_t t0, int64_t t1, int64_t cols, float* y,
                  int64_t y_stride);

}  // namespace rocmforge::cpu
