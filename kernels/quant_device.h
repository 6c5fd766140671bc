// Device-side views of the GGUF block formats (engine/gguf/ggml_types.h):
// dequantization of 8 consecutive elements (tiled matmul, embedding) and the
// int8 dot product of one 32-element slice of a weight row with a quantized
// activation block (small-batch matmul). Layouts follow ggml's dequantize_row_*.
#pragma once

#include <cstdint>
#include <type_traits>

#include "engine/gguf/ggml_types.h"
#include "kernels/gpu_runtime.h"

namespace rocmforge::gpu {

// Activation block for the int8 path: 32 values as int8 with scale d and
// s = d * sum(q) (the same idea as ggml's Q8_1).
struct ActQ8 {
  float d;
  float s;
  int8_t qs[32];
};
static_assert(sizeof(ActQ8) == 40);

__device__ __forceinline__ float H2F(ggml_half h) { return HalfBitsToFloat(h); }

__device__ __forceinline__ int LoadU32Unaligned(const uint8_t* p) {
  // Blocks are 2-byte aligned at best; assemble from halves.
  const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
  return static_cast<int>(static_cast<uint32_t>(h[0]) | (static_cast<uint32_t>(h[1]) << 16));
}
// out[i] = bytes p[4i .. 4i+3], i < W, for a 2-byte aligned p (GGUF blocks of
// 18, 34 and 210 bytes), from W aligned word loads and one half-word load
// instead of 2W half-word loads. Reads nothing outside p[-2 .. 4W).
// kShared: p points into shared memory, and the aligned address is p moved
// back by pointer arithmetic so the compiler keeps shared-memory loads. The
// default forms it through an integer (generic loads): for the global weights
// that is the faster code (the pointer form, global loads, cost the Q8_0
// matvec 5% on an H200, 2026-11-28).
template <int W, bool kShared = false>
__device__ __forceinline__ void LoadWords(const uint8_t* p, uint32_t (&out)[W]) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const unsigned mis = static_cast<unsigned>(a & 2);  // 0 or 2 bytes
  const uint32_t* w = kShared ? reinterpret_cast<const uint32_t*>(p - mis)
                              : reinterpret_cast<const uint32_t*>(a & ~uintptr_t{3});
  const unsigned shift = mis * 8;  // 0 or 16 bits
  uint32_t v[W + 1];
#pragma unroll
  for (int i = 0; i < W; ++i) v[i] = w[i];
  // Bytes p[4W-2 .. 4W-1]: the tail of the last word when p is misaligned.
  v[W] = *reinterpret_cast<const uint16_t*>(p + 4 * W - 2);
#pragma unroll
  for (int i = 0; i < W; ++i) {
    out[i] = static_cast<uint32_t>(((static_cast<uint64_t>(v[i + 1]) << 32) | v[i]) >> shift);
  }
}
__device__ __forceinline__ int LoadU32(const uint8_t* p) {
  return *reinterpret_cast<const int*>(p);
}

