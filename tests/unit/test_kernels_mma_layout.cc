// Host-side checks of kernels/mma_layout.h, the lane layouts behind the AMD
// mma:: implementations (kernels/mma_amd.h), which cannot run here:
//  * every layout's lanes x items cover each tile element exactly once per
//    replica group (WMMA: both half-waves hold the same A and B);
//  * A / B items of a lane are consecutive k (the loads read one run per lane);
//  * loading fresh random A, B, C through the layout maps, running the product
//    (an emulation of the instruction written from its documented operand
//    placement, or the portable shuffle product itself) and reading C back
//    through the layout gives C + A.B exactly (values are small multiples of
//    1/4, so every sum is exact in float).
#include "kernels/mma_layout.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace rocmforge::gpu::mma_layout {
namespace {

using Tile = std::array<std::array<float, 16>, 16>;  // [row][col]
using Map = Coord (*)(int lane, int item);

// Lanes x items of one operand: regs[lane][item].
using Regs = std::vector<std::vector<float>>;

// IEEE half <-> float for zero and normal numbers (all the test uses); exact.
uint16_t ToHalf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  if ((u & 0x7fffffffu) == 0) return static_cast<uint16_t>(sign);
  const int exp = static_cast<int>((u >> 23) & 0xff) - 127 + 15;
  const uint32_t mant = (u >> 13) & 0x3ffu;
  EXPECT_TRUE(exp > 0 && exp < 31 && (u & 0x1fffu) == 0) << f << " is not an exact normal half";
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exp) << 10) | mant);
}
float FromHalf(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t u = sign;
  if (exp != 0) u |= ((exp - 15 + 127) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

Tile RandomTile(std::mt19937& rng) {
  std::uniform_int_distribution<int> d(-16, 16);
  Tile t;
  for (auto& row : t)
    for (float& v : row) v = static_cast<float>(d(rng)) / 4.0f;  // exact in half
  return t;
}

// Loads an operand the way LoadA / LoadB / ForEachAcc address it: item `i` of
// lane `l` is element map(l, i) of `t` (for B: (k, n), i.e. t[k][n]).
Regs Distribute(const Tile& t, Map map, int wave, int per_lane) {
  Regs r(wave, std::vector<float>(per_lane));
  for (int l = 0; l < wave; ++l)
    for (int i = 0; i < per_lane; ++i) {
      const Coord c = map(l, i);
      r[l][i] = t[c.row][c.col];
    }
  return r;
}
Tile Gather(const Regs& r, Map map) {
  Tile t{};
  for (size_t l = 0; l < r.size(); ++l)
    for (size_t i = 0; i < r[l].size(); ++i) {
      const Coord c = map(static_cast<int>(l), static_cast<int>(i));
      t[c.row][c.col] = r[l][i];
    }
  return t;
}

Tile Reference(const Tile& a, const Tile& b, const Tile& c0) {
  Tile c = c0;
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 16; ++n) {
      double s = c0[m][n];
      for (int k = 0; k < 16; ++k) s += static_cast<double>(a[m][k]) * b[k][n];
      c[m][n] = static_cast<float>(s);
    }
  return c;
}

// Each element of the tile is held exactly once within each replica group of
// lanes [g * wave / replicas, (g + 1) * wave / replicas).
void ExpectCoverage(Map map, int wave, int per_lane, int replicas, const char* what) {
  const int group = wave / replicas;
  for (int g = 0; g < replicas; ++g) {
    int count[16][16] = {};
    for (int l = g * group; l < (g + 1) * group; ++l)
      for (int i = 0; i < per_lane; ++i) {
        const Coord c = map(l, i);
        ASSERT_TRUE(c.row >= 0 && c.row < 16 && c.col >= 0 && c.col < 16)
            << what << " lane " << l << " item " << i;
        ++count[c.row][c.col];
      }
    for (int r = 0; r < 16; ++r)
      for (int c = 0; c < 16; ++c)
        EXPECT_EQ(count[r][c], 1) << what << " element (" << r << "," << c << ") in group " << g;
  }
}

template <class L>
void ExpectLayoutShape() {
  static_assert(L::kAPerLane * L::kWave == 256 * L::kReplicas);
  static_assert(L::kBPerLane * L::kWave == 256 * L::kReplicas);
  static_assert(L::kCPerLane * L::kWave == 256);
  ExpectCoverage(&L::A, L::kWave, L::kAPerLane, L::kReplicas, "A");
  ExpectCoverage(&L::B, L::kWave, L::kBPerLane, L::kReplicas, "B");
  ExpectCoverage(&L::C, L::kWave, L::kCPerLane, 1, "C");
  for (int l = 0; l < L::kWave; ++l) {
    const Coord a0 = L::A(l, 0), b0 = L::B(l, 0);
    for (int i = 0; i < L::kAPerLane; ++i) {
      EXPECT_EQ(L::A(l, i).row, a0.row) << "lane " << l;
      EXPECT_EQ(L::A(l, i).col, a0.col + i) << "A items must be consecutive k, lane " << l;
    }
    for (int i = 0; i < L::kBPerLane; ++i) {
      EXPECT_EQ(L::B(l, i).col, b0.col) << "lane " << l;
      EXPECT_EQ(L::B(l, i).row, b0.row + i) << "B items must be consecutive k, lane " << l;
    }
    // Loads read a run of kAPerLane halves at k = a0.col: aligned as the
    // vector load assumes (offsets in halves; ld is a multiple of 8).
    EXPECT_EQ(a0.col % L::kAPerLane, 0) << "lane " << l;
    EXPECT_EQ(b0.row % L::kBPerLane, 0) << "lane " << l;
  }
}

TEST(MmaLayout, MfmaCoversTileOnce) { ExpectLayoutShape<Mfma16x16x16>(); }
TEST(MmaLayout, WmmaCoversTileOncePerHalfWave) { ExpectLayoutShape<Wmma16x16x16W32>(); }
TEST(MmaLayout, Portable64CoversTileOnce) { ExpectLayoutShape<Portable<64>>(); }
TEST(MmaLayout, Portable32CoversTileOnce) { ExpectLayoutShape<Portable<32>>(); }

TEST(MmaLayout, WmmaHalfWavesHoldTheSameOperands) {
  using L = Wmma16x16x16W32;
  for (int l = 0; l < 16; ++l)
    for (int i = 0; i < 16; ++i) {
      EXPECT_EQ(L::A(l, i).row, L::A(l + 16, i).row);
      EXPECT_EQ(L::A(l, i).col, L::A(l + 16, i).col);
      EXPECT_EQ(L::B(l, i).row, L::B(l + 16, i).row);
      EXPECT_EQ(L::B(l, i).col, L::B(l + 16, i).col);
    }
}

// ---- instruction emulations, from the documented operand placement ----------
// v_mfma_f32_16x16x16f16 (CDNA2/3 ISA; AMD matrix instruction calculator):
// A[i][k] in lane i + 16*(k/4), half k%4 of its 2 registers; B[k][j] in lane
// j + 16*(k/4), half k%4; D[i][j] in lane j + 16*(i/4), register i%4.
void EmulateMfma(const Regs& a, const Regs& b, Regs& c) {
  Regs d = c;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      float acc = c[j + 16 * (i / 4)][i % 4];
      for (int k = 0; k < 16; ++k) acc += a[i + 16 * (k / 4)][k % 4] * b[j + 16 * (k / 4)][k % 4];
      d[j + 16 * (i / 4)][i % 4] = acc;
    }
  c = d;
}

