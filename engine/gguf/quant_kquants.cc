// The k-quants Q2_K..Q6_K and Q8_K: super-blocks of 256 values made of 16- or
// 32-value sub-blocks, each with a small integer scale (and for Q2/Q4/Q5 a
// min) that is itself quantized against one fp16 super-scale. Layouts, bit
// packing and the scale searches (make_qx_quants, make_q3_quants,
// make_qkx2_quants) follow ggml-quants.c so our files match llama.cpp's.
#include <algorithm>

#include "engine/gguf/quant_internal.h"

// Bit-exact agreement with ggml needs every a*b+c rounded twice, as written:
// clang would otherwise fuse them into FMAs (GCC does not in ISO C++ mode).
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

namespace rocmforge::quant::internal {
namespace {

constexpr int kQK = kQK_K;
constexpr float kGroupMaxEps = 1e-15f;

// Rounds x[i] * iscale to codes l in [-nmax, nmax-1] and sums the weighted
// (w = x^2) least-squares terms of the fit x ~ scale * l: *sumlx = sum w x l,
// *suml2 = sum w l^2. Stores l + offset into L unless L is null.
inline void RoundAndFit(int n, int nmax, const float* x, float iscale, int8_t* L, int offset,
                        float* sumlx, float* suml2) {
  float slx = 0, sl2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
    if (L) L[i] = static_cast<int8_t>(l + offset);
    const float w = x[i] * x[i];
    slx += w * x[i] * l;
    sl2 += w * l * l;
  }
  *sumlx = slx;
  *suml2 = sl2;
}

// The start both symmetric searches share: *max = the value of largest
// magnitude, codes rounded against -nmax / *max (l + offset into L) and their
// fit. A group of (near) zeros gets all-zero codes and false: scale 0.
bool StartSymmetricFit(int n, int nmax, const float* x, int8_t* L, int offset, float* max, float* sumlx,
                       float* suml2) {
  float amax;
  *max = SignedAbsMax(x, n, &amax);
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return false;
  }
  RoundAndFit(n, nmax, x, -nmax / *max, L, offset, sumlx, suml2);
  return true;
}