// Q4_K / Q5_K packed 6-bit scale and min of sub-block j (0..7).
__device__ __forceinline__ void ScaleMinK4(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Bytes of one block and elements per block, for the types the kernels handle.
__host__ __device__ constexpr int BlockElems(GgmlType t) {
  return (t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16) ? 1
         : (t == GgmlType::Q8_0 || t == GgmlType::Q4_0)                      ? 32
                                                                             : 256;
}
__host__ __device__ constexpr int BlockBytes(GgmlType t) {
  return t == GgmlType::F32    ? 4
         : t == GgmlType::F16  ? 2
         : t == GgmlType::BF16 ? 2
         : t == GgmlType::Q8_0 ? static_cast<int>(sizeof(BlockQ8_0))
         : t == GgmlType::Q4_0 ? static_cast<int>(sizeof(BlockQ4_0))
         : t == GgmlType::Q4_K ? static_cast<int>(sizeof(BlockQ4_K))
         : t == GgmlType::Q5_K ? static_cast<int>(sizeof(BlockQ5_K))
         : t == GgmlType::Q2_K ? static_cast<int>(sizeof(BlockQ2_K))
         : t == GgmlType::Q3_K ? static_cast<int>(sizeof(BlockQ3_K))
                               : static_cast<int>(sizeof(BlockQ6_K));
}

// 6-bit signed scale number k (0..15) of a Q3_K block, in -32..31: low 4 bits
// in bytes 0..7 (k < 8: low nibble of byte k, else high nibble of byte k - 8),
// high 2 bits at bits 2 (k / 4) of byte 8 + k % 4 (engine/gguf ScaleQ3K).
__device__ __forceinline__ int ScaleQ3KDevice(int k, const uint8_t* scales) {
  const int low = k < 8 ? (scales[k] & 0xF) : (scales[k - 8] >> 4);
  const int high = (scales[8 + k % 4] >> (2 * (k / 4))) & 3;
  return (low | (high << 4)) - 32;
}
// The same from the 12 scale bytes held as three words (no run-time register
// indexing).
__device__ __forceinline__ int ScaleQ3KWords(int k, uint32_t w0, uint32_t w1, uint32_t w2) {
  auto byte = [&](int i) -> int {
    const uint32_t w = i < 4 ? w0 : (i < 8 ? w1 : w2);
    return static_cast<int>((w >> (8 * (i & 3))) & 0xffu);
  };
  const int low = k < 8 ? (byte(k) & 0xF) : (byte(k - 8) >> 4);
  const int high = (byte(8 + k % 4) >> (2 * (k / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Integer sums of one 32-value slice of a 2-, 3- or 6-bit K-quant block
// against its activation words x[0..7], from the block's words already in
// registers (shared by the one-slice dot products and the pair / quad ones).
// Q2_K: codes at bits 2j of the half's quant words qw; sc2 = the slice's two
// scale bytes (low nibble scale, high nibble min, one byte per 16 values).
// Adds scale . (code . x) to *scaled and min . sum(x) to *mins.
__device__ __forceinline__ void Q2KSliceSums(const uint32_t (&qw)[8], uint32_t sc2, int j, const int* x,
                                             int* scaled, int* mins) {
  int acc[2] = {0, 0}, xsum[2] = {0, 0};
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    acc[i / 4] = Dot4I8(static_cast<int>((qw[i] >> (2 * j)) & 0x03030303u), x[i], acc[i / 4]);
    xsum[i / 4] = Dot4I8(0x01010101, x[i], xsum[i / 4]);
  }
  const int sc0 = static_cast<int>(sc2 & 0xFF), sc1 = static_cast<int>((sc2 >> 8) & 0xFF);
  *scaled += (sc0 & 0xF) * acc[0] + (sc1 & 0xF) * acc[1];
  *mins += (sc0 >> 4) * xsum[0] + (sc1 >> 4) * xsum[1];
}
// Q3_K slice s = 4 * half + j: code = 2 low bits (as Q2_K) | hmask bit s << 2,
// value = code - 4, summed as code . x - 4 * sum(x) per 16-value group and
// weighted by the group's 6-bit scale (from the scale words sw).
__device__ __forceinline__ int Q3KSliceSum(const uint32_t (&qw)[8], const uint32_t (&hw)[8],
                                           const uint32_t (&sw)[3], int j, int s, const int* x) {
  int acc[2] = {0, 0}, xsum[2] = {0, 0};
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int lo = static_cast<int>((qw[i] >> (2 * j)) & 0x03030303u);
    const int hi = static_cast<int>(((hw[i] >> s) & 0x01010101u) << 2);
    acc[i / 4] = Dot4I8(lo | hi, x[i], acc[i / 4]);
    xsum[i / 4] = Dot4I8(0x01010101, x[i], xsum[i / 4]);
  }
  return ScaleQ3KWords(2 * s, sw[0], sw[1], sw[2]) * (acc[0] - 4 * xsum[0]) +
         ScaleQ3KWords(2 * s + 1, sw[0], sw[1], sw[2]) * (acc[1] - 4 * xsum[1]);
}
// Q6_K quarter (0..3) of a half-block: low 4 bits from the ql run lw (the low
// nibbles for quarters 0 / 1, the high ones for 2 / 3), high 2 bits at bits
// 2 * quarter of the half's qh words hw; value = code - 32, weighted by the
// int8 scales sc[0], sc[1] of its two 16-value groups.
__device__ __forceinline__ int Q6KSliceSum(const uint32_t (&lw)[8], const uint32_t (&hw)[8], int quarter,
                                           const int8_t* sc, const int* x) {
  const int shift = (quarter >> 1) * 4;
  int acc[2] = {0, 0}, xsum[2] = {0, 0};
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int lo = static_cast<int>((lw[i] >> shift) & 0x0F0F0F0Fu);
    const int hi = static_cast<int>(((hw[i] >> (quarter * 2)) & 0x03030303u) << 4);
    acc[i / 4] = Dot4I8(lo | hi, x[i], acc[i / 4]);
    xsum[i / 4] = Dot4I8(0x01010101, x[i], xsum[i / 4]);
  }
  return sc[0] * (acc[0] - 32 * xsum[0]) + sc[1] * (acc[1] - 32 * xsum[1]);
}

// out[0..7] = elements e0..e0+7 of a row (e0 % 8 == 0).
template <GgmlType T>
__device__ __forceinline__ void Dequant8(const uint8_t* row, int64_t e0, float* out) {
  if constexpr (T == GgmlType::F32) {
    const float* r = reinterpret_cast<const float*>(row) + e0;
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = r[i];
  } else if constexpr (T == GgmlType::F16) {
    const uint16_t* r = reinterpret_cast<const uint16_t*>(row) + e0;
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = H2F(r[i]);
  } else if constexpr (T == GgmlType::BF16) {
    const uint16_t* r = reinterpret_cast<const uint16_t*>(row) + e0;
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = __uint_as_float(static_cast<uint32_t>(r[i]) << 16);
  } else if constexpr (T == GgmlType::Q8_0) {
    const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(row) + e0 / 32;
    const float d = H2F(b->d);
    const int j = static_cast<int>(e0 % 32);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = d * b->qs[j + i];
  } else if constexpr (T == GgmlType::Q4_0) {
    const BlockQ4_0* b = reinterpret_cast<const BlockQ4_0*>(row) + e0 / 32;
    const float d = H2F(b->d);
    const int j = static_cast<int>(e0 % 32);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int e = j + i;
      const int q = e < 16 ? (b->qs[e] & 0xF) : (b->qs[e - 16] >> 4);
      out[i] = d * (q - 8);
    }
  } else if constexpr (T == GgmlType::Q4_K) {
    const BlockQ4_K* b = reinterpret_cast<const BlockQ4_K*>(row) + e0 / 256;
    const int e = static_cast<int>(e0 % 256);
    const int sub = e / 32, l = e % 32;
    int sc, m;
    ScaleMinK4(sub, b->scales, &sc, &m);
    const float d = H2F(b->d) * sc, mn = H2F(b->dmin) * m;
    const uint8_t* q = b->qs + (sub / 2) * 32 + l;
    const int shift = (sub & 1) * 4;
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = d * ((q[i] >> shift) & 0xF) - mn;
  } else if constexpr (T == GgmlType::Q5_K) {
    const BlockQ5_K* b = reinterpret_cast<const BlockQ5_K*>(row) + e0 / 256;
    const int e = static_cast<int>(e0 % 256);
    const int sub = e / 32, l = e % 32;
    int sc, m;
    ScaleMinK4(sub, b->scales, &sc, &m);
    const float d = H2F(b->d) * sc, mn = H2F(b->dmin) * m;
    const uint8_t* q = b->qs + (sub / 2) * 32 + l;
    const int shift = (sub & 1) * 4;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int v = ((q[i] >> shift) & 0xF) | (((b->qh[l + i] >> sub) & 1) << 4);
      out[i] = d * v - mn;
    }
  } else if constexpr (T == GgmlType::Q2_K) {
    // Slice s = 4 * half + j of a block: 2-bit codes at bits 2j of the half's 32
    // quant bytes, a 4-bit scale and min per 16 values (CPU: DequantQ2_K).
    const BlockQ2_K* b = reinterpret_cast<const BlockQ2_K*>(row) + e0 / 256;
    const int e = static_cast<int>(e0 % 256);
    const int half = e / 128, j = (e % 128) / 32, l = e % 32;
    const int sc = b->scales[half * 8 + 2 * j + l / 16];
    const float dl = H2F(b->d) * (sc & 0xF), ml = H2F(b->dmin) * (sc >> 4);
    const uint8_t* q = b->qs + half * 32 + l;
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = dl * ((q[i] >> (2 * j)) & 3) - ml;
  } else if constexpr (T == GgmlType::Q3_K) {
    // As Q2_K's codes, plus bit s of hmask (clear: minus 4), 6-bit signed
    // scales (CPU: DequantQ3_K).
    const BlockQ3_K* b = reinterpret_cast<const BlockQ3_K*>(row) + e0 / 256;
    const int e = static_cast<int>(e0 % 256);
    const int half = e / 128, j = (e % 128) / 32, l = e % 32, s = 4 * half + j;
    const float dl = H2F(b->d) * ScaleQ3KDevice(2 * s + l / 16, b->scales);
    const uint8_t* q = b->qs + half * 32 + l;
    const uint8_t* hm = b->hmask + l;
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = dl * (((q[i] >> (2 * j)) & 3) - (((hm[i] >> s) & 1) != 0 ? 0 : 4));
  } else {  // Q6_K
    const BlockQ6_K* b = reinterpret_cast<const BlockQ6_K*>(row) + e0 / 256;
    const int e = static_cast<int>(e0 % 256);
    const int half = e / 128, quarter = (e % 128) / 32, l = e % 32;
    const float d = H2F(b->d) * b->scales[half * 8 + quarter * 2 + l / 16];
    const uint8_t* ql = b->ql + half * 64 + (quarter & 1) * 32 + l;
    const uint8_t* qh = b->qh + half * 32 + l;
    const int shift = (quarter >> 1) * 4;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int v = ((ql[i] >> shift) & 0xF) | (((qh[i] >> (quarter * 2)) & 3) << 4);
      out[i] = d * (v - 32);
    }
  }
}

