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

// Absolute maximum, and the signed value that has it (the _0 kinds map that
// value to the extreme negative code so the full code range is used).
void AbsMax(const float* x, float* amax, float* max) {
  *amax = 0.f;
  *max = 0.f;
  for (int j = 0; j < kQK; ++j) {
    const float v = x[j];
    if (*amax < std::fabs(v)) {
      *amax = std::fabs(v);
      *max = v;
    }
  }
}

void MinMax(const float* x, float* min, float* max) {
  *min = 3.4e38f;
  *max = -3.4e38f;
  for (int j = 0; j < kQK; ++j) {
    *min = std::min(*min, x[j]);
    *max = std::max(*max, x[j]);
  }
}

}  // namespace

void DequantQ4_0(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ4_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = H2F(b[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[j] = ((b[i].qs[j] & 0x0F) - 8) * d;
      dst[j + kQK / 2] = ((b[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void DequantQ4_1(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ4_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = H2F(b[i].d), m = H2F(b[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[j] = (b[i].qs[j] & 0x0F) * d + m;
      dst[j + kQK / 2] = (b[i].qs[j] >> 4) * d + m;
    }
  }
}

void DequantQ5_0(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ5_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = H2F(b[i].d);
    uint32_t qh;
    std::memcpy(&qh, b[i].qh, 4);
    for (int j = 0; j < kQK / 2; ++j) {
      const int h0 = ((qh >> j) << 4) & 0x10;
      const int h1 = (qh >> (j + 12)) & 0x10;
      dst[j] = (((b[i].qs[j] & 0x0F) | h0) - 16) * d;
      dst[j + kQK / 2] = (((b[i].qs[j] >> 4) | h1) - 16) * d;
    }
  }
}

void DequantQ5_1(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ5_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = H2F(b[i].d), m = H2F(b[i].m);
    uint32_t qh;
    std::memcpy(&qh, b[i].qh, 4);
    for (int j = 0; j < kQK / 2; ++j) {
      const int h0 = ((qh >> j) << 4) & 0x10;
      const int h1 = (qh >> (j + 12)) & 0x10;
      dst[j] = ((b[i].qs[j] & 0x0F) | h0) * d + m;
      dst[j + kQK / 2] = ((b[i].qs[j] >> 4) | h1) * d + m;
    }
  }
}

void DequantQ8_0(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = H2F(b[i].d);
    for (int j = 0; j < kQK; ++j) dst[j] = b[i].qs[j] * d;
  }
}

void DequantQ8_1(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ8_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = H2F(b[i].d);
    for (int j = 0; j < kQK; ++j) dst[j] = b[i].qs[j] * d;
  }
}

void QuantQ4_0(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ4_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax, max;
    AbsMax(x, &amax, &max);
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    b[i].d = F2H(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + kQK / 2] * id + 8.5f)));
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void QuantQ4_1(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ4_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float min, max;
    MinMax(x, &min, &max);
    const float d = (max - min) / 15;
    const float id = d ? 1.0f / d : 0.0f;
    b[i].d = F2H(d);
    b[i].m = F2H(min);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>((x[j] - min) * id + 0.5f)));
      const int q1 =
          std::min(15, static_cast<int>(static_cast<int8_t>((x[j + kQK / 2] - min) * id + 0.5f)));
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void QuantQ5_0(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ5_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax, max;
    AbsMax(x, &amax, &max);
    const float d = max / -16;
    const float id = d ? 1.0f / d : 0.0f;
    b[i].d = F2H(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f)));
      const int q1 = std::min(31, static_cast<int>(static_cast<int8_t>(x[j + kQK / 2] * id + 16.5f)));
      b[i].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= static_cast<uint32_t>((q0 & 0x10) >> 4) << j;
      qh |= static_cast<uint32_t>((q1 & 0x10) >> 4) << (j + kQK / 2);
    }
    std::memcpy(b[i].qh, &qh, 4);
  }
}

void QuantQ5_1(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ5_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float min, max;
    MinMax(x, &min, &max);
    const float d = (max - min) / 31;
    const float id = d ? 1.0f / d : 0.0f;
    b[i].d = F2H(d);
    b[i].m = F2H(min);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = static_cast<int>(static_cast<int8_t>((x[j] - min) * id + 0.5f));
      const int q1 = static_cast<int>(static_cast<int8_t>((x[j + kQK / 2] - min) * id + 0.5f));
      b[i].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= static_cast<uint32_t>((q0 & 0x10) >> 4) << j;
      qh |= static_cast<uint32_t>((q1 & 0x10) >> 4) << (j + kQK / 2);
    }
    std::memcpy(b[i].qh, &qh, 4);
  }
}

void QuantQ8_0(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax, max;
    AbsMax(x, &amax, &max);
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    b[i].d = F2H(d);
    for (int j = 0; j < kQK; ++j) b[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  }
}

void QuantQ8_1(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax, max;
    AbsMax(x, &amax, &max);
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    b[i].d = F2H(d);
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
      b[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
      sum += b[i].qs[j];
    }
    b[i].s = F2H(sum * d);
  }
}

}  // namespace rocmforge::quant::internal
