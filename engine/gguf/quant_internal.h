// Internal to the quant_*.cc files: per-format kernels behind the dispatch in
// quant_dispatch.cc. Nothing outside engine/gguf/quant_*.cc includes this;
// the public contract is engine/gguf/quant.h.
//
// Naming: Dequant<T>(src, dst, n), Quant<T>(src, dst, n) with n a multiple of
// the block size; Dot<W>_<A>(w, a, n) for weight format W against activation
// format A (scalar reference); the Avx2* twins live in quant_avx2.cc.
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

}  // namespace rocmforge::quant::internal
