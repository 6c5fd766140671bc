// Scalar reference dot products: one weight row against one activation row
// made by QuantizeActivation. Integer products are summed exactly per block
// (or sub-block) and scaled once, as ggml's vec_dot_* do, so the AVX2 kernels
// can match these to float rounding.
#include "engine/gguf/quant_internal.h"

namespace rocmforge::quant::internal {
namespace {

constexpr int kQK = 32;

inline float F32Value(float v) { return v; }

// Float weights against an F32 row; ToF32 widens one stored element (a
// template argument, so it is inlined: no call through a pointer per element).
template <class T, float (*ToF32)(T)>
float DotFloat(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const T*>(w);
  const auto* y = static_cast<const float*>(a);
  double sum = 0;  // double: the reference must not be the noisy one
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(ToF32(x[i])) * y[i];
  return static_cast<float>(sum);
}

// Q4_0..Q5_1 against Q8_0: the integer products of a block are summed
// exactly and scaled once; the _1 kinds add min * (sum of the activations).
template <class Block>
float DotNibbles(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const Block*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK; ++i) {
    const uint32_t qh = FifthBits(x[i]);
    int sumi = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      int lo, hi;
      LegacyPair(x[i], qh, j, &lo, &hi);
      sumi += lo * y[i].qs[j];
      sumi += hi * y[i].qs[j + kQK / 2];
    }
    const float dy = H2F(y[i].d);
    if constexpr (kHasMin<Block>) {
      int sumy = 0;
      for (int j = 0; j < kQK; ++j) sumy += y[i].qs[j];
      sum += sumi * (H2F(x[i].d) * dy) + sumy * (H2F(x[i].m) * dy);
    } else {
      sum += sumi * (H2F(x[i].d) * dy);
    }
  }
  return sum;
}

// Q8_0 / Q8_1 against Q8_0 (Q8_1's stored sum is not needed here).
template <class Block>
float DotQ8(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const Block*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int sumi = 0;
    for (int j = 0; j < kQK; ++j) sumi += x[i].qs[j] * y[i].qs[j];
    sum += sumi * (H2F(x[i].d) * H2F(y[i].d));
  }
  return sum;
}

// Q4_K / Q5_K against Q8_K: 8 sub-blocks of 32, each with a 6-bit scale and
// min; the mins meet the activation through its 16-value sums (bsums).
template <class Block>
float DotK45(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const Block*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const int8_t* q8 = y[i].qs;
    int isum = 0, summs = 0;
    for (int p = 0; p < 4; ++p, q8 += 64) {
      uint8_t sc1, m1, sc2, m2;
      ScaleMinK4(2 * p, x[i].scales, &sc1, &m1);
      ScaleMinK4(2 * p + 1, x[i].scales, &sc2, &m2);
      int s1 = 0, s2 = 0;
      for (int l = 0; l < 32; ++l) {
        s1 += CodeK45(x[i], p, 0, l) * q8[l];
        s2 += CodeK45(x[i], p, 1, l) * q8[l + 32];
      }
      isum += sc1 * s1 + sc2 * s2;
      summs += m1 * (y[i].bsums[4 * p] + y[i].bsums[4 * p + 1]) +
               m2 * (y[i].bsums[4 * p + 2] + y[i].bsums[4 * p + 3]);
    }
    sum += y[i].d * H2F(x[i].d) * isum - y[i].d * H2F(x[i].dmin) * summs;
  }
  return sum;
}

}  // namespace

float DotF32_F32(const void* w, const void* a, int64_t n) { return DotFloat<float, F32Value>(w, a, n); }
float DotF16_F32(const void* w, const void* a, int64_t n) { return DotFloat<uint16_t, Fp16ToFp32>(w, a, n); }
float DotBF16_F32(const void* w, const void* a, int64_t n) { return DotFloat<uint16_t, Bf16ToFp32>(w, a, n); }

float DotQ4_0_Q8_0(const void* w, const void* a, int64_t n) { return DotNibbles<BlockQ4_0>(w, a, n); }
float DotQ4_1_Q8_0(const void* w, const void* a, int64_t n) { return DotNibbles<BlockQ4_1>(w, a, n); }
float DotQ5_0_Q8_0(const void* w, const void* a, int64_t n) { return DotNibbles<BlockQ5_0>(w, a, n); }
float DotQ5_1_Q8_0(const void* w, const void* a, int64_t n) { return DotNibbles<BlockQ5_1>(w, a, n); }
float DotQ8_0_Q8_0(const void* w, const void* a, int64_t n) { return DotQ8<BlockQ8_0>(w, a, n); }
float DotQ8_1_Q8_0(const void* w, const void* a, int64_t n) { return DotQ8<BlockQ8_1>(w, a, n); }

// ---- k-quants against Q8_K ----

float DotQ2_K_Q8_K(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ2_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int summs = 0;  // sum over sub-blocks of min code * activation sum
    for (int j = 0; j < 16; ++j) summs += (x[i].scales[j] >> 4) * y[i].bsums[j];
    int isum = 0;
    const uint8_t* q = x[i].qs;
    const int8_t* q8 = y[i].qs;
    int is = 0;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int part = 0; part < 2; ++part, q8 += 16) {
          int s = 0;
          for (int l = 0; l < 16; ++l) s += ((q[l + 16 * part] >> shift) & 3) * q8[l];
          isum += (x[i].scales[is++] & 0xF) * s;
        }
      }
    }
    sum += y[i].d * H2F(x[i].d) * isum - y[i].d * H2F(x[i].dmin) * summs;
  }
  return sum;
}

float DotQ3_K_Q8_K(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ3_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* q = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    const int8_t* q8 = y[i].qs;
    uint8_t m = 1;
    int is = 0, isum = 0;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
        for (int part = 0; part < 2; ++part, q8 += 16) {
          int s = 0;
          for (int l = 16 * part; l < 16 * part + 16; ++l) {
            s += (((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4)) * q8[l - 16 * part];
          }
          isum += ScaleQ3K(is++, x[i].scales) * s;
        }
      }
    }
    sum += y[i].d * H2F(x[i].d) * isum;
  }
  return sum;
}

float DotQ4_K_Q8_K(const void* w, const void* a, int64_t n) { return DotK45<BlockQ4_K>(w, a, n); }
float DotQ5_K_Q8_K(const void* w, const void* a, int64_t n) { return DotK45<BlockQ5_K>(w, a, n); }

float DotQ6_K_Q8_K(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ6_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    const int8_t* q8 = y[i].qs;
    int isum = 0;
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, q8 += 128) {
      int s[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // per 16-value sub-block
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        s[is] += (((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32) * q8[l];
        s[is + 2] += (((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32) * q8[l + 32];
        s[is + 4] += (((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32) * q8[l + 64];
        s[is + 6] += (((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32) * q8[l + 96];
      }
      for (int k = 0; k < 8; ++k) isum += sc[k] * s[k];
    }
    sum += y[i].d * H2F(x[i].d) * isum;
  }
  return sum;
}

float DotQ8_K_Q8_K(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ8_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int isum = 0;
    for (int j = 0; j < kQK_K; ++j) isum += x[i].qs[j] * y[i].qs[j];
    sum += x[i].d * y[i].d * isum;
  }
  return sum;
}

}  // namespace rocmforge::quant::internal