// Scale and min of sub-block `sub` (0..7) of a Q4_K / Q5_K block from its 12
// packed scale bytes, held as three words (no run-time register indexing).
__device__ __forceinline__ void ScaleMinK4Words(int sub, uint32_t w0, uint32_t w1, uint32_t w2,
                                                int* sc, int* m) {
  auto byte = [&](int k) -> int {
    const uint32_t w = k < 4 ? w0 : (k < 8 ? w1 : w2);
    return static_cast<int>((w >> (8 * (k & 3))) & 0xffu);
  };
  if (sub < 4) {
    *sc = byte(sub) & 63;
    *m = byte(sub + 4) & 63;
  } else {
    *sc = (byte(sub + 4) & 0xF) | ((byte(sub - 4) >> 6) << 4);
    *m = (byte(sub + 4) >> 4) | ((byte(sub) >> 6) << 4);
  }
}

// 32 bytes (16-byte aligned) as eight words, in two 16-byte loads.
__device__ __forceinline__ void Load32BytesAsWords(const uint8_t* p, int (&w)[8]) {
  const uint4* p16 = reinterpret_cast<const uint4*>(p);
  const uint4 lo = p16[0], hi = p16[1];
  w[0] = static_cast<int>(lo.x); w[1] = static_cast<int>(lo.y);
  w[2] = static_cast<int>(lo.z); w[3] = static_cast<int>(lo.w);
  w[4] = static_cast<int>(hi.x); w[5] = static_cast<int>(hi.y);
  w[6] = static_cast<int>(hi.z); w[7] = static_cast<int>(hi.w);
}