// Symmetric scale search for signed codes in [-nmax, nmax-1]: starting at
// -nmax/max, tries 18 nearby scales and keeps the one with the best weighted
// (w = x^2) least-squares fit. Writes codes + nmax into L; returns the scale.
float MakeQxQuants(int n, int nmax, const float* x, int8_t* L) {
  float max, sumlx, suml2;
  if (!StartSymmetricFit(n, nmax, x, L, nmax, &max, &sumlx, &suml2)) return 0.f;
  float scale = suml2 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    const float iscale = -(nmax + 0.1f * is) / max;
    RoundAndFit(n, nmax, x, iscale, nullptr, 0, &sumlx, &suml2);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        L[i] = static_cast<int8_t>(nmax + std::clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Q3_K's variant: after the first rounding, moves single codes while that
// improves the weighted fit (up to 5 sweeps). Codes + nmax go into L.
float MakeQ3Quants(int n, int nmax, const float* x, int8_t* L) {
  float max, sumlx, suml2;
  if (!StartSymmetricFit(n, nmax, x, L, 0, &max, &sumlx, &suml2)) return 0.f;
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * L[i];
      if (slx > 0) {
        float sl2 = suml2 - w * L[i] * L[i];
        const int new_l = std::clamp(NearestInt(x[i] * sl2 / slx), -nmax, nmax - 1);
        if (new_l != L[i]) {
          slx += w * x[i] * new_l;
          sl2 += w * new_l * new_l;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0 ? sumlx / suml2 : 0.f;
}

// Asymmetric (scale, min) search for unsigned codes in [0, nmax]: tries
// nstep+1 scales around nmax/(max-min) and solves the weighted least squares
// for scale and min at each. Returns the scale; *the_min gets -min (>= 0).
float MakeQkx2Quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                     float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                     bool use_mad) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += weights[i];
    sum_x += weights[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_mad = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(std::clamp(NearestInt(iscale * (x[i] - min)), 0, nmax));
    float diff = scale * L[i] + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_mad += weights[i] * diff;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float mad = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * Laux[i] + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        mad += weights[i] * diff;
      }
      if (mad < best_mad) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_mad = mad;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// Re-rounds the n values x of one sub-block against its scale d and min dm
// as they will decode (x ~ d * code - dm): codes clamp(round((x + dm) / d),
// lo, hi) - lo. A zero scale keeps the codes of the search, as ggml does.
// (The symmetric formats pass dm = 0; x + 0 is x for every x but -0, and
// -0 and +0 round to the same code.)
template <class Code>
void ReRound(const float* x, int n, float d, float dm, int lo, int hi, Code* L) {
  if (!d) return;
  for (int i = 0; i < n; ++i) L[i] = static_cast<Code>(std::clamp(NearestInt((x[i] + dm) / d), lo, hi) - lo);
}

// Packs 2-bit codes L[0..255] the way Q2_K/Q3_K store them: byte l of each
// 32-byte half holds elements l, l+32, l+64, l+96 of that 128-value half.
void Pack2Bit(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQK; j += 128) {
    for (int l = 0; l < 32; ++l) {
      qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                           (L[j + l + 96] << 6));
    }
  }
}

// Shared by Q4_K and Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins.
// Fills d, dmin, scales and the codes L (0..nmax).
void QuantizeScalesMins32(const float* x, int nmax, float rmin, float rdelta, int nstep,
                          ggml_half* d_out, ggml_half* dmin_out, uint8_t* packed, uint8_t* L) {
  float mins[kQK / 32], scales[kQK / 32], weights[32];
  uint8_t Laux[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < kQK / 32; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = MakeQkx2Quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin,
                               rdelta, nstep, false);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::memset(packed, 0, kKScaleSize);
  for (int j = 0; j < kQK / 32; ++j) {
    const uint8_t ls = static_cast<uint8_t>(std::min(63, NearestInt(inv_scale * scales[j])));
    const uint8_t lm = static_cast<uint8_t>(std::min(63, NearestInt(inv_min * mins[j])));
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      packed[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      packed[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  *d_out = F2H(max_scale / 63.f);
  *dmin_out = F2H(max_min / 63.f);
  // Re-round every value against the scales as they will be decoded.
  for (int j = 0; j < kQK / 32; ++j) {
    uint8_t sc, m;
    ScaleMinK4(j, packed, &sc, &m);
    ReRound(x + 32 * j, 32, H2F(*d_out) * sc, H2F(*dmin_out) * m, 0, nmax, L + 32 * j);
  }
}

// Q4_K / Q5_K: 8 sub-blocks of 32, value = d * scale * code - dmin * min.
template <class Block>
void DequantK45(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = H2F(b[i].d), min = H2F(b[i].dmin);
    for (int p = 0; p < 4; ++p) {
      uint8_t sc, m;
      ScaleMinK4(2 * p, b[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      ScaleMinK4(2 * p + 1, b[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * CodeK45(b[i], p, 0, l) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * CodeK45(b[i], p, 1, l) - m2;
    }
  }
}

}  // namespace

// ---------------------------------------------------------------- dequantize

void DequantQ2_K(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ2_K*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = H2F(b[i].d), min = H2F(b[i].dmin);
    const uint8_t* q = b[i].qs;
    int is = 0;
    for (int half = 0; half < kQK; half += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int part = 0; part < 2; ++part) {
          const uint8_t sc = b[i].scales[is++];
          const float dl = d * (sc & 0xF), ml = min * (sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * ((q[l + 16 * part] >> shift) & 3) - ml;
        }
      }
    }
  }
}

void DequantQ3_K(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ3_K*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d_all = H2F(b[i].d);
    const uint8_t* q = b[i].qs;
    const uint8_t* hm = b[i].hmask;
    uint8_t m = 1;
    int is = 0;
    for (int half = 0; half < kQK; half += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
        for (int part = 0; part < 2; ++part) {
          const float dl = d_all * ScaleQ3K(is++, b[i].scales);
          for (int l = 16 * part; l < 16 * part + 16; ++l) {
            *y++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
          }
        }
      }
    }
  }
}

void DequantQ4_K(const void* src, float* y, int64_t n) { DequantK45<BlockQ4_K>(src, y, n); }
void DequantQ5_K(const void* src, float* y, int64_t n) { DequantK45<BlockQ5_K>(src, y, n); }

void DequantQ6_K(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ6_K*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = H2F(b[i].d);
    const uint8_t* ql = b[i].ql;
    const uint8_t* qh = b[i].qh;
    const int8_t* sc = b[i].scales;
    for (int half = 0; half < kQK; half += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * sc[is] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
    }
  }
}

void DequantQ8_K(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ8_K*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    for (int j = 0; j < kQK; ++j) *y++ = b[i].d * b[i].qs[j];
  }
}

// ------------------------------------------------------------------ quantize

void QuantQ2_K(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ2_K*>(dst);
  constexpr float q4scale = 15.f;
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    uint8_t L[kQK], Laux[16];
    float weights[16], mins[kQK / 16], scales[kQK / 16];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < kQK / 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = MakeQkx2Quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f,
                                 0.1f, 15, true);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (int j = 0; j < kQK / 16; ++j) b[i].scales[j] = static_cast<uint8_t>(NearestInt(iscale * scales[j]));
      b[i].d = F2H(max_scale / q4scale);
    } else {
      for (int j = 0; j < kQK / 16; ++j) b[i].scales[j] = 0;
      b[i].d = F2H(0.f);
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (int j = 0; j < kQK / 16; ++j) {
        b[i].scales[j] |= static_cast<uint8_t>(NearestInt(iscale * mins[j]) << 4);
      }
      b[i].dmin = F2H(max_min / q4scale);
    } else {
      b[i].dmin = F2H(0.f);
    }
    for (int j = 0; j < kQK / 16; ++j) {
      const float d = H2F(b[i].d) * (b[i].scales[j] & 0xF);
      ReRound(x + 16 * j, 16, d, H2F(b[i].dmin) * (b[i].scales[j] >> 4), 0, 3, L + 16 * j);
    }
    Pack2Bit(L, b[i].qs);
  }
}

