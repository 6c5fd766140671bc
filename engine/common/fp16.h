// IEEE half and bfloat16 <-> float conversions, bit-exact, no hardware needed.
// The CPU backend's hot loops use F16C through the AVX2 paths instead.
#pragma once

#include <cstdint>
#include <cstring>

namespace rocmforge {

inline float Fp32FromBits(uint32_t w) { float f; std::memcpy(&f, &w, 4); return f; }
inline uint32_t Fp32ToBits(float f) { uint32_t w; std::memcpy(&w, &f, 4); return w; }

// Half -> float, handles zero, subnormals, inf and NaN.
inline float Fp16ToFp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    if (mant == 0) return Fp32FromBits(sign);
    // Subnormal: renormalise.
    while ((mant & 0x400u) == 0) { mant <<= 1; --exp; }
    ++exp;
    mant &= ~0x400u;
  } else if (exp == 31) {
    return Fp32FromBits(sign | 0x7f800000u | (mant << 13));
  }
  return Fp32FromBits(sign | ((exp + 112u) << 23) | (mant << 13));
}

// Float -> half with round-to-nearest-even; overflow goes to inf, NaN stays NaN.
inline uint16_t Fp32ToFp16(float f) {
  const uint32_t x = Fp32ToBits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or NaN
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (abs < 0x38800000u) {  // result is subnormal or zero
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t e = abs >> 23;
    const uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e;  // 14..24
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = abs - 0x38000000u;  // rebias exponent 127 -> 15
  r = (r + 0xfffu + ((r >> 13) & 1u)) >> 13;
  return static_cast<uint16_t>(sign | r);
}

inline float Bf16ToFp32(uint16_t h) { return Fp32FromBits(static_cast<uint32_t>(h) << 16); }

inline uint16_t Fp32ToBf16(float f) {
  uint32_t x = Fp32ToBits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

}  // namespace rocmforge