// The 32 int8 values of an activation slice as eight words. ActQ8 is 40 bytes
// with qs at offset 8, so its 8-byte loads are always aligned.
__device__ __forceinline__ void LoadSliceWords(const ActQ8& a, int (&x)[8]) {
  const int2* x2 = reinterpret_cast<const int2*>(a.qs);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int2 v = x2[i];
    x[2 * i] = v.x;
    x[2 * i + 1] = v.y;
  }
}

// Dot product of 32-element slice `u` of a quantized weight row with one
// activation block. Returns the float contribution.
template <GgmlType T>
__device__ __forceinline__ float DotSlice(const uint8_t* row, int64_t u, const ActQ8& a) {
  const int* x = reinterpret_cast<const int*>(a.qs);
  if constexpr (T == GgmlType::Q8_0) {
    const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(row) + u;
    uint32_t qw[8];
    LoadWords<8>(reinterpret_cast<const uint8_t*>(b->qs), qw);
    int acc = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc = Dot4I8(static_cast<int>(qw[i]), x[i], acc);
    return H2F(b->d) * a.d * static_cast<float>(acc);
  } else if constexpr (T == GgmlType::Q4_0) {
    const BlockQ4_0* b = reinterpret_cast<const BlockQ4_0*>(row) + u;
    uint32_t qw[4];
    LoadWords<4>(b->qs, qw);
    int acc = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int v = static_cast<int>(qw[i]);
      acc = Dot4I8(v & 0x0F0F0F0F, x[i], acc);
      acc = Dot4I8((v >> 4) & 0x0F0F0F0F, x[i + 4], acc);
    }
    return H2F(b->d) * (a.d * static_cast<float>(acc) - 8.0f * a.s);
  } else if constexpr (T == GgmlType::Q4_K || T == GgmlType::Q5_K) {
    // Q4_K / Q5_K blocks (144 / 176 bytes) keep 16-byte alignment in a row, so
    // the 32 quant bytes, the packed scales and the high bits load as wide words.
    using Block = std::conditional_t<T == GgmlType::Q4_K, BlockQ4_K, BlockQ5_K>;
    const Block* b = reinterpret_cast<const Block*>(row) + u / 8;
    const int sub = static_cast<int>(u % 8);
    const uint32_t dd = *reinterpret_cast<const uint32_t*>(&b->d);  // d, dmin
    const uint32_t* sc32 = reinterpret_cast<const uint32_t*>(b->scales);
    int sc, m;
    ScaleMinK4Words(sub, sc32[0], sc32[1], sc32[2], &sc, &m);
    int qw[8], xv[8];
    Load32BytesAsWords(b->qs + (sub / 2) * 32, qw);
    LoadSliceWords(a, xv);
    const int shift = (sub & 1) * 4;
    int acc = 0;
    if constexpr (T == GgmlType::Q4_K) {
#pragma unroll
      for (int i = 0; i < 8; ++i) acc = Dot4I8((qw[i] >> shift) & 0x0F0F0F0F, xv[i], acc);
    } else {
      int hw[8];
      Load32BytesAsWords(b->qh, hw);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const int lo = (qw[i] >> shift) & 0x0F0F0F0F;
        const int hi = ((hw[i] >> sub) & 0x01010101) << 4;
        acc = Dot4I8(lo | hi, xv[i], acc);
      }
    }
    const float d = HalfBitsToFloat(static_cast<uint16_t>(dd & 0xffff));
    const float dmin = HalfBitsToFloat(static_cast<uint16_t>(dd >> 16));
    return d * sc * a.d * static_cast<float>(acc) - dmin * m * a.s;
  } else if constexpr (T == GgmlType::Q2_K) {
    // 84-byte blocks are 4-byte aligned: word loads. Slice s = 4 * half + j:
    // codes at bits 2j of the half's 32 quant bytes, two 16-value groups each
    // with a 4-bit scale (low nibble) and min (high nibble). The activation sum
    // of each group (for the mins) comes from dot products with ones.
    const BlockQ2_K* b = reinterpret_cast<const BlockQ2_K*>(row) + u / 8;
    const int s = static_cast<int>(u % 8);
    const int half = s / 4, j = s % 4;
    const uint32_t* q32 = reinterpret_cast<const uint32_t*>(b->qs + half * 32);
    uint32_t qw[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) qw[i] = q32[i];
    const uint32_t dd = *reinterpret_cast<const uint32_t*>(&b->d);  // d, dmin
    const uint32_t sc2 = *reinterpret_cast<const uint16_t*>(b->scales + half * 8 + 2 * j);
    int scaled = 0, mins = 0;
    Q2KSliceSums(qw, sc2, j, x, &scaled, &mins);
    const float d = HalfBitsToFloat(static_cast<uint16_t>(dd & 0xffff));
    const float dmin = HalfBitsToFloat(static_cast<uint16_t>(dd >> 16));
    return a.d * (d * static_cast<float>(scaled) - dmin * static_cast<float>(mins));
  } else if constexpr (T == GgmlType::Q3_K) {
    // 110-byte blocks are only 2-byte aligned: aligned words realigned
    // (LoadWords). Slice s = 4 * half + j (Q3KSliceSum).
    const BlockQ3_K* b = reinterpret_cast<const BlockQ3_K*>(row) + u / 8;
    const int s = static_cast<int>(u % 8);
    const int half = s / 4, j = s % 4;
    uint32_t qw[8], hw[8], sw[3];
    LoadWords<8>(b->qs + half * 32, qw);
    LoadWords<8>(b->hmask, hw);
    LoadWords<3>(b->scales, sw);
    return H2F(b->d) * a.d * static_cast<float>(Q3KSliceSum(qw, hw, sw, j, s, x));
  } else {  // Q6_K: two 16-element groups with their own int8 scales
    const BlockQ6_K* b = reinterpret_cast<const BlockQ6_K*>(row) + u / 8;
    const int s = static_cast<int>(u % 8);
    const int half = s / 4, quarter = s % 4;
    // 210-byte blocks are only 2-byte aligned: read the 32 bytes of ql and of qh
    // as aligned words and realign (instead of 16 half-word loads each).
    uint32_t lw[8], hw[8];
    LoadWords<8>(b->ql + half * 64 + (quarter & 1) * 32, lw);
    LoadWords<8>(b->qh + half * 32, hw);
    const int total = Q6KSliceSum(lw, hw, quarter, b->scales + half * 8 + quarter * 2, x);
    return H2F(b->d) * a.d * static_cast<float>(total);
  }
}

