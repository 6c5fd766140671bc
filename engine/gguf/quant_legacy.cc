// The 32-wide "legacy" formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1: one fp16
// scale (and, for the _1 kinds, an fp16 min) per block of 32. Layouts and
// rounding follow ggml's dequantize_row_* / quantize_row_*_ref so files and GPU
// kernels agree bit for bit: nibble j of a block holds element j in its low
// half and element j+16 in its high half; Q5 keeps the fifth bits in qh
// (bit j for element j).
#include <algorithm>

#include "engine/gguf/quant_internal.h"

// Bit-exact agreement with ggml needs every a*b+c rounded twice, as written:
// clang would otherwise fuse them into FMAs (GCC does not in ISO C++ mode).
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

namespace rocmforge::quant::internal {
namespace {

constexpr int kQK = 32;

void MinMax(const float* x, float* min, float* max) {
  *min = 3.4e38f;
  *max = -3.4e38f;
  for (int j = 0; j < kQK; ++j) {
    *min = std::min(*min, x[j]);
    *max = std::max(*max, x[j]);
  }
}

template <class Block>
void DequantNibbles(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    // Decoded into v first, then scaled in a loop of its own, which the
    // compiler vectorizes (fused, every float store might change the block's
    // bytes as far as it can tell).
    int v[kQK];
    const uint32_t qh = FifthBits(b[i]);
    for (int j = 0; j < kQK / 2; ++j) LegacyPair(b[i], qh, j, &v[j], &v[j + kQK / 2]);
    const float d = H2F(b[i].d);
    if constexpr (kHasMin<Block>) {
      const float m = H2F(b[i].m);
      for (int j = 0; j < kQK; ++j) dst[j] = v[j] * d + m;
    } else {
      for (int j = 0; j < kQK; ++j) dst[j] = v[j] * d;
    }
  }
}

template <class Block>
void DequantQ8(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = H2F(b[i].d);
    for (int j = 0; j < kQK; ++j) dst[j] = b[i].qs[j] * d;
  }
}

// Stores the codes of elements j and j + 16 (0..15, or 0..31 for Q5) the way
// LegacyPair reads them; a Q5 block's fifth bits collect in *qh, which the
// caller copies into the block once all 16 pairs are in.
template <class Block>
inline void StorePair(int j, int q0, int q1, Block* b, uint32_t* qh) {
  b->qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
  if constexpr (kHasQh<Block>) {
    *qh |= static_cast<uint32_t>((q0 & 0x10) >> 4) << j;
    *qh |= static_cast<uint32_t>((q1 & 0x10) >> 4) << (j + kQK / 2);
  }
}

template <class Block>
inline void StoreFifthBits(uint32_t qh, Block* b) {
  if constexpr (kHasQh<Block>) std::memcpy(b->qh, &qh, 4);
}

// Q4_0 / Q5_0: d = max / -zero puts the value of largest magnitude at code 0,
// so the full code range is used; codes are round(x / d) + zero.
template <class Block>
void QuantSymmetric(const float* x, void* dst, int64_t n) {
  constexpr int kZero = kHasQh<Block> ? 16 : 8;
  auto* b = static_cast<Block*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax;
    const float max = SignedAbsMax(x, kQK, &amax);
    const float d = max / -kZero;
    const float id = d ? 1.0f / d : 0.0f;
    b[i].d = F2H(d);
    auto code = [&](float v) {
      return std::min(2 * kZero - 1, static_cast<int>(static_cast<int8_t>(v * id + (kZero + 0.5f))));
    };
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) StorePair(j, code(x[j]), code(x[j + kQK / 2]), &b[i], &qh);
    StoreFifthBits(qh, &b[i]);
  }
}

// Q4_1 / Q5_1: codes round((x - min) / d) in [0, nmax] with d = (max - min) /
// nmax. ggml clamps Q4_1's codes but not Q5_1's; the clamp cannot fire for
// either ((x - min) * id is at most nmax plus a few ulps, so + 0.5 truncates
// to nmax), so one rule serves both.
template <class Block>
void QuantWithMin(const float* x, void* dst, int64_t n) {
  constexpr int kNmax = kHasQh<Block> ? 31 : 15;
  auto* b = static_cast<Block*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float min, max;
    MinMax(x, &min, &max);
    const float d = (max - min) / kNmax;
    const float id = d ? 1.0f / d : 0.0f;
    b[i].d = F2H(d);
    b[i].m = F2H(min);
    auto code = [&](float v) {
      return std::min(kNmax, static_cast<int>(static_cast<int8_t>((v - min) * id + 0.5f)));
    };
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) StorePair(j, code(x[j]), code(x[j + kQK / 2]), &b[i], &qh);
    StoreFifthBits(qh, &b[i]);
  }
}

// Q8_0 / Q8_1 codes round(x / d) with d = amax / 127; returns d.
float QuantQ8Codes(const float* x, int8_t* qs) {
  float amax;
  SignedAbsMax(x, kQK, &amax);
  const float d = amax / 127;
  const float id = d ? 1.0f / d : 0.0f;
  for (int j = 0; j < kQK; ++j) qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  return d;
}

}  // namespace

void DequantQ4_0(const void* src, float* dst, int64_t n) { DequantNibbles<BlockQ4_0>(src, dst, n); }
void DequantQ4_1(const void* src, float* dst, int64_t n) { DequantNibbles<BlockQ4_1>(src, dst, n); }
void DequantQ5_0(const void* src, float* dst, int64_t n) { DequantNibbles<BlockQ5_0>(src, dst, n); }
void DequantQ5_1(const void* src, float* dst, int64_t n) { DequantNibbles<BlockQ5_1>(src, dst, n); }
void DequantQ8_0(const void* src, float* dst, int64_t n) { DequantQ8<BlockQ8_0>(src, dst, n); }
void DequantQ8_1(const void* src, float* dst, int64_t n) { DequantQ8<BlockQ8_1>(src, dst, n); }

void QuantQ4_0(const float* x, void* dst, int64_t n) { QuantSymmetric<BlockQ4_0>(x, dst, n); }
void QuantQ5_0(const float* x, void* dst, int64_t n) { QuantSymmetric<BlockQ5_0>(x, dst, n); }
void QuantQ4_1(const float* x, void* dst, int64_t n) { QuantWithMin<BlockQ4_1>(x, dst, n); }
void QuantQ5_1(const float* x, void* dst, int64_t n) { QuantWithMin<BlockQ5_1>(x, dst, n); }

void QuantQ8_0(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) b[i].d = F2H(QuantQ8Codes(x, b[i].qs));
}

// Q8_1 also stores s = d * (sum of the codes), as its layout defines.
void QuantQ8_1(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    const float d = QuantQ8Codes(x, b[i].qs);
    b[i].d = F2H(d);
    int sum = 0;
    for (int j = 0; j < kQK; ++j) sum += b[i].qs[j];
    b[i].s = F2H(sum * d);
  }
}

}  // namespace rocmforge::quant::internal