// v_wmma_f32_16x16x16_f16 in wave 32 (RDNA3 ISA, WMMA; GPUOpen's RDNA3 WMMA
// guide): A[i][k] in lane i, half k of its 8 registers, and the same again in
// lane i + 16; B[k][j] likewise in lanes j and j + 16; D[i][j] (f32) in lane
// j + 16*(i%2), register i/2.
void EmulateWmma(const Regs& a, const Regs& b, Regs& c) {
  for (int l = 0; l < 16; ++l)
    for (int k = 0; k < 16; ++k) {
      ASSERT_EQ(a[l][k], a[l + 16][k]) << "A half-waves differ";
      ASSERT_EQ(b[l][k], b[l + 16][k]) << "B half-waves differ";
    }
  Regs d = c;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      float acc = c[j + 16 * (i % 2)][i / 2];
      for (int k = 0; k < 16; ++k) acc += a[i][k] * b[j][k];
      d[j + 16 * (i % 2)][i / 2] = acc;
    }
  c = d;
}

// The portable product as the GPU runs it: lane registers hold halves packed
// two per 32-bit word (lower item in the low half), a fetch reads a word of
// another lane (a shuffle) and unpacks it. Lanes run one after another; the
// operands are read-only, so this equals the wave running in lockstep.
template <int W>
void RunPortable(const Regs& a, const Regs& b, Regs& c) {
  auto pack = [](const Regs& r) {
    std::vector<std::vector<uint32_t>> w(r.size());
    for (size_t l = 0; l < r.size(); ++l)
      for (size_t i = 0; i < r[l].size(); i += 2)
        w[l].push_back(ToHalf(r[l][i]) | static_cast<uint32_t>(ToHalf(r[l][i + 1])) << 16);
    return w;
  };
  const auto aw = pack(a), bw = pack(b);
  auto fetch = [](const std::vector<std::vector<uint32_t>>& w) {
    return [&w](int src, int pair, float* out) {
      ASSERT_TRUE(src >= 0 && src < W);
      const uint32_t word = w[src][pair];
      out[0] = FromHalf(static_cast<uint16_t>(word & 0xffffu));
      out[1] = FromHalf(static_cast<uint16_t>(word >> 16));
    };
  };
  for (int l = 0; l < W; ++l) PortableMmaLane<W>(l, c[l].data(), fetch(aw), fetch(bw));
}