// Q4_K / Q5_K: pair `p` of a row = slices 2p and 2p+1, which share one run of
// 32 quant bytes (low nibbles, high nibbles). One thread loads the run, the
// scales and the high bits once for both slices; a[0], a[1] are their
// activation blocks. Equals DotSlice(2p) + DotSlice(2p+1).
template <GgmlType T>
__device__ __forceinline__ float DotPairK(const uint8_t* row, int64_t p, const ActQ8* a) {
  static_assert(T == GgmlType::Q4_K || T == GgmlType::Q5_K);
  using Block = std::conditional_t<T == GgmlType::Q4_K, BlockQ4_K, BlockQ5_K>;
  const Block* b = reinterpret_cast<const Block*>(row) + p / 4;
  const int q = static_cast<int>(p % 4);
  const uint32_t dd = *reinterpret_cast<const uint32_t*>(&b->d);  // d, dmin
  const uint32_t* sc32 = reinterpret_cast<const uint32_t*>(b->scales);
  const uint32_t w0 = sc32[0], w1 = sc32[1], w2 = sc32[2];
  int qw[8], xa[8], xb[8];
  Load32BytesAsWords(b->qs + q * 32, qw);
  LoadSliceWords(a[0], xa);
  LoadSliceWords(a[1], xb);
  int acc0 = 0, acc1 = 0;
  if constexpr (T == GgmlType::Q4_K) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      acc0 = Dot4I8(qw[i] & 0x0F0F0F0F, xa[i], acc0);
      acc1 = Dot4I8((qw[i] >> 4) & 0x0F0F0F0F, xb[i], acc1);
    }
  } else {
    int hw[8];
    Load32BytesAsWords(b->qh, hw);
    const int s0 = 2 * q, s1 = 2 * q + 1;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      acc0 = Dot4I8((qw[i] & 0x0F0F0F0F) | (((hw[i] >> s0) & 0x01010101) << 4), xa[i], acc0);
      acc1 = Dot4I8(((qw[i] >> 4) & 0x0F0F0F0F) | (((hw[i] >> s1) & 0x01010101) << 4), xb[i], acc1);
    }
  }
  int sc0, m0, sc1, m1;
  ScaleMinK4Words(2 * q, w0, w1, w2, &sc0, &m0);
  ScaleMinK4Words(2 * q + 1, w0, w1, w2, &sc1, &m1);
  const float d = HalfBitsToFloat(static_cast<uint16_t>(dd & 0xffff));
  const float dmin = HalfBitsToFloat(static_cast<uint16_t>(dd >> 16));
  return (d * sc0 * a[0].d * static_cast<float>(acc0) - dmin * m0 * a[0].s) +
         (d * sc1 * a[1].d * static_cast<float>(acc1) - dmin * m1 * a[1].s);
}

