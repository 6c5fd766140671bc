// Compiled with -mavx2 -mfma (see engine/CMakeLists.txt); only called after
// HaveAvx2() said yes.
#include "engine/backend/cpu/cpu_simd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

namespace rocmforge::cpu {

static inline float HorizontalSum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  __m128 shuf = _mm_movehdup_ps(lo);
  __m128 sums = _mm_add_ps(lo, shuf);
  shuf = _mm_movehl_ps(shuf, sums);
  sums = _mm_add_ss(sums, shuf);
  return _mm_cvtss_f32(sums);
}

float DotF32Avx2(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  }
  float s = HorizontalSum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void AxpyF32Avx2(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * x[i];
}

// Four keys' (acc0 + acc1) vectors summed exactly as HorizontalSum sums each:
// per key a_i = lo_i + hi_i, then (a0 + a1) + (a2 + a3); here with the four
// keys side by side in the lanes after a 4 x 4 transpose.
static inline __m128 HorizontalSum4(__m256 v0, __m256 v1, __m256 v2, __m256 v3) {
  __m128 a0 = _mm_add_ps(_mm256_castps256_ps128(v0), _mm256_extractf128_ps(v0, 1));
  __m128 a1 = _mm_add_ps(_mm256_castps256_ps128(v1), _mm256_extractf128_ps(v1, 1));
  __m128 a2 = _mm_add_ps(_mm256_castps256_ps128(v2), _mm256_extractf128_ps(v2, 1));
  __m128 a3 = _mm_add_ps(_mm256_castps256_ps128(v3), _mm256_extractf128_ps(v3, 1));
  _MM_TRANSPOSE4_PS(a0, a1, a2, a3);  // a_i now holds element i of every key
  return _mm_add_ps(_mm_add_ps(a0, a1), _mm_add_ps(a2, a3));
}

void ScoresF32Avx2(const float* q, const float* k, int64_t stride, int n, int hd, float scale, float* scores) {
  // One key's two accumulators, in DotF32Avx2's order.
  auto key = [&](const float* kr, __m256* out) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (int i = 0; i < hd; i += 16) {
      acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(kr + i), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(kr + i + 8), acc1);
    }
    *out = _mm256_add_ps(acc0, acc1);
  };
  const __m128 vscale = _mm_set1_ps(scale);
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    __m256 v[4];
    for (int t = 0; t < 4; ++t) key(k + (j + t) * stride, &v[t]);
    _mm_storeu_ps(scores + j, _mm_mul_ps(HorizontalSum4(v[0], v[1], v[2], v[3]), vscale));
  }
  for (; j < n; ++j) {
    __m256 v;
    key(k + j * stride, &v);
    scores[j] = HorizontalSum(v) * scale;
  }
}

void AccumulateRowsF32Avx2(const float* p, const float* v, int64_t stride, int n, int hd, float* out) {
  // 32 outputs at a time stay in registers across the rows; each still gets
  // fmadd(p[j], v_j, out) in row order, as AxpyF32Avx2 gives it.
  for (int i = 0; i < hd; i += 32) {
    const int w = hd - i < 32 ? (hd - i) / 8 : 4;  // vectors in this chunk
    __m256 o[4];
    for (int c = 0; c < w; ++c) o[c] = _mm256_loadu_ps(out + i + 8 * c);
    for (int j = 0; j < n; ++j) {
      const __m256 a = _mm256_set1_ps(p[j]);
      const float* vr = v + j * stride + i;
      for (int c = 0; c < w; ++c) o[c] = _mm256_fmadd_ps(a, _mm256_loadu_ps(vr + 8 * c), o[c]);
    }
    for (int c = 0; c < w; ++c) _mm256_storeu_ps(out + i + 8 * c, o[c]);
  }
}

}  // namespace rocmforge::cpu
#endif
