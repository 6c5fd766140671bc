// Whole-matrix conversions for the dense prefill GEMM (kernels/matmul_dense.hip):
// a quantized (or F32 / F16 / BF16) weight matrix into a plain f16 [rows][cols]
// array, and float activations into f16.
//
// Dequantization: one block per weight row at a time (grid-stride over rows),
// each thread producing 8 consecutive values (one 16-byte store) with the
// float expressions of the Dequant8<T> views the tiled kernel uses (from wide
// loads: Dequant8Wide), rounded once to f16
// (round to nearest even): the result is the CPU's float dequantization
// rounded to f16, exactly. Stores are fully coalesced; the quantized bytes are
// read through L1 (each block is touched by the threads of one row run).
#include <algorithm>
#include <type_traits>

#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/quant_device.h"

namespace rocmforge::gpu {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ uint32_t PackF16x2(float a, float b) {
  const uint32_t lo = __half_as_ushort(__float2half_rn(a));
  const uint32_t hi = __half_as_ushort(__float2half_rn(b));
  return lo | (hi << 16);
}

// out[0..7] = elements e0..e0+7 (e0 % 8 == 0) of a row, as Dequant8<T> computes
// them (same float expressions, so the same values), but from a few wide loads
// instead of one load per byte: the byte loads made the kernel issue bound
// (1.5-1.7 TB/s written on the H100 against ~2.8 TB/s for a plain stream).
template <GgmlType T>
__device__ __forceinline__ void Dequant8Wide(const uint8_t* row, int64_t e0, float* out) {
  if constexpr (T == GgmlType::Q4_K || T == GgmlType::Q5_K) {
    // 144- / 176-byte blocks keep 16-byte alignment within a row.
    using Block = std::conditional_t<T == GgmlType::Q4_K, BlockQ4_K, BlockQ5_K>;
    const Block* b = reinterpret_cast<const Block*>(row) + e0 / 256;
    const int e = static_cast<int>(e0 % 256);
    const int sub = e / 32, l = e % 32;
    const uint4 head = *reinterpret_cast<const uint4*>(b);  // d, dmin, 12 scale bytes
    int sc, m;
    ScaleMinK4Words(sub, head.y, head.z, head.w, &sc, &m);
    const float d = H2F(static_cast<uint16_t>(head.x & 0xffff)) * sc;
    const float mn = H2F(static_cast<uint16_t>(head.x >> 16)) * m;
    const uint2 q = *reinterpret_cast<const uint2*>(b->qs + (sub / 2) * 32 + l);
    const int shift = (sub & 1) * 4;
    uint2 h = make_uint2(0, 0);
    if constexpr (T == GgmlType::Q5_K) h = *reinterpret_cast<const uint2*>(b->qh + l);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t qw = i < 4 ? q.x : q.y, hw = i < 4 ? h.x : h.y;
      int v = static_cast<int>((qw >> (8 * (i % 4) + shift)) & 0xF);
      if constexpr (T == GgmlType::Q5_K) v |= static_cast<int>(((hw >> (8 * (i % 4) + sub)) & 1) << 4);
      out[i] = d * v - mn;
    }
  } else if constexpr (T == GgmlType::Q8_0) {
    const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(row) + e0 / 32;
    const float d = H2F(b->d);
    uint32_t q[2];
    LoadWords<2>(reinterpret_cast<const uint8_t*>(b->qs) + e0 % 32, q);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = d * static_cast<int8_t>((q[i / 4] >> (8 * (i % 4))) & 0xff);
  } else if constexpr (T == GgmlType::Q4_0) {
    const BlockQ4_0* b = reinterpret_cast<const BlockQ4_0*>(row) + e0 / 32;
    const float d = H2F(b->d);
    const int j = static_cast<int>(e0 % 32);
    uint32_t q[2];
    LoadWords<2>(b->qs + j % 16, q);
    const int shift = j < 16 ? 0 : 4;
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = d * (static_cast<int>((q[i / 4] >> (8 * (i % 4) + shift)) & 0xF) - 8);
  } else if constexpr (T == GgmlType::Q6_K) {
    const BlockQ6_K* b = reinterpret_cast<const BlockQ6_K*>(row) + e0 / 256;
    const int e = static_cast<int>(e0 % 256);
    const int half = e / 128, quarter = (e % 128) / 32, l = e % 32;
    const float d = H2F(b->d) * b->scales[half * 8 + quarter * 2 + l / 16];
    uint32_t ql[2], qh[2];
    LoadWords<2>(b->ql + half * 64 + (quarter & 1) * 32 + l, ql);
    LoadWords<2>(b->qh + half * 32 + l, qh);
    const int shift = (quarter >> 1) * 4;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int lo = static_cast<int>((ql[i / 4] >> (8 * (i % 4) + shift)) & 0xF);
      const int hi = static_cast<int>((qh[i / 4] >> (8 * (i % 4) + quarter * 2)) & 3);
      out[i] = d * ((lo | (hi << 4)) - 32);
    }
  } else {
    Dequant8<T>(row, e0, out);
  }
}

