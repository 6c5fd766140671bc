// AVX2+FMA+F16C dot products (this file is built with -mavx2 -mfma -mf16c and
// only called after quant_dispatch.cc has checked the CPU). Each kernel sums
// the same integer products as its scalar twin in quant_dot_scalar.cc, exactly,
// per block; only the float accumulation order differs, so results agree to
// float rounding. Types without a kernel here (Q8_1 weights) use the scalar code.
// Also the Q8_0 row quantizer (activation rows), which writes exactly the
// scalar quantizer's bytes.
#include "engine/gguf/quant_internal.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

namespace rocmforge::quant::internal {
namespace {

inline float HsumF32x8(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

inline int HsumI32x8(__m256i v) {
  __m128i r = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0x4E));
  r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0xB1));
  return _mm_cvtsi128_si32(r);
}

// Sum of x[i]*y[i] over 32 signed bytes, as 8 int32 partial sums.
// maddubs needs one unsigned operand: |x| times y with x's sign moved onto y.
inline __m256i DotI8x32(__m256i x, __m256i y) {
  const __m256i ax = _mm256_sign_epi8(x, x);
  const __m256i sy = _mm256_sign_epi8(y, x);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}

// 16 bytes of nibbles -> 32 bytes: low nibbles (elements 0..15) in the low
// lane, high nibbles (elements 16..31) in the high lane.
inline __m256i Nibbles32(const uint8_t* p) {
  const __m128i tmp = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i bytes = _mm256_set_m128i(_mm_srli_epi16(tmp, 4), tmp);
  return _mm256_and_si256(bytes, _mm256_set1_epi8(0x0F));
}

inline __m256i Load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// 32 bits -> 32 bytes, byte j = 0xFF where bit j is set (the Q5 fifth bits).
inline __m256i BytesFromBits32(const uint8_t* p) {
  uint32_t x32;
  std::memcpy(&x32, p, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                         0x0101010101010101, 0x0000000000000000);
  __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(x32)), shuf);
  bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

// Two int16 scales: the first for lanes 0-7 (bytes 0-15), the second for 8-15.
inline __m256i Scales2(int lo, int hi) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(hi)), _mm_set1_epi16(static_cast<int16_t>(lo)));
}

float Avx2DotF32(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const float*>(w);
  const auto* y = static_cast<const float*>(a);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), acc1);
  }
  float sum = HsumF32x8(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) sum += x[i] * y[i];
  return sum;
}

float Avx2DotF16(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(w);
  const auto* y = static_cast<const float*>(a);
  // Four independent accumulators hide the FMA latency.
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      const __m256 xk = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i + 8 * k)));
      acc[k] = _mm256_fmadd_ps(xk, _mm256_loadu_ps(y + i + 8 * k), acc[k]);
    }
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 xk = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    acc[0] = _mm256_fmadd_ps(xk, _mm256_loadu_ps(y + i), acc[0]);
  }
  float sum = HsumF32x8(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += Fp16ToFp32(x[i]) * y[i];
  return sum;
}

float Avx2DotBF16(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(w);
  const auto* y = static_cast<const float*>(a);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i wide =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    const __m256 xf = _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
    acc = _mm256_fmadd_ps(xf, _mm256_loadu_ps(y + i), acc);
  }
  float sum = HsumF32x8(acc);
  for (; i < n; ++i) sum += Bf16ToFp32(x[i]) * y[i];
  return sum;
}

float Avx2DotQ8_0(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const __m256 d = _mm256_set1_ps(H2F(x[i].d) * H2F(y[i].d));
    const __m256i p = DotI8x32(Load32(x[i].qs), Load32(y[i].qs));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
  }
  return HsumF32x8(acc);
}

// The 32 unsigned codes of a Q4_x / Q5_x block as bytes in element order
// (the layout LegacyPair in quant_internal.h reads): nibbles, plus 16 where a
// Q5 block's fifth bit is set.
template <class Block>
inline __m256i LegacyCodes32(const Block& b) {
  const __m256i nibbles = Nibbles32(b.qs);
  if constexpr (kHasQh<Block>) {
    return _mm256_or_si256(nibbles, _mm256_and_si256(BytesFromBits32(b.qh), _mm256_set1_epi8(16)));
  } else {
    return nibbles;
  }
}

