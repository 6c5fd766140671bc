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

// The scalar references (also used when AVX2 is absent).
float DotF32Scalar(const float* a, const float* b, int64_t n);
void AxpyF32Scalar(float a, const float* x, float* y, int64_t n);
// AVX2 versions (defined in cpu_simd_avx2.cc; call only when HaveAvx2()).
float DotF32Avx2(const float* a, const float* b, int64_t n);
void AxpyF32Avx2(float a, const float* x, float* y, int64_t n);

bool HaveAvx2();

}  // namespace rocmforge::cpu