// Every element equal (exact: the emulations add the same floats in the same
// order); reports each mismatch and returns whether there was none.
bool TilesEqual(const Tile& got, const Tile& want) {
  bool ok = true;
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 16; ++n) {
      if (got[m][n] != want[m][n]) ok = false;
      EXPECT_EQ(got[m][n], want[m][n]) << "(" << m << "," << n << ")";
    }
  return ok;
}

// Loads fresh random A, B, C through L's maps, applies `mma` twice and checks
// C + 2 A.B read back through L's C map. Returns false on any mismatch.
template <class L, class Mma>
bool ProductMatches(Mma mma, std::mt19937& rng) {
  const Tile a = RandomTile(rng), b = RandomTile(rng), c0 = RandomTile(rng);
  const Regs ar = Distribute(a, &L::A, L::kWave, L::kAPerLane);
  const Regs br = Distribute(b, &L::B, L::kWave, L::kBPerLane);
  Regs cr = Distribute(c0, &L::C, L::kWave, L::kCPerLane);
  mma(ar, br, cr);
  mma(ar, br, cr);
  const Tile got = Gather(cr, &L::C);
  const Tile once = Reference(a, b, c0), want = Reference(a, b, once);
  return TilesEqual(got, want);
}

class MmaProduct : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = std::random_device{}();
    rng_.seed(seed_);
    RecordProperty("seed", static_cast<int>(seed_ & 0x7fffffff));
  }
  uint32_t seed_ = 0;
  std::mt19937 rng_;
};

TEST_F(MmaProduct, MfmaLayoutGivesAB) {
  for (int rep = 0; rep < 8; ++rep)
    ASSERT_TRUE(ProductMatches<Mfma16x16x16>(EmulateMfma, rng_)) << "seed " << seed_;
}
TEST_F(MmaProduct, WmmaLayoutGivesAB) {
  for (int rep = 0; rep < 8; ++rep)
    ASSERT_TRUE(ProductMatches<Wmma16x16x16W32>(EmulateWmma, rng_)) << "seed " << seed_;
}
TEST_F(MmaProduct, Portable64GivesAB) {
  for (int rep = 0; rep < 8; ++rep)
    ASSERT_TRUE(ProductMatches<Portable<64>>(RunPortable<64>, rng_)) << "seed " << seed_;
}
TEST_F(MmaProduct, Portable32GivesAB) {
  for (int rep = 0; rep < 8; ++rep)
    ASSERT_TRUE(ProductMatches<Portable<32>>(RunPortable<32>, rng_)) << "seed " << seed_;
}

// The check has teeth: reading the MFMA result with the C map transposed, or
// running WMMA data through the MFMA instruction, must not match.
struct MfmaCTransposed : Mfma16x16x16 {
  static constexpr Coord C(int lane, int item) { return {lane % 16, 4 * (lane / 16) + item}; }
};
TEST_F(MmaProduct, WrongLayoutIsCaught) {
  bool matched = true;
  {
    // The mismatches are expected: intercept them instead of failing this test.
    ::testing::TestPartResultArray results;
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    matched = ProductMatches<MfmaCTransposed>(EmulateMfma, rng_);
  }
  EXPECT_FALSE(matched) << "a transposed C map went unnoticed, seed " << seed_;
}