// Q4_0 / Q5_0: signed values code - zero, then a signed byte dot product.
template <class Block>
float Avx2DotSymmetric(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const Block*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const __m256i zero = _mm256_set1_epi8(kHasQh<Block> ? 16 : 8);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const __m256 d = _mm256_set1_ps(H2F(x[i].d) * H2F(y[i].d));
    const __m256i qx = _mm256_sub_epi8(LegacyCodes32(x[i]), zero);
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(DotI8x32(qx, Load32(y[i].qs))), acc);
  }
  return HsumF32x8(acc);
}

// Q4_1 / Q5_1: codes are unsigned, so maddubs takes them directly; the min
// meets the activation through the block's sum of y.
template <class Block>
float Avx2DotWithMin(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const Block*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const __m256i ones16 = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const float dy = H2F(y[i].d);
    const __m256i qy = Load32(y[i].qs);
    const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(LegacyCodes32(x[i]), qy), ones16);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(H2F(x[i].d) * dy), _mm256_cvtepi32_ps(p), acc);
    const __m256i sy = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), qy), ones16);
    acc_min = _mm256_fmadd_ps(_mm256_set1_ps(H2F(x[i].m) * dy), _mm256_cvtepi32_ps(sy), acc_min);
  }
  return HsumF32x8(_mm256_add_ps(acc, acc_min));
}

float Avx2DotQ2_K(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ2_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m2 = _mm256_set1_epi8(3);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int summs = 0;
    for (int j = 0; j < 16; ++j) summs += (x[i].scales[j] >> 4) * y[i].bsums[j];
    __m256i sumi = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const __m256i q = Load32(x[i].qs + 32 * half);
      for (int k = 0; k < 4; ++k) {
        // Codes at bit pair k of the 32 bytes: 16 values of sub-block
        // 8*half+2k, then 16 of sub-block 8*half+2k+1.
        const __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), m2);
        const __m256i p = _mm256_maddubs_epi16(v, Load32(y[i].qs + 128 * half + 32 * k));
        const int is = 8 * half + 2 * k;
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, Scales2(x[i].scales[is] & 0xF, x[i].scales[is + 1] & 0xF)));
      }
    }
    sum += y[i].d * H2F(x[i].d) * HsumI32x8(sumi) - y[i].d * H2F(x[i].dmin) * summs;
  }
  return sum;
}

float Avx2DotQ3_K(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ3_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m2 = _mm256_set1_epi8(3);
  const __m256i one = _mm256_set1_epi8(1);
  const __m256i k4 = _mm256_set1_epi8(4);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int sc[16];
    for (int j = 0; j < 16; ++j) sc[j] = ScaleQ3K(j, x[i].scales);
    const __m256i hm = Load32(x[i].hmask);
    __m256i sumi = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const __m256i q = Load32(x[i].qs + 32 * half);
      for (int k = 0; k < 4; ++k) {
        // code + 4 = low 2 bits | high bit << 2, in 0..7; the high bit of
        // these 32 values is bit 4*half+k of hmask.
        const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), m2);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * half + k), one);
        const __m256i v = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 2));
        const __m256i y8 = Load32(y[i].qs + 128 * half + 32 * k);
        const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(v, y8), _mm256_maddubs_epi16(k4, y8));
        const int is = 8 * half + 2 * k;
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, Scales2(sc[is], sc[is + 1])));
      }
    }
    sum += y[i].d * H2F(x[i].d) * HsumI32x8(sumi);
  }
  return sum;
}

float Avx2DotQ8_K(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ8_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    __m256i sumi = _mm256_setzero_si256();
    for (int k = 0; k < kQK_K / 32; ++k) {
      sumi = _mm256_add_epi32(sumi, DotI8x32(Load32(x[i].qs + 32 * k), Load32(y[i].qs + 32 * k)));
    }
    sum += x[i].d * y[i].d * HsumI32x8(sumi);
  }
  return sum;
}

// Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins; the codes of
// sub-block pair j are the low / high nibbles of qs[32j..32j+31], Q5_K adding
// bits 2j / 2j+1 of qh as fifth bits.
template <class Block>
float Avx2DotK45(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const Block*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) ScaleMinK4(j, x[i].scales, &sc[j], &mn[j]);
    int summs = 0;
    for (int j = 0; j < 8; ++j) summs += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const __m256i q4 = Load32(x[i].qs + 32 * j);
      __m256i lo = _mm256_and_si256(q4, m4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
      if constexpr (kHasQh<Block>) {
        const __m256i qh = Load32(x[i].qh);
        const __m256i one = _mm256_set1_epi8(1);
        const __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * j), one);
        const __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * j + 1), one);
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(h0, 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(h1, 4));
      }
      const __m256i plo = _mm256_maddubs_epi16(lo, Load32(y[i].qs + 64 * j));
      const __m256i phi = _mm256_maddubs_epi16(hi, Load32(y[i].qs + 64 * j + 32));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * j])));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * j + 1])));
    }
    sum += y[i].d * H2F(x[i].d) * HsumI32x8(sumi) - y[i].d * H2F(x[i].dmin) * summs;
  }
  return sum;
}

