#include "engine/backend/cpu/cpu_simd.h"

namespace rocmforge::cpu {

bool HaveAvx2() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return have;
#else
  return false;
#endif
}

float DotF32Scalar(const float* a, const float* b, int64_t n) {
  // Four partial sums: the same association the SIMD code roughly has, and
  // fewer dependent adds.
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

void AxpyF32Scalar(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

#if !(defined(__x86_64__) || defined(__i386__))
float DotF32Avx2(const float* a, const float* b, int64_t n) { return DotF32Scalar(a, b, n); }
void AxpyF32Avx2(float a, const float* x, float* y, int64_t n) { AxpyF32Scalar(a, x, y, n); }
void ScoresF32Avx2(const float*, const float*, int64_t, int, int, float, float*) {}
void AccumulateRowsF32Avx2(const float*, const float*, int64_t, int, int, float*) {}
#endif

float DotF32(const float* a, const float* b, int64_t n) {
  return HaveAvx2() ? DotF32Avx2(a, b, n) : DotF32Scalar(a, b, n);
}

void AxpyF32(float a, const float* x, float* y, int64_t n) {
  if (HaveAvx2()) {
    AxpyF32Avx2(a, x, y, n);
  } else {
    AxpyF32Scalar(a, x, y, n);
  }
}

void ScoresF32(const float* q, const float* k, int64_t stride, int n, int hd, float scale, float* scores) {
  if (HaveAvx2() && hd % 16 == 0) return ScoresF32Avx2(q, k, stride, n, hd, scale, scores);
  for (int j = 0; j < n; ++j) scores[j] = DotF32(q, k + j * stride, hd) * scale;
}

void AccumulateRowsF32(const float* p, const float* v, int64_t stride, int n, int hd, float* out) {
  if (HaveAvx2() && hd % 8 == 0) return AccumulateRowsF32Avx2(p, v, stride, n, hd, out);
  for (int j = 0; j < n; ++j) AxpyF32(p[j], v + j * stride, out, hd);
}

}  // namespace rocmforge::cpu
