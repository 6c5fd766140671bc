// Which elements of a 16x16x16 matrix-core tile each lane of a wave holds, for
// every AMD implementation of the mma:: interface (kernels/mma_amd.h), and the
// lane-level product of the portable fallback. Pure index math in plain C++:
// device code uses it, and tests/unit/test_kernels_mma_layout.cc checks it on
// the CPU against an emulation of each instruction's documented semantics.
//
// Notation: A is 16 (m) x 16 (k), B is 16 (k) x 16 (n), C = A.B is 16 (m) x 16 (n).
// A lane holds kAPerLane values of A, kBPerLane of B and kCPerLane of C in its
// registers ("items"). A(lane, item) is the (m, k) of that item, B(lane, item)
// its (k, n), C(lane, item) its (m, n). Within a lane, A and B items are
// consecutive k (so LoadA/LoadB read one contiguous run per lane).
#pragma once

#include <cstdint>

#if defined(__HIP__) || defined(__CUDACC__)
#define RF_MMA_HD __host__ __device__
#else
#define RF_MMA_HD
#endif

namespace rocmforge::gpu::mma_layout {

struct Coord {
  int row;
  int col;
};

// CDNA v_mfma_f32_16x16x16f16 (wave 64: gfx908, gfx90a, gfx94x, gfx950).
// Lane l = 16 g + i: A row i, k 4g..4g+3; B column i, k 4g..4g+3;
// C column i, rows 4g..4g+3 (the rows come from A, the columns from B).
struct Mfma16x16x16 {
  static constexpr int kWave = 64;
  static constexpr int kAPerLane = 4, kBPerLane = 4, kCPerLane = 4;
  static constexpr int kReplicas = 1;  // copies of each A / B element in the wave
  static constexpr int kCRowLanes = 16;  // see CSameRow below
  RF_MMA_HD static constexpr Coord A(int lane, int item) { return {lane % 16, 4 * (lane / 16) + item}; }
  RF_MMA_HD static constexpr Coord B(int lane, int item) { return {4 * (lane / 16) + item, lane % 16}; }
  RF_MMA_HD static constexpr Coord C(int lane, int item) { return {4 * (lane / 16) + item, lane % 16}; }
};

// RDNA3 v_wmma_f32_16x16x16_f16 in wave 32 (gfx11). Lane l = 16 h + i:
// A row i, all 16 k; B column i, all 16 k; the instruction requires both
// half-waves (h = 0 and 1) to hold the same A and B. C column i, row 2r + h for
// item r (even rows in lanes 0-15, odd rows in lanes 16-31).
struct Wmma16x16x16W32 {
  static constexpr int kWave = 32;
  static constexpr int kAPerLane = 16, kBPerLane = 16, kCPerLane = 8;
  static constexpr int kReplicas = 2;
  static constexpr int kCRowLanes = 16;
  RF_MMA_HD static constexpr Coord A(int lane, int item) { return {lane % 16, item}; }
  RF_MMA_HD static constexpr Coord B(int lane, int item) { return {item, lane % 16}; }
  RF_MMA_HD static constexpr Coord C(int lane, int item) { return {2 * item + lane / 16, lane % 16}; }
};

// Fallback for targets without matrix cores (wave 64 or 32): the MFMA layout
// generalised to G = W / 16 groups of 16 lanes, each lane holding P = 16 / G
// consecutive k of one A row / B column and P consecutive rows of one C column.
// Every element is held exactly once; PortableMmaLane gathers the operands a
// lane needs with shuffles. Portable<64> is exactly the MFMA layout.
template <int W>
struct Portable {
  static_assert(W == 32 || W == 64, "waves are 32 or 64 lanes");
  static constexpr int kWave = W;
  static constexpr int kPer = 16 * 16 / W;  // P: 4 (wave 64) or 8 (wave 32)
  static constexpr int kAPerLane = kPer, kBPerLane = kPer, kCPerLane = kPer;
  static constexpr int kReplicas = 1;
  static constexpr int kCRowLanes = 16;
  RF_MMA_HD static constexpr Coord A(int lane, int item) { return {lane % 16, kPer * (lane / 16) + item}; }
  RF_MMA_HD static constexpr Coord B(int lane, int item) { return {kPer * (lane / 16) + item, lane % 16}; }
  RF_MMA_HD static constexpr Coord C(int lane, int item) { return {kPer * (lane / 16) + item, lane % 16}; }
};

// One lane's part of C += A.B in the Portable<W> layout; `c` is the lane's
// kCPerLane accumulators. fetch_a(src_lane, pair, float out[2]) must give
// items 2*pair and 2*pair+1 of A as held by lane src_lane (on the GPU: a
// shuffle of the 32-bit register that packs those two halves); fetch_b the
// same for B. On the GPU every lane of the wave calls this together (the
// shuffles are wave-wide); the loop bounds are the same for all lanes.
//
// Row m of A for k group g sits in lane m + 16 g; column n of B for k group g
// in lane n + 16 g. Each lane sums over all k for its own (m, n) items.
template <int W, class FetchA, class FetchB>
RF_MMA_HD inline void PortableMmaLane(int lane, float* c, FetchA&& fetch_a, FetchB&& fetch_b) {
  constexpr int kPer = Portable<W>::kPer, kGroups = W / 16;
  const int col = lane % 16, my_group = lane / 16;
#if defined(__clang__)
#pragma unroll
#endif
  for (int g = 0; g < kGroups; ++g) {
    float b[kPer] = {};
#if defined(__clang__)
#pragma unroll
#endif
    for (int pair = 0; pair < kPer / 2; ++pair) fetch_b(col + 16 * g, pair, &b[2 * pair]);
#if defined(__clang__)
#pragma unroll
#endif
    for (int r = 0; r < kPer; ++r) {
      const int m = kPer * my_group + r;
      float acc = c[r];
#if defined(__clang__)
#pragma unroll
#endif
      for (int pair = 0; pair < kPer / 2; ++pair) {
        float a[2] = {0.0f, 0.0f};
        fetch_a(m + 16 * g, pair, a);
        acc += a[0] * b[2 * pair] + a[1] * b[2 * pair + 1];
      }
      c[r] = acc;
    }
  }
}

// NVIDIA mma.sync m16n8k16 (f16 -> f32) as the 16x16x16 tile of gpu_runtime.h's
// NVIDIA mma:: (two instructions, n 0-7 and n 8-15; wave 32). Lane l: g = l / 4,
// q = l % 4. A items 2r, 2r+1 are register a_r: (g, 2q) (g+8, 2q) (g, 2q+8)
// (g+8, 2q+8) and the next k; B items 4h + 2r + e: k = 2q + 8r + e, n = 8h + g;
// C items 4h + 2r + e: row g + 8r, column 8h + 2q + e. A and B items are pairs
// of consecutive k, not one run (ldmatrix gathers them).
struct MmaSync16x16x16 {
  static constexpr int kWave = 32;
  static constexpr int kAPerLane = 8, kBPerLane = 8, kCPerLane = 8;
  static constexpr int kReplicas = 1;
  static constexpr int kCRowLanes = 4;
  RF_MMA_HD static constexpr Coord A(int lane, int item) {
    return {lane / 4 + 8 * ((item / 2) % 2), 2 * (lane % 4) + 8 * (item / 4) + item % 2};
  }
  RF_MMA_HD static constexpr Coord B(int lane, int item) {
    return {2 * (lane % 4) + 8 * ((item % 4) / 2) + item % 2, 8 * (item / 4) + lane / 4};
  }
  RF_MMA_HD static constexpr Coord C(int lane, int item) {
    return {lane / 4 + 8 * ((item % 4) / 2), 8 * (item / 4) + 2 * (lane % 4) + item % 2};
  }
};

// Row reductions on C fragments (a softmax over the columns of each row, as in
// attention): in every layout above, the lanes that hold row m of C are the
// aligned group {lane ^ x : x < kCRowLanes} of a lane holding it, and whether two
// items of a lane lie in the same row does not depend on the lane. So a row's
// max / sum is: combine the lane's items of that row (CSameRow), then
// shuffle-xor over the masks 1, 2, .., kCRowLanes / 2.
template <class L>
RF_MMA_HD constexpr bool CSameRow(int item_a, int item_b) {
  return L::C(0, item_a).row == L::C(0, item_b).row;
}

// FillA's order: the A items of a lane as kAPerLane / 2 pairs of consecutive k
// (items 2p and 2p+1, packed in one 32-bit register as half2, lower k low).
// APair(lane, p) is the (m, k) of the pair's first item; k is even. The
// mma::FillA hook of every implementation calls f(m, k) in this order.
template <class L>
RF_MMA_HD constexpr Coord APair(int lane, int p) {
  return L::A(lane, 2 * p);
}

// Whether an AMD device (hipDeviceProp_t::gcnArchName, e.g. "gfx90a:sramecc+:xnack-")
// gets a matrix-core implementation from kernels/mma_amd.h: MFMA on gfx908,
// gfx90a, gfx940/941/942 and gfx950; WMMA on gfx11 (RDNA3, built as wave 32,
// the default). Everything else compiles the portable fallback, which is no
// faster than the float32 tiled matmul, so the host should not choose it.
inline bool GcnArchHasMatrixCores(const char* arch) {
  if (arch == nullptr) return false;
  char name[16] = {};
  for (int i = 0; i < 15 && arch[i] != '\0' && arch[i] != ':'; ++i) name[i] = arch[i];
  auto is = [&](const char* s) {
    for (int i = 0; i < 16; ++i) {
      if (name[i] != s[i]) return false;
      if (s[i] == '\0') return true;
    }
    return false;
  };
  if (is("gfx908") || is("gfx90a") || is("gfx940") || is("gfx941") || is("gfx942") ||
      is("gfx950")) {
    return true;
  }
  // gfx11 followed by two more characters: gfx1100, gfx1101, gfx1102, gfx1103, gfx1150, ...
  return name[0] == 'g' && name[1] == 'f' && name[2] == 'x' && name[3] == '1' && name[4] == '1' &&
         name[5] != '\0' && name[6] != '\0' && name[7] == '\0';
}

}  // namespace rocmforge::gpu::mma_layout