// Q2_K / Q3_K: quad `p` of a row = slices 4p .. 4p+3, the four 2-bit planes
// of one half-block's 32 quant bytes (and, for Q3_K, of the block's hmask).
// One thread loads those bytes and the scales once for 128 values; a[0..3]
// are the slices' activation blocks (one Q8_K group, so one scale d). Equals
// the sum of the four DotSlice calls up to float rounding.
template <GgmlType T>
__device__ __forceinline__ float DotQuadK(const uint8_t* row, int64_t p, const ActQ8* a) {
  static_assert(T == GgmlType::Q2_K || T == GgmlType::Q3_K);
  const int half = static_cast<int>(p % 2);
  int scaled = 0, mins = 0;  // integer sums over the 8 16-value groups
  if constexpr (T == GgmlType::Q2_K) {
    const BlockQ2_K* b = reinterpret_cast<const BlockQ2_K*>(row) + p / 2;
    const uint32_t* q32 = reinterpret_cast<const uint32_t*>(b->qs + half * 32);
    const uint32_t* s32 = reinterpret_cast<const uint32_t*>(b->scales + half * 8);
    uint32_t qw[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) qw[i] = q32[i];
    const uint32_t sw[2] = {s32[0], s32[1]};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      int x[8];
      LoadSliceWords(a[j], x);
      Q2KSliceSums(qw, sw[j / 2] >> (16 * (j % 2)), j, x, &scaled, &mins);
    }
    const uint32_t dd = *reinterpret_cast<const uint32_t*>(&b->d);  // d, dmin
    const float d = HalfBitsToFloat(static_cast<uint16_t>(dd & 0xffff));
    const float dmin = HalfBitsToFloat(static_cast<uint16_t>(dd >> 16));
    return a[0].d * (d * static_cast<float>(scaled) - dmin * static_cast<float>(mins));
  } else {
    const BlockQ3_K* b = reinterpret_cast<const BlockQ3_K*>(row) + p / 2;
    uint32_t qw[8], hw[8], sw[3];
    LoadWords<8>(b->qs + half * 32, qw);
    LoadWords<8>(b->hmask, hw);
    LoadWords<3>(b->scales, sw);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      int x[8];
      LoadSliceWords(a[j], x);
      scaled += Q3KSliceSum(qw, hw, sw, j, 4 * half + j, x);
    }
    (void)mins;
    return H2F(b->d) * a[0].d * static_cast<float>(scaled);
  }
}