// rows: rows of out. w_odd null: out row r is row r of w; else rows 2i and
// 2i + 1 of out are row i of w and of w_odd (a gate / up pair interleaved for
// the SwiGLU GEMM epilogue, LaunchGemmF16SwiGLU).
template <GgmlType T>
__global__ void __launch_bounds__(kThreads) DequantizeF16Kernel(const uint8_t* __restrict__ w,
                                                                const uint8_t* __restrict__ w_odd, int64_t rows,
                                                                int64_t cols, int64_t row_bytes,
                                                                uint16_t* __restrict__ out) {
  const int64_t chunks = cols / 8;  // cols % 8 == 0
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const uint8_t* row = w_odd == nullptr ? w + r * row_bytes : ((r & 1) != 0 ? w_odd : w) + (r >> 1) * row_bytes;
    uint4* dst = reinterpret_cast<uint4*>(out + r * cols);
    for (int64_t c = threadIdx.x; c < chunks; c += kThreads) {
      float v[8];
      Dequant8Wide<T>(row, c * 8, v);
      dst[c] = make_uint4(PackF16x2(v[0], v[1]), PackF16x2(v[2], v[3]), PackF16x2(v[4], v[5]),
                          PackF16x2(v[6], v[7]));
    }
  }
}

// vec: x and out allow 16- and 8-byte accesses (else one value at a time).
__global__ void __launch_bounds__(kThreads) ConvertF16Kernel(const float* __restrict__ x, int64_t total, bool vec,
                                                             uint16_t* __restrict__ out) {
  const int64_t quads = vec ? total / 4 : 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  for (int64_t i = first; i < quads; i += stride) {
    const float4 v = reinterpret_cast<const float4*>(x)[i];
    reinterpret_cast<uint2*>(out)[i] = make_uint2(PackF16x2(v.x, v.y), PackF16x2(v.z, v.w));
  }
  for (int64_t i = quads * 4 + first; i < total; i += stride) {
    out[i] = __half_as_ushort(__float2half_rn(x[i]));
  }
}

// Enough blocks to fill the chip several times over; each walks rows.
unsigned GridFor(int64_t work_items) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(work_items, 132 * 16)));
}

template <GgmlType T>
void Launch(const void* w, const void* w_odd, int64_t rows, int64_t cols, uint16_t* out, unsigned grid, Stream s) {
  const int64_t row_bytes = cols / BlockElems(T) * BlockBytes(T);
  DequantizeF16Kernel<T><<<grid, kThreads, 0, ToStream(s)>>>(
      static_cast<const uint8_t*>(w), static_cast<const uint8_t*>(w_odd), rows, cols, row_bytes, out);
}

// The one type switch of the launchers: the same kernel in any grid (each
// block walks rows), so the same values. rows: rows of out (w_odd: pairs).
void LaunchGrid(GgmlType type, const void* w, const void* w_odd, int64_t rows, int64_t cols, uint16_t* out,
                unsigned grid, Stream s) {
  switch (type) {
    case GgmlType::F32: return Launch<GgmlType::F32>(w, w_odd, rows, cols, out, grid, s);
    case GgmlType::F16: return Launch<GgmlType::F16>(w, w_odd, rows, cols, out, grid, s);
    case GgmlType::BF16: return Launch<GgmlType::BF16>(w, w_odd, rows, cols, out, grid, s);
    case GgmlType::Q8_0: return Launch<GgmlType::Q8_0>(w, w_odd, rows, cols, out, grid, s);
    case GgmlType::Q4_0: return Launch<GgmlType::Q4_0>(w, w_odd, rows, cols, out, grid, s);
    case GgmlType::Q4_K: return Launch<GgmlType::Q4_K>(w, w_odd, rows, cols, out, grid, s);
    case GgmlType::Q5_K: return Launch<GgmlType::Q5_K>(w, w_odd, rows, cols, out, grid, s);
    case GgmlType::Q6_K: return Launch<GgmlType::Q6_K>(w, w_odd, rows, cols, out, grid, s);
    case GgmlType::Q2_K: return Launch<GgmlType::Q2_K>(w, w_odd, rows, cols, out, grid, s);
    case GgmlType::Q3_K: return Launch<GgmlType::Q3_K>(w, w_odd, rows, cols, out, grid, s);
    default: return;
  }
}

}  // namespace

bool DequantizeF16Supported(GgmlType type) {
  switch (type) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q8_0:
    case GgmlType::Q4_0: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
    case GgmlType::Q2_K: case GgmlType::Q3_K:
      return true;
    default:
      return false;
  }
}

void LaunchDequantizeF16(GgmlType type, const void* w, int64_t rows, int64_t cols, uint16_t* out, Stream s) {
  if (rows <= 0 || cols <= 0) return;
  LaunchGrid(type, w, nullptr, rows, cols, out, GridFor(rows), s);
}

void LaunchDequantizeF16Pair(GgmlType type, const void* w_even, const void* w_odd, int64_t rows, int64_t cols,
                             uint16_t* out, int64_t blocks, Stream s) {
  if (rows <= 0 || cols <= 0) return;
  const int64_t out_rows = 2 * rows;
  const unsigned grid =
      blocks <= 0 ? GridFor(out_rows) : static_cast<unsigned>(std::min<int64_t>(blocks, out_rows));
  LaunchGrid(type, w_even, w_odd, out_rows, cols, out, grid, s);
}

void LaunchDequantizeF16Blocks(GgmlType type, const void* w, int64_t rows, int64_t cols, uint16_t* out,
                               int64_t blocks, Stream s) {
  if (rows <= 0 || cols <= 0) return;
  const unsigned grid = blocks <= 0 ? GridFor(rows) : static_cast<unsigned>(std::min<int64_t>(blocks, rows));
  LaunchGrid(type, w, nullptr, rows, cols, out, grid, s);
}

void LaunchConvertF16(const float* x, int64_t total, uint16_t* out, Stream s) {
  if (total <= 0) return;
  const bool vec = reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 8 == 0;
  ConvertF16Kernel<<<GridFor((total / 4 + kThreads - 1) / kThreads), kThreads, 0, ToStream(s)>>>(x, total, vec,
                                                                                                 out);
}

}  // namespace rocmforge::gpu