// ---- NVIDIA mma.sync m16n8k16 and the register-direct FillA order ---------
// mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 (PTX ISA, "Matrix Fragments
// for mma.m16n8k16 with floating point type"), groupID = lane >> 2, tig = lane % 4:
// a_i: row groupID (+8 for i = 2, 3, 6, 7), col tig * 2 + (i & 1) (+8 for i >= 4);
// b_i: row (k) tig * 2 + (i & 1) (+8 for i >= 2), col (n) groupID;
// c_i: row groupID (+8 for i >= 2), col tig * 2 + (i & 1).
// The 16x16x16 tile of gpu_runtime.h runs it twice, n 0-7 (B items 0-3, C items
// 0-3) and n 8-15 (items 4-7); A items are a_0..a_7.
void EmulateMmaSync(const Regs& a, const Regs& b, Regs& c) {
  Tile am{}, bm{}, cm{};
  for (int l = 0; l < 32; ++l) {
    const int g = l >> 2, tig = l % 4;
    for (int i = 0; i < 8; ++i) {
      const int row = g + ((i / 2) % 2) * 8, col = tig * 2 + (i & 1) + (i >= 4 ? 8 : 0);
      am[row][col] = a[l][i];
    }
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < 4; ++i) {
        bm[tig * 2 + (i & 1) + (i >= 2 ? 8 : 0)][8 * h + g] = b[l][4 * h + i];
        cm[g + (i >= 2 ? 8 : 0)][8 * h + tig * 2 + (i & 1)] = c[l][4 * h + i];
      }
  }
  const Tile d = Reference(am, bm, cm);
  for (int l = 0; l < 32; ++l) {
    const int g = l >> 2, tig = l % 4;
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < 4; ++i) c[l][4 * h + i] = d[g + (i >= 2 ? 8 : 0)][8 * h + tig * 2 + (i & 1)];
  }
}

TEST(MmaLayout, MmaSyncCoversTileOnce) {
  using L = MmaSync16x16x16;
  ExpectCoverage(&L::A, L::kWave, L::kAPerLane, 1, "A");
  ExpectCoverage(&L::B, L::kWave, L::kBPerLane, 1, "B");
  ExpectCoverage(&L::C, L::kWave, L::kCPerLane, 1, "C");
}
TEST_F(MmaProduct, MmaSyncLayoutGivesAB) {
  for (int rep = 0; rep < 8; ++rep)
    ASSERT_TRUE(ProductMatches<MmaSync16x16x16>(EmulateMmaSync, rng_)) << "seed " << seed_;
}

// A loaded the way mma::FillA fills it: pair p of a lane is APair<L>(lane, p)
// and the next k, in items 2p and 2p+1. With B and C through L's maps, the
// emulated instruction must still give C + A.B.
template <class L, class Mma>
bool FillAProductMatches(Mma mma, std::mt19937& rng) {
  const Tile a = RandomTile(rng), b = RandomTile(rng), c0 = RandomTile(rng);
  Regs ar(L::kWave, std::vector<float>(L::kAPerLane));
  for (int l = 0; l < L::kWave; ++l)
    for (int p = 0; p < L::kAPerLane / 2; ++p) {
      const Coord mk = APair<L>(l, p);
      EXPECT_EQ(mk.col % 2, 0) << "pairs start at even k, lane " << l;
      if (mk.col % 2 != 0 || mk.col + 1 >= 16) return false;
      ar[l][2 * p] = a[mk.row][mk.col];
      ar[l][2 * p + 1] = a[mk.row][mk.col + 1];
    }
  const Regs br = Distribute(b, &L::B, L::kWave, L::kBPerLane);
  Regs cr = Distribute(c0, &L::C, L::kWave, L::kCPerLane);
  mma(ar, br, cr);
  const Tile got = Gather(cr, &L::C), want = Reference(a, b, c0);
  return TilesEqual(got, want);
}
TEST_F(MmaProduct, FillAOrderGivesABOnEveryLayout) {
  for (int rep = 0; rep < 4; ++rep) {
    ASSERT_TRUE(FillAProductMatches<MmaSync16x16x16>(EmulateMmaSync, rng_)) << "seed " << seed_;
    ASSERT_TRUE(FillAProductMatches<Mfma16x16x16>(EmulateMfma, rng_)) << "seed " << seed_;
    ASSERT_TRUE(FillAProductMatches<Wmma16x16x16W32>(EmulateWmma, rng_)) << "seed " << seed_;
    ASSERT_TRUE(FillAProductMatches<Portable<64>>(RunPortable<64>, rng_)) << "seed " << seed_;
    ASSERT_TRUE(FillAProductMatches<Portable<32>>(RunPortable<32>, rng_)) << "seed " << seed_;
  }
}

