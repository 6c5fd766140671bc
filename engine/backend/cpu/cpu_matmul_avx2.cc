// AVX2 prefill micro-kernel for Q8_0 / Q4_0 weights times Q8_0 activations
// (compiled with -mavx2 -mfma -mf16c; entered only after HaveAvx2()).
// Used for decode too (one token): several tokens share each weight block's
// load and sign work, activation scales come as floats, and two accumulator chains
// per token keep the FMA unit busy. Per output: one int32 dot per 32-block,
// scaled by d_w * d_x, accumulated lane by lane, then a horizontal sum.
#include "engine/backend/cpu/cpu_simd.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

namespace rocmforge::cpu {
namespace {

inline float HalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

inline float Hsum(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

inline __m256i Load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Weight block i of a row as 32 signed bytes, and its scale.
inline __m256i WeightBytes(GgmlType type, const uint8_t* row, int64_t i, float* d) {
  if (type == GgmlType::Q8_0) {
    const auto* b = reinterpret_cast<const BlockQ8_0*>(row) + i;
    *d = HalfToFloat(b->d);
    return Load32(b->qs);
  }
  const auto* b = reinterpret_cast<const BlockQ4_0*>(row) + i;
  *d = HalfToFloat(b->d);
  const __m128i tmp = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs));
  const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(tmp, 4), tmp), _mm256_set1_epi8(0x0F));
  return _mm256_sub_epi8(nib, _mm256_set1_epi8(8));
}

// acc += d_w * d_y * (x . y) for weight block x (bytes and |x|, scale dw
// broadcast) and activation block yb with its scale dy as a float: the signs
// move onto y so maddubs sees |x|. dw * dy is the same float product the
// scalar form takes, so the result does not depend on how dy was kept.
inline __m256 BlockFma(__m256i x, __m256i ax, __m256 dw, const BlockQ8_0* yb, const float* dy, __m256 acc) {
  const __m256i sy = _mm256_sign_epi8(Load32(yb->qs), x);
  const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
  return _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(dy)), _mm256_cvtepi32_ps(p), acc);
}

// Two accumulators per token (even and odd blocks) break the FMA latency
// chain; every K uses the same order, so prefill and decode agree exactly.
// The loop takes blocks two at a time so the accumulators are named
// registers (indexing them by i & 1 kept them in memory: a store and a
// reload around every FMA). dys[k][i]: token k's block i scale as a float.
template <int K>
void Tile(GgmlType type, const uint8_t* wrow, const uint8_t* const* act, const float* const* dys, int64_t blocks,
          float* const* out) {
  __m256 even[K], odd[K];
  const BlockQ8_0* y[K];
  for (int k = 0; k < K; ++k) {
    even[k] = odd[k] = _mm256_setzero_ps();
    y[k] = reinterpret_cast<const BlockQ8_0*>(act[k]);
  }
  int64_t i = 0;
  for (; i + 2 <= blocks; i += 2) {
    float d0, d1;
    const __m256i x0 = WeightBytes(type, wrow, i, &d0), x1 = WeightBytes(type, wrow, i + 1, &d1);
    const __m256i a0 = _mm256_sign_epi8(x0, x0), a1 = _mm256_sign_epi8(x1, x1);  // |x|
    const __m256 w0 = _mm256_set1_ps(d0), w1 = _mm256_set1_ps(d1);
    for (int k = 0; k < K; ++k) {
      even[k] = BlockFma(x0, a0, w0, y[k] + i, dys[k] + i, even[k]);
      odd[k] = BlockFma(x1, a1, w1, y[k] + i + 1, dys[k] + i + 1, odd[k]);
    }
  }
  if (i < blocks) {  // an odd count: the last block is even
    float d0;
    const __m256i x0 = WeightBytes(type, wrow, i, &d0);
    const __m256i a0 = _mm256_sign_epi8(x0, x0);
    const __m256 w0 = _mm256_set1_ps(d0);
    for (int k = 0; k < K; ++k) even[k] = BlockFma(x0, a0, w0, y[k] + i, dys[k] + i, even[k]);
  }
  for (int k = 0; k < K; ++k) *out[k] = Hsum(_mm256_add_ps(even[k], odd[k]));
}

}  // namespace

bool MatMulTileQ8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const uint8_t* act,
                  size_t act_bytes, const float* act_scales, int64_t t0, int64_t t1, int64_t cols, float* y,
                  int64_t y_stride) {
  if ((type != GgmlType::Q8_0 && type != GgmlType::Q4_0) || !HaveAvx2()) return false;
  constexpr int kTokens = 4;
  const int64_t blocks = cols / 32;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* wrow = w + r * row_bytes;
    int64_t t = t0;
    for (; t + kTokens <= t1; t += kTokens) {
      const uint8_t* a[kTokens];
      const float* d[kTokens];
      float* o[kTokens];
      for (int k = 0; k < kTokens; ++k) {
        a[k] = act + (t + k) * act_bytes;
        d[k] = act_scales + (t + k) * blocks;
        o[k] = y + (t + k) * y_stride + r;
      }
      Tile<kTokens>(type, wrow, a, d, blocks, o);
    }
    for (; t < t1; ++t) {
      const uint8_t* a[1] = {act + t * act_bytes};
      const float* d[1] = {act_scales + t * blocks};
      float* o[1] = {y + t * y_stride + r};
      Tile<1>(type, wrow, a, d, blocks, o);
    }
  }
  return true;
}

}  // namespace rocmforge::cpu

#else

namespace rocmforge::cpu {
bool MatMulTileQ8(GgmlType, const uint8_t*, size_t, int64_t, int64_t, const uint8_t*, size_t, const float*, int64_t,
                  int64_t, int64_t, float*, int64_t) {
  return false;
}
}  // namespace rocmforge::cpu

#endif