// Q6_K: pair `p` of a row = the two slices whose low 4 bits share one run of
// 32 ql bytes (low and high nibbles: quarters q and q + 2 of a half-block,
// q = p % 2) and whose high 2 bits share the half's 32 qh bytes. One thread
// loads both runs once for 64 values; a[0] and a[2] are the slices'
// activation blocks (one Q8_K group, so one scale d). Equals DotSlice of the
// two slices up to float rounding.
// kShared: row is in shared memory (LoadWords).
template <bool kShared = false>
__device__ __forceinline__ float DotPairQ6K(const uint8_t* row, int64_t p, const ActQ8* a) {
  const BlockQ6_K* b = reinterpret_cast<const BlockQ6_K*>(row) + p / 4;
  const int half = static_cast<int>((p / 2) % 2), q = static_cast<int>(p % 2);
  uint32_t lw[8], hw[8];
  LoadWords<8, kShared>(b->ql + half * 64 + q * 32, lw);
  LoadWords<8, kShared>(b->qh + half * 32, hw);
  int total = 0;
#pragma unroll
  for (int k = 0; k < 2; ++k) {  // quarter q (low nibbles), then q + 2 (high nibbles)
    const int quarter = q + 2 * k;
    int x[8];
    LoadSliceWords(a[2 * k], x);
    total += Q6KSliceSum(lw, hw, quarter, b->scales + half * 8 + quarter * 2, x);
  }
  return H2F(b->d) * a[0].d * static_cast<float>(total);
}

// The multi-slice unit of a type's batch-1 kernel (MatVecQUnitBody): pairs
// for Q4_K / Q5_K (DotPairK) and Q6_K (DotPairQ6K), quads for Q2_K / Q3_K
// (DotQuadK); 1 = none.
template <GgmlType T>
constexpr int UnitSlices() {
  return (T == GgmlType::Q4_K || T == GgmlType::Q5_K || T == GgmlType::Q6_K) ? 2
         : (T == GgmlType::Q2_K || T == GgmlType::Q3_K)                     ? 4
                                                                            : 1;
}
// Unit p of a row against that row's activation blocks x (slice s at x[s]).
template <GgmlType T, bool kShared = false>
__device__ __forceinline__ float DotUnit(const uint8_t* row, int64_t p, const ActQ8* x) {
  if constexpr (T == GgmlType::Q6_K) {
    return DotPairQ6K<kShared>(row, p, x + 8 * (p / 4) + 4 * ((p / 2) % 2) + p % 2);
  } else if constexpr (UnitSlices<T>() == 2) {
    return DotPairK<T>(row, p, x + 2 * p);
  } else {
    return DotQuadK<T>(row, p, x + 4 * p);
  }
}

}  // namespace rocmforge::gpu