// What the register-direct GEMM (kernels/matmul_mma_narrow.hip, StateOf)
// assumes: on NVIDIA a lane's pairs 2 and 3 are pairs 0 and 1 at k + 8 (same
// rows, same k % 8); elsewhere a lane holds one row, and pair p sits at
// k % kAPerLane == 2p.
template <class L>
void ExpectOneRowPerLane() {
  for (int l = 0; l < L::kWave; ++l)
    for (int p = 0; p < L::kAPerLane / 2; ++p) {
      const Coord mk = APair<L>(l, p);
      EXPECT_EQ(mk.row, APair<L>(l, 0).row) << "lane " << l;
      EXPECT_EQ((mk.col % L::kAPerLane) / 2, p) << "lane " << l;
    }
}
TEST(MmaLayout, PairsAsTheNarrowGemmAssumes) {
  using L = MmaSync16x16x16;
  for (int l = 0; l < 32; ++l)
    for (int p = 0; p < 2; ++p) {
      const Coord a = APair<L>(l, p), b = APair<L>(l, p + 2);
      EXPECT_EQ(b.row, a.row) << "lane " << l;
      EXPECT_EQ(b.col, a.col + 8) << "lane " << l;
      EXPECT_EQ(a.row / 8, p) << "lane " << l;
    }
  ExpectOneRowPerLane<Mfma16x16x16>();
  ExpectOneRowPerLane<Wmma16x16x16W32>();
  ExpectOneRowPerLane<Portable<64>>();
  ExpectOneRowPerLane<Portable<32>>();
}

// Row reductions over C (the matrix-core prefill attention's softmax): the
// lanes {l ^ x : x < kCRowLanes} and the items CSameRow with item i hold the
// 16 columns of C(l, i).row, each once, and CSameRow holds for every lane.
template <class L>
bool RowGroupsHold() {
  static_assert((L::kCRowLanes & (L::kCRowLanes - 1)) == 0, "xor masks need a power of two");
  for (int l = 0; l < L::kWave; ++l)
    for (int i = 0; i < L::kCPerLane; ++i) {
      const int row = L::C(l, i).row;
      std::array<int, 16> seen{};
      for (int x = 0; x < L::kCRowLanes; ++x)
        for (int j = 0; j < L::kCPerLane; ++j) {
          if ((L::C(l, j).row == row) != CSameRow<L>(i, j)) return false;
          if (!CSameRow<L>(i, j)) continue;
          const Coord c = L::C(l ^ x, j);
          if (c.row != row) return false;
          ++seen[c.col];
        }
      for (int col = 0; col < 16; ++col)
        if (seen[col] != 1) return false;
    }
  return true;
}
struct MfmaWithNarrowRowGroups : Mfma16x16x16 {  // wrong: 4 lanes hold only part of a row
  static constexpr int kCRowLanes = 4;
};
TEST(MmaLayout, RowGroupsForRowReductions) {
  EXPECT_TRUE(RowGroupsHold<Mfma16x16x16>());
  EXPECT_TRUE(RowGroupsHold<Wmma16x16x16W32>());
  EXPECT_TRUE(RowGroupsHold<Portable<64>>());
  EXPECT_TRUE(RowGroupsHold<Portable<32>>());
  EXPECT_TRUE(RowGroupsHold<MmaSync16x16x16>());
  EXPECT_FALSE(RowGroupsHold<MfmaWithNarrowRowGroups>());  // the check can fail
}

TEST(MmaLayout, HalfConversionIsExactOnTestValues) {
  for (int v = -16; v <= 16; ++v) {
    const float f = static_cast<float>(v) / 4.0f;
    EXPECT_EQ(FromHalf(ToHalf(f)), f);
  }
  EXPECT_EQ(ToHalf(1.0f), 0x3c00);  // IEEE binary16 encodings
  EXPECT_EQ(ToHalf(-0.25f), 0xb400);
}

TEST(MmaLayout, ArchNamesWithMatrixCores) {
  struct Case {
    const char* arch;
    bool mma;
  };
  const Case cases[] = {
      {"gfx908", true},          {"gfx90a", true},   {"gfx90a:sramecc+:xnack-", true},
      {"gfx940", true},          {"gfx941", true},   {"gfx942:sramecc+:xnack-", true},
      {"gfx950", true},          {"gfx1100", true},  {"gfx1101", true},
      {"gfx1102", true},         {"gfx1151", true},  {"gfx1030", false},
      {"gfx906", false},         {"gfx900", false},  {"gfx90c", false},
      {"gfx1201", false},        {"gfx11", false},   {"gfx110", false},
      {"gfx11000", false},       {"gfx9420", false}, {"", false},
      {"gfx1100:xnack-", true},  {"gfx94", false},   {"nvidia", false},
  };
  for (const Case& c : cases) EXPECT_EQ(GcnArchHasMatrixCores(c.arch), c.mma) << c.arch;
  EXPECT_FALSE(GcnArchHasMatrixCores(nullptr));
}

}  // namespace
}  // namespace rocmforge::gpu::mma_layout
