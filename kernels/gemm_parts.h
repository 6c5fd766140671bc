// Parts table of the batched GEMM kernels (kernels/matmul_mma.hip,
// kernels/matmul_mma_narrow.hip): several weight matrices of one type and width
// that read the same activations (Q, K, V; gate, up) multiplied in ONE launch.
// The grid's y dimension runs over the 128-row tiles of all parts in order;
// a block finds its part from blockIdx.y and then works exactly as in a
// single-matrix launch (its own w, y, rows, and row tile within the part), so
// a part's results equal a separate launch of the same kernel with the same
// K split bit for bit. One launch instead of three (or two) saves the launch
// and pipeline fill of the small ones and lets one K-split plan fill the chip
// with the blocks of all parts (K / V: 8 row tiles each).
// For the .hip files only (needs the GPU runtime header).
#pragma once

#include <cstdint>

#include "kernels/gpu_api.h"
#include "kernels/gpu_runtime.h"

namespace rocmforge::gpu {

struct GemmParts {
  static constexpr int kMax = 3;
  const uint8_t* w[kMax] = {nullptr, nullptr, nullptr};
  float* y[kMax] = {nullptr, nullptr, nullptr};
  int64_t rows[kMax] = {0, 0, 0};
  int tile_begin[kMax] = {0, 0, 0};  // first row tile (blockIdx.y) of each part
  int count = 0;
  int tiles = 0;  // row tiles of all parts
};

// One part's view for the block in row tile `ty`. Selects rather than a
// dynamically indexed parameter array (which would go through local memory).
struct GemmPart {
  const uint8_t* w;
  float* y;
  int64_t rows;
  int64_t row0;  // first row of the block's tile within the part
};
__host__ __device__ inline GemmPart PartOfTile(const GemmParts& p, int ty, int bm) {
  const bool p1 = p.count > 1 && ty >= p.tile_begin[1];
  const bool p2 = p.count > 2 && ty >= p.tile_begin[2];
  GemmPart r;
  r.w = p2 ? p.w[2] : p1 ? p.w[1] : p.w[0];
  r.y = p2 ? p.y[2] : p1 ? p.y[1] : p.y[0];
  r.rows = p2 ? p.rows[2] : p1 ? p.rows[1] : p.rows[0];
  const int begin = p2 ? p.tile_begin[2] : p1 ? p.tile_begin[1] : 0;
  r.row0 = static_cast<int64_t>(ty - begin) * bm;
  return r;
}

// y[0 .. n * rows) = 0 for every part, one launch (before a K split's
// atomics: one small kernel instead of a memset per part). kernels/matmul_mma.hip.
// Launches nothing for a table whose outputs the producer of the GEMM's input
// already zeroed (MarkOutputsZeroed, kernels/act_quant_launch.h).
void LaunchZeroParts(const GemmParts& parts, int n, Stream s);

// A table of one matrix.
inline GemmParts SinglePart(const void* w, float* y, int64_t rows, int bm) {
  GemmParts p;
  p.w[0] = static_cast<const uint8_t*>(w);
  p.y[0] = y;
  p.rows[0] = rows;
  p.count = 1;
  p.tiles = static_cast<int>((rows + bm - 1) / bm);
  return p;
}

}  // namespace rocmforge::gpu