void QuantQ3_K(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ3_K*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    int8_t L[kQK];
    float scales[kQK / 16];
    for (int j = 0; j < kQK / 16; ++j) scales[j] = MakeQ3Quants(16, 4, x + 16 * j, L + 16 * j);
    float amax;
    const float max_scale = SignedAbsMax(scales, kQK / 16, &amax);
    std::memset(b[i].scales, 0, 12);
    if (max_scale) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < kQK / 16; ++j) {
        const int l = std::clamp(NearestInt(iscale * scales[j]), -32, 31) + 32;
        if (j < 8) {
          b[i].scales[j] = static_cast<uint8_t>(l & 0xF);
        } else {
          b[i].scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
        }
        b[i].scales[j % 4 + 8] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
      }
      b[i].d = F2H(1 / iscale);
    } else {
      b[i].d = F2H(0.f);
    }
    for (int j = 0; j < kQK / 16; ++j) {
      ReRound(x + 16 * j, 16, H2F(b[i].d) * ScaleQ3K(j, b[i].scales), 0.f, -4, 3, L + 16 * j);
    }
    // High bit of element j goes to bit j/32 of hmask[j%32].
    uint8_t U[kQK];
    std::memset(b[i].hmask, 0, kQK / 8);
    for (int j = 0; j < kQK; ++j) {
      int l = L[j];
      if (l > 3) {
        b[i].hmask[j % 32] |= static_cast<uint8_t>(1 << (j / 32));
        l -= 4;
      }
      U[j] = static_cast<uint8_t>(l);
    }
    Pack2Bit(U, b[i].qs);
  }
}

void QuantQ4_K(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ4_K*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    uint8_t L[kQK];
    QuantizeScalesMins32(x, 15, -1.f, 0.1f, 20, &b[i].d, &b[i].dmin, b[i].scales, L);
    uint8_t* q = b[i].qs;
    for (int j = 0; j < kQK; j += 64, q += 32) {
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    }
  }
}

void QuantQ5_K(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ5_K*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    uint8_t L[kQK];
    QuantizeScalesMins32(x, 31, -0.5f, 0.1f, 15, &b[i].d, &b[i].dmin, b[i].scales, L);
    uint8_t* qh = b[i].qh;
    uint8_t* ql = b[i].qs;
    std::memset(qh, 0, kQK / 8);
    uint8_t m1 = 1, m2 = 2;
    for (int j = 0; j < kQK; j += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
      for (int l = 0; l < 32; ++l) {
        int l1 = L[j + l], l2 = L[j + l + 32];
        if (l1 > 15) {
          l1 -= 16;
          qh[l] |= m1;
        }
        if (l2 > 15) {
          l2 -= 16;
          qh[l] |= m2;
        }
        ql[l] = static_cast<uint8_t>(l1 | (l2 << 4));
      }
    }
  }
}

void QuantQ6_K(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ6_K*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    int8_t L[kQK];
    float scales[kQK / 16];
    for (int ib = 0; ib < kQK / 16; ++ib) scales[ib] = MakeQxQuants(16, 32, x + 16 * ib, L + 16 * ib);
    float max_abs_scale;
    const float max_scale = SignedAbsMax(scales, kQK / 16, &max_abs_scale);
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&b[i], 0, sizeof(BlockQ6_K));
      continue;
    }
    const float iscale = -128.f / max_scale;
    b[i].d = F2H(1 / iscale);
    for (int ib = 0; ib < kQK / 16; ++ib) {
      b[i].scales[ib] = static_cast<int8_t>(std::min(127, NearestInt(iscale * scales[ib])));
    }
    for (int j = 0; j < kQK / 16; ++j) {
      ReRound(x + 16 * j, 16, H2F(b[i].d) * b[i].scales[j], 0.f, -32, 31, L + 16 * j);
    }
    uint8_t* ql = b[i].ql;
    uint8_t* qh = b[i].qh;
    for (int j = 0; j < kQK; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
        ql[l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
        ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
        qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

void QuantQ8_K(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float max = 0, amax = 0;
    for (int j = 0; j < kQK; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    if (!amax) {
      std::memset(&b[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    // -127/max keeps every code in [-127, 127], so the AVX2 dot products can
    // take absolute values without overflowing int8.
    const float iscale = -127.f / max;
    for (int j = 0; j < kQK; ++j) {
      b[i].qs[j] = static_cast<int8_t>(std::clamp(NearestInt(iscale * x[j]), -127, 127));
    }
    for (int j = 0; j < kQK / 16; ++j) {
      int sum = 0;
      for (int ii = 0; ii < 16; ++ii) sum += b[i].qs[j * 16 + ii];
      b[i].bsums[j] = static_cast<int16_t>(sum);
    }
    b[i].d = 1 / iscale;
  }
}

}  // namespace rocmforge::quant::internal