float Avx2DotQ6_K(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ6_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m2 = _mm256_set1_epi8(3);
  const __m256i k32 = _mm256_set1_epi8(32);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    __m256i sumi = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = x[i].ql + 64 * half;
      const __m256i qh = Load32(x[i].qh + 32 * half);
      const int8_t* sc = x[i].scales + 8 * half;
      const int8_t* q8 = y[i].qs + 128 * half;
      const __m256i ql0 = Load32(ql), ql1 = Load32(ql + 32);
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4)),
          _mm256_or_si256(_mm256_and_si256(ql1, m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4)),
      };
      for (int k = 0; k < 4; ++k) {
        const __m256i y8 = Load32(q8 + 32 * k);
        // (q - 32) * y as q*y - 32*y, both with an unsigned first operand.
        const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q[k], y8), _mm256_maddubs_epi16(k32, y8));
        const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale));
      }
    }
    sum += y[i].d * H2F(x[i].d) * HsumI32x8(sumi);
  }
  return sum;
}

// Q8_0 activation rows, bit for bit QuantQ8_0 (quant_legacy.cc): amax is a
// max (exact in any order), d and 1/d are the same scalar expressions, each
// code the same product x * id, rounded half away from zero as std::round
// does: truncate, then step one away from zero when the dropped part (exact:
// v - trunc(v)) is at least 0.5.
void Avx2QuantQ8_0(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    __m256 v[4];
    __m256 amax8 = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      amax8 = _mm256_max_ps(_mm256_andnot_ps(sign, v[k]), amax8);  // a NaN lane is skipped, as in SignedAbsMax
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax8), _mm256_extractf128_ps(amax8, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax = _mm_cvtss_f32(m);
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    const __m256 id8 = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 p = _mm256_mul_ps(v[k], id8);
      const __m256 t = _mm256_round_ps(p, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __m256 away = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(p, t)), half, _CMP_GE_OQ);
      const __m256 step = _mm256_and_ps(away, _mm256_or_ps(_mm256_and_ps(sign, p), one));  // +-1 or 0
      q[k] = _mm256_cvtps_epi32(_mm256_add_ps(t, step));
    }
    // int32 -> int8 in order: the packs work per 128-bit lane, the permute restores it.
    const __m256i w16 = _mm256_packs_epi32(q[0], q[1]), x16 = _mm256_packs_epi32(q[2], q[3]);
    const __m256i b8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w16, x16), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(b[i].qs), b8);
    b[i].d = F2H(d);
  }
}

}  // namespace

QuantFn Avx2QuantFor(GgmlType t) { return t == GgmlType::Q8_0 ? Avx2QuantQ8_0 : nullptr; }

DotFn Avx2DotFor(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return Avx2DotF32;
    case GgmlType::F16: return Avx2DotF16;
    case GgmlType::BF16: return Avx2DotBF16;
    case GgmlType::Q8_0: return Avx2DotQ8_0;
    case GgmlType::Q4_0: return Avx2DotSymmetric<BlockQ4_0>;
    case GgmlType::Q4_1: return Avx2DotWithMin<BlockQ4_1>;
    case GgmlType::Q5_0: return Avx2DotSymmetric<BlockQ5_0>;
    case GgmlType::Q5_1: return Avx2DotWithMin<BlockQ5_1>;
    case GgmlType::Q2_K: return Avx2DotQ2_K;
    case GgmlType::Q3_K: return Avx2DotQ3_K;
    case GgmlType::Q4_K: return Avx2DotK45<BlockQ4_K>;
    case GgmlType::Q5_K: return Avx2DotK45<BlockQ5_K>;
    case GgmlType::Q6_K: return Avx2DotQ6_K;
    case GgmlType::Q8_K: return Avx2DotQ8_K;
    default: return nullptr;
  }
}

}  // namespace rocmforge::quant::internal

#else  // no AVX2 in this build (non-x86): everything runs the scalar code

namespace rocmforge::quant::internal {
DotFn Avx2DotFor(GgmlType) { return nullptr; }
QuantFn Avx2QuantFor(GgmlType) { return nullptr; }
}  // namespace rocmforge::quant::internal

#endif
