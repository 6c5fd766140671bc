// Internal to the quant_*.cc files: per-format kernels behind the dispatch in
// quant_dispatch.cc. Nothing outside engine/gguf/quant_*.cc includes this;
// the public contract is engine/gguf/quant.h.
//
// Naming: Dequant<T>(src, dst, n), Quant<T>(src, dst, n) with n a multiple of
// the block size; Dot<W>_<A>(w, a, n) for weight format W against activation
// format A (scalar reference); the Avx2* twins live in quant_avx2.cc. The
// inline block decoders below (LegacyPair, CodeK45) are shared by the
// dequantizers and the scalar dot products, so each layout is written once.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "engine/common/fp16.h"
#include "engine/gguf/ggml_types.h"

namespace rocmforge::quant::internal {

// Round to nearest, ties to even, as ggml's nearest_int does (valid for
// |x| < 2^22, which every caller guarantees by construction).
inline int NearestInt(float x) {
  const float v = x + 12582912.f;  // 1.5 * 2^23
  int32_t i;
  std::memcpy(&i, &v, 4);
  return (i & 0x007fffff) - 0x00400000;
}

inline float H2F(ggml_half h) { return Fp16ToFp32(h); }
inline ggml_half F2H(float f) { return Fp32ToFp16(f); }

// 6-bit scale and min number j (0..7) of a Q4_K / Q5_K super-block.
inline void ScaleMinK4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// 6-bit signed scale number j (0..15) of a Q3_K super-block, in -32..31.
inline int ScaleQ3K(int j, const uint8_t* scales) {
  const int low = j < 8 ? (scales[j] & 0xF) : (scales[j - 8] >> 4);
  const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// The value of largest magnitude among x[0..n-1] (the first such on ties),
// with that magnitude in *amax_out; 0 and 0 when all are zero. The symmetric
// quantizers map this value to their extreme negative code.
inline float SignedAbsMax(const float* x, int n, float* amax_out) {
  float max = 0.f, amax = 0.f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  *amax_out = amax;
  return max;
}

// Block traits, read off the layouts in ggml_types.h: the Q5 kinds (and
// Q5_K) keep fifth bits in qh; Q4_1 / Q5_1 carry an fp16 min m.
template <class Block>
inline constexpr bool kHasQh = requires(const Block& b) { b.qh; };
template <class Block>
inline constexpr bool kHasMin = requires(const Block& b) { b.m; };

// The fifth bits of a Q5_0 / Q5_1 block (bit j for element j); 0 for the
// other legacy kinds, which have none.
template <class Block>
inline uint32_t FifthBits(const Block& b) {
  uint32_t qh = 0;
  if constexpr (kHasQh<Block>) std::memcpy(&qh, b.qh, 4);
  return qh;
}

// The integer values of elements j and j + 16 (j in 0..15) of a Q4_0, Q4_1,
// Q5_0 or Q5_1 block, before the fp16 scale; qh = FifthBits(b). Byte j of qs
// holds element j in its low nibble and element j + 16 in its high one; Q5
// takes element j's fifth bit from bit j of qh. The _0 kinds subtract their
// zero point (8, or 16 for Q5_0) here; the _1 kinds give the raw code (the
// caller adds their min). One decoder serves dequantization and the scalar dot
// products, so the two cannot disagree about the layout; it works on pairs
// because that is how the nibbles are stored, which keeps the callers' loops
// as tight as hand-written ones.
template <class Block>
inline void LegacyPair(const Block& b, uint32_t qh, int j, int* lo, int* hi) {
  constexpr int kZero = kHasMin<Block> ? 0 : (kHasQh<Block> ? 16 : 8);
  *lo = ((b.qs[j] & 0x0F) | (((qh >> j) << 4) & 0x10)) - kZero;  // fifth bit: bit j
  *hi = ((b.qs[j] >> 4) | ((qh >> (j + 12)) & 0x10)) - kZero;     // bit j + 16
}

// Code of element l (0..31) of the first (second = 0) or second (second = 1)
// 32-value sub-block of pair p (0..3) of a Q4_K / Q5_K super-block: the low
// or high nibble of qs[32p + l]; Q5_K adds bit 2p + second of qh[l] as the
// fifth bit.
template <class Block>
inline int CodeK45(const Block& b, int p, int second, int l) {
  const uint8_t byte = b.qs[32 * p + l];
  const int code = second ? byte >> 4 : byte & 0xF;
  if constexpr (kHasQh<Block>) {
    const uint8_t fifth_bit = static_cast<uint8_t>(1 << (2 * p + second));
    return code + (b.qh[l] & fifth_bit ? 16 : 0);
  }
  return code;
}

// ---- float formats (quant_float.cc) ----
void DequantF16(const void* src, float* dst, int64_t n);
void DequantBF16(const void* src, float* dst, int64_t n);
void QuantF16(const float* src, void* dst, int64_t n);
void QuantBF16(const float* src, void* dst, int64_t n);

// ---- 32-wide legacy formats (quant_legacy.cc) ----
void DequantQ4_0(const void* src, float* dst, int64_t n);
void DequantQ4_1(const void* src, float* dst, int64_t n);
void DequantQ5_0(const void* src, float* dst, int64_t n);
void DequantQ5_1(const void* src, float* dst, int64_t n);
void DequantQ8_0(const void* src, float* dst, int64_t n);
void DequantQ8_1(const void* src, float* dst, int64_t n);
void QuantQ4_0(const float* src, void* dst, int64_t n);
void QuantQ4_1(const float* src, void* dst, int64_t n);
void QuantQ5_0(const float* src, void* dst, int64_t n);
void QuantQ5_1(const float* src, void* dst, int64_t n);
void QuantQ8_0(const float* src, void* dst, int64_t n);
void QuantQ8_1(const float* src, void* dst, int64_t n);

// ---- k-quants (quant_kquants.cc) ----
void DequantQ2_K(const void* src, float* dst, int64_t n);
void DequantQ3_K(const void* src, float* dst, int64_t n);
void DequantQ4_K(const void* src, float* dst, int64_t n);
void DequantQ5_K(const void* src, float* dst, int64_t n);
void DequantQ6_K(const void* src, float* dst, int64_t n);
void DequantQ8_K(const void* src, float* dst, int64_t n);
void QuantQ2_K(const float* src, void* dst, int64_t n);
void QuantQ3_K(const float* src, void* dst, int64_t n);
void QuantQ4_K(const float* src, void* dst, int64_t n);
void QuantQ5_K(const float* src, void* dst, int64_t n);
void QuantQ6_K(const float* src, void* dst, int64_t n);
void QuantQ8_K(const float* src, void* dst, int64_t n);

// ---- scalar dot products (quant_dot_scalar.cc) ----
// Float weights against an F32 activation row.
float DotF32_F32(const void* w, const void* a, int64_t n);
float DotF16_F32(const void* w, const void* a, int64_t n);
float DotBF16_F32(const void* w, const void* a, int64_t n);
// Legacy weights against a Q8_0 activation row.
float DotQ4_0_Q8_0(const void* w, const void* a, int64_t n);
float DotQ4_1_Q8_0(const void* w, const void* a, int64_t n);
float DotQ5_0_Q8_0(const void* w, const void* a, int64_t n);
float DotQ5_1_Q8_0(const void* w, const void* a, int64_t n);
float DotQ8_0_Q8_0(const void* w, const void* a, int64_t n);
float DotQ8_1_Q8_0(const void* w, const void* a, int64_t n);
// k-quant weights against a Q8_K activation row.
float DotQ2_K_Q8_K(const void* w, const void* a, int64_t n);
float DotQ3_K_Q8_K(const void* w, const void* a, int64_t n);
float DotQ4_K_Q8_K(const void* w, const void* a, int64_t n);
float DotQ5_K_Q8_K(const void* w, const void* a, int64_t n);
float DotQ6_K_Q8_K(const void* w, const void* a, int64_t n);
float DotQ8_K_Q8_K(const void* w, const void* a, int64_t n);

// ---- AVX2+FMA+F16C dot products (quant_avx2.cc); same contracts ----
// Null when this build has no AVX2 code (non-x86 targets).
using DotFn = float (*)(const void* w, const void* a, int64_t n);
// The AVX2 kernel for weight type t, or nullptr when there is none (the
// dispatcher then uses the scalar one).
DotFn Avx2DotFor(GgmlType t);
// The AVX2 quantizer of activation rows of type t, bit-identical to the
// scalar one, or nullptr (Q8_0 only: the CPU prefill's activation rows).
using QuantFn = void (*)(const float* src, void* dst, int64_t n);
QuantFn Avx2QuantFor(GgmlType t);

}  // namespace rocmforge::quant::internal
