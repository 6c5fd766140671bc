// Quantize -> dequantize error of every format on fresh random data, and
// dequantization of hand-made blocks against plain per-element formulas
// written independently of engine/gguf/quant_*.cc (element index -> bits).
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/common/fp16.h"
#include "engine/gguf/ggml_types.h"
#include "engine/gguf/quant.h"

namespace rocmforge::quant {
namespace {

// ------------------------------------------------------------ random data

enum class Dist { kNormal, kUniformSmall, kHeavyTail, kShifted };
const char* DistName(Dist d) {
  switch (d) {
    case Dist::kNormal: return "normal";
    case Dist::kUniformSmall: return "uniform(+-0.01)";
    case Dist::kHeavyTail: return "laplace+outliers";
    case Dist::kShifted: return "normal+0.5";
  }
  return "?";
}

std::vector<float> RandomData(Dist dist, int64_t n, std::mt19937* rng) {
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> uni(-0.01f, 0.01f);
  std::exponential_distribution<float> expo(1.f);
  std::uniform_int_distribution<int> coin(0, 1), rare(0, 199);
  std::vector<float> x(n);
  for (auto& v : x) {
    switch (dist) {
      case Dist::kNormal: v = normal(*rng); break;
      case Dist::kUniformSmall: v = uni(*rng); break;
      case Dist::kHeavyTail:
        v = (coin(*rng) ? 1.f : -1.f) * expo(*rng) * (rare(*rng) == 0 ? 20.f : 1.f);
        break;
      case Dist::kShifted: v = 0.5f + 0.2f * normal(*rng); break;
    }
  }
  return x;
}

int64_t BlockOf(GgmlType t) { return GetTypeInfo(t)->block_size; }

// ------------------------------------------------------------ round trip

// Relative RMSE bound (RMSE of the round trip / RMS of the data) per type,
// for the four distributions above (normal, uniform, heavy tail, shifted).
// Measured over 12 seeds (min-max): Q8_0 0.37-0.54% (heavy tail 1.0-1.2%),
// Q6_K 1.3-1.8% (2.8-3.1%), Q5_K 1.5-3.7% (4.4-5.1%), Q5_0 3.0-4.3%,
// Q5_1 1.4-3.8%, Q4_K 3.0-7.2% (8.8-9.9%), Q4_0 6.0-8.7% (10-14%),
// Q4_1 2.8-8.0%, Q3_K 10.7-15.2%, Q2_K 13-30% (26-32%); F16 ~0.02%,
// BF16 ~0.17%. Bounds are the maxima + 20% (+30% for the heavy tail, whose
// outliers make it noisier). A wrong nibble order, scale packing or bit
// position gives errors of 30-100% and more.
struct Bound {
  GgmlType type;
  double normal, uniform, heavy, shifted;
};
constexpr Bound kBounds[] = {
    {GgmlType::F32, 1e-7, 1e-7, 1e-7, 1e-7},
    {GgmlType::F16, 3e-4, 3e-4, 4e-4, 3e-4},
    {GgmlType::BF16, 2.2e-3, 2.2e-3, 3e-3, 2.2e-3},
    {GgmlType::Q8_0, 0.0065, 0.0047, 0.015, 0.0047},
    {GgmlType::Q8_1, 0.0065, 0.0047, 0.015, 0.0047},
    {GgmlType::Q8_K, 0.0086, 0.0048, 0.036, 0.0055},
    {GgmlType::Q6_K, 0.0215, 0.017, 0.040, 0.0156},
    {GgmlType::Q5_0, 0.052, 0.038, 0.10, 0.037},
    {GgmlType::Q5_1, 0.046, 0.036, 0.073, 0.0175},
    {GgmlType::Q5_K, 0.044, 0.0335, 0.067, 0.018},
    {GgmlType::Q4_0, 0.104, 0.079, 0.18, 0.074},
    {GgmlType::Q4_1, 0.096, 0.074, 0.153, 0.036},
    {GgmlType::Q4_K, 0.086, 0.067, 0.128, 0.036},
    {GgmlType::Q3_K, 0.182, 0.152, 0.205, 0.130},
    {GgmlType::Q2_K, 0.358, 0.282, 0.42, 0.161},
};

double RelativeRmse(GgmlType t, const std::vector<float>& x, int64_t rows, int64_t cols) {
  const size_t row_bytes = RowBytes(t, cols);
  std::vector<uint8_t> q(row_bytes * rows);
  std::vector<float> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    QuantizeRow(t, x.data() + r * cols, q.data() + r * row_bytes, cols);
    DequantizeRow(t, q.data() + r * row_bytes, y.data() + r * cols, cols);
  }
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (double(y[i]) - x[i]) * (double(y[i]) - x[i]);
    ref += double(x[i]) * x[i];
  }
  return std::sqrt(err / ref);
}

TEST(QuantRoundTrip, ErrorWithinFormatBound) {
  std::mt19937 rng(std::random_device{}());
  for (const Bound& b : kBounds) {
    ASSERT_TRUE(CanQuantize(b.type)) << TypeName(b.type);
    const int64_t block = BlockOf(b.type);
    // Awkward shapes (7 rows of 37 blocks, k-quants 7 x 9 super-blocks), large
    // enough that the measured error is stable from seed to seed.
    const int64_t cols = block == 256 ? 9 * 256 : (block == 1 ? 1001 : 37 * block);
    const int64_t rows = 7;
    const Dist dists[] = {Dist::kNormal, Dist::kUniformSmall, Dist::kHeavyTail, Dist::kShifted};
    const double bounds[] = {b.normal, b.uniform, b.heavy, b.shifted};
    for (int d = 0; d < 4; ++d) {
      const auto x = RandomData(dists[d], rows * cols, &rng);
      const double rel = RelativeRmse(b.type, x, rows, cols);
      EXPECT_LE(rel, bounds[d]) << TypeName(b.type) << " on " << DistName(dists[d]);
      // Also fails if the format silently zeroes everything.
      EXPECT_GT(rel, b.type == GgmlType::F32 ? -1.0 : 1e-7) << TypeName(b.type);
      if (std::getenv("RF_QUANT_VERBOSE")) {
        std::printf("%-5s %-18s rel rmse %.5f (bound %.4f)\n", std::string(TypeName(b.type)).c_str(),
                    DistName(dists[d]), rel, bounds[d]);
      }
    }
  }
}

TEST(QuantRoundTrip, ZeroAndConstantRowsStayExact) {
  for (const Bound& b : kBounds) {
    const int64_t cols = BlockOf(b.type) == 1 ? 64 : 2 * BlockOf(b.type);
    std::vector<uint8_t> q(RowBytes(b.type, cols));
    std::vector<float> zero(cols, 0.f), y(cols, 1.f);
    QuantizeRow(b.type, zero.data(), q.data(), cols);
    DequantizeRow(b.type, q.data(), y.data(), cols);
    for (int64_t i = 0; i < cols; ++i) ASSERT_EQ(y[i], 0.f) << TypeName(b.type) << " at " << i;
    // A constant row must come back close (all formats represent it well).
    std::vector<float> c(cols, -0.75f);
    QuantizeRow(b.type, c.data(), q.data(), cols);
    DequantizeRow(b.type, q.data(), y.data(), cols);
    for (int64_t i = 0; i < cols; ++i) {
      ASSERT_NEAR(y[i], -0.75f, 0.75f * 0.02f) << TypeName(b.type) << " at " << i;
    }
  }
}

// ------------------------------------------- hand-made blocks vs formulas

// Little-endian bit field of a byte array.
int Bits(const uint8_t* p, int bit, int nbits) {
  int v = 0;
  for (int k = 0; k < nbits; ++k) v |= ((p[(bit + k) / 8] >> ((bit + k) % 8)) & 1) << k;
  return v;
}

float Half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return Fp16ToFp32(h);
}

// Element i of one block, computed from the ggml layout description:
// offsets of each field within the block struct and which bits hold what.
double Formula(GgmlType t, const uint8_t* b, int i) {
  switch (t) {
    case GgmlType::Q4_0:  // d | qs[16]: byte i%16, low nibble for i<16
      return (Bits(b + 2, 8 * (i % 16) + 4 * (i / 16), 4) - 8) * double(Half(b));
    case GgmlType::Q4_1:  // d m | qs[16]
      return Bits(b + 4, 8 * (i % 16) + 4 * (i / 16), 4) * double(Half(b)) + Half(b + 2);
    case GgmlType::Q5_0: {  // d | qh (bit i) | qs[16]
      const int q = Bits(b + 6, 8 * (i % 16) + 4 * (i / 16), 4) | (Bits(b + 2, i, 1) << 4);
      return (q - 16) * double(Half(b));
    }
    case GgmlType::Q5_1: {  // d m | qh | qs
      const int q = Bits(b + 8, 8 * (i % 16) + 4 * (i / 16), 4) | (Bits(b + 4, i, 1) << 4);
      return q * double(Half(b)) + Half(b + 2);
    }
    case GgmlType::Q8_0:
      return static_cast<int8_t>(b[2 + i]) * double(Half(b));
    case GgmlType::Q8_1:
      return static_cast<int8_t>(b[4 + i]) * double(Half(b));
    case GgmlType::Q2_K: {  // scales[16] | qs[64] | d | dmin
      // 2-bit code: 128-value halves use 32 bytes each; within a half, value r
      // sits in byte r%32 at bit pair r/32.
      const int h = i / 128, r = i % 128;
      const int q = Bits(b + 16 + 32 * h + r % 32, 2 * (r / 32), 2);
      const int sc = b[i / 16];
      return double(Half(b + 80)) * (sc & 15) * q - double(Half(b + 82)) * (sc >> 4);
    }
    case GgmlType::Q3_K: {  // hmask[32] | qs[64] | scales[12] | d
      const int h = i / 128, r = i % 128;
      const int low = Bits(b + 32 + 32 * h + r % 32, 2 * (r / 32), 2);
      const int high = Bits(b + (i % 32), i / 32, 1);
      const int j = i / 16;
      // 16 scales of 6 bits: low 4 bits as 16 nibbles in bytes 0..7 (nibble
      // j is the low half of byte j for j < 8, the high half of byte j-8
      // after), high 2 bits as 16 2-bit fields in bytes 8..11 (field j is byte
      // 8 + j%4, bits 2*(j/4)).
      const int s_low = Bits(b + 96, (j < 8 ? 8 * j : 8 * (j - 8) + 4), 4);
      const int s_high = Bits(b + 96 + 8 + j % 4, 2 * (j / 4), 2);
      const int scale = (s_low | (s_high << 4)) - 32;
      return double(Half(b + 108)) * scale * (low - (high ? 0 : 4));
    }
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: {  // d dmin | scales[12] | (qh[32] for Q5_K) | qs[128]
      const int j = i / 32;
      const uint8_t* s = b + 4;
      // 8 scales and 8 mins of 6 bits: for j < 4 the low 6 bits of bytes j
      // and j+4; for j >= 4 the nibbles of byte j+4 give the low 4 bits and the
      // top 2 bits of bytes j-4 (scale) and j (min) the high 2.
      int sc, mn;
      if (j < 4) {
        sc = Bits(s + j, 0, 6);
        mn = Bits(s + j + 4, 0, 6);
      } else {
        sc = Bits(s + j + 4, 0, 4) | (Bits(s + j - 4, 6, 2) << 4);
        mn = Bits(s + j + 4, 4, 4) | (Bits(s + j, 6, 2) << 4);
      }
      const uint8_t* qs = b + (t == GgmlType::Q4_K ? 16 : 48);
      int q = Bits(qs + 32 * (i / 64) + i % 32, 4 * ((i / 32) % 2), 4);
      if (t == GgmlType::Q5_K) q |= Bits(b + 16 + i % 32, i / 32, 1) << 4;
      return double(Half(b)) * sc * q - double(Half(b + 2)) * mn;
    }
    case GgmlType::Q6_K: {  // ql[128] | qh[64] | scales[16] (int8) | d
      const int h = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
      const int low = Bits(b + 64 * h + l + 32 * (quarter % 2), 4 * (quarter / 2), 4);
      const int high = Bits(b + 128 + 32 * h + l, 2 * quarter, 2);
      const int sc = static_cast<int8_t>(b[192 + i / 16]);
      return double(Half(b + 208)) * sc * ((low | (high << 4)) - 32);
    }
    case GgmlType::Q8_K: {  // d (float) | qs[256] | bsums
      float d;
      std::memcpy(&d, b, 4);
      return double(d) * static_cast<int8_t>(b[4 + i]);
    }
    default: return NAN;
  }
}

// Offsets of the fp16 scale fields of each block type (set to sane values so
// random bytes decode to finite numbers).
std::vector<int> HalfOffsets(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: return {0};
    case GgmlType::Q4_1: case GgmlType::Q5_1: case GgmlType::Q8_1: return {0, 2};
    case GgmlType::Q2_K: return {80, 82};
    case GgmlType::Q3_K: return {108};
    case GgmlType::Q4_K: case GgmlType::Q5_K: return {0, 2};
    case GgmlType::Q6_K: return {208};
    default: return {};
  }
}

TEST(QuantDequant, HandMadeBlocksMatchLayoutFormulas) {
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(-0.5f, 0.5f);
  const GgmlType types[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                            GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q2_K, GgmlType::Q3_K,
                            GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_K};
  for (GgmlType t : types) {
    const auto* info = GetTypeInfo(t);
    const int nblocks = 5;
    std::vector<uint8_t> raw(info->type_size * nblocks);
    for (auto& v : raw) v = static_cast<uint8_t>(byte(rng));
    for (int blk = 0; blk < nblocks; ++blk) {
      uint8_t* b = raw.data() + blk * info->type_size;
      for (int off : HalfOffsets(t)) {
        const uint16_t h = Fp32ToFp16(scale(rng));
        std::memcpy(b + off, &h, 2);
      }
      if (t == GgmlType::Q8_K) {
        const float d = scale(rng);
        std::memcpy(b, &d, 4);
      }
    }
    const int64_t n = info->block_size * nblocks;
    std::vector<float> y(n);
    DequantizeRow(t, raw.data(), y.data(), n);
    for (int blk = 0; blk < nblocks; ++blk) {
      for (int i = 0; i < info->block_size; ++i) {
        const double want = Formula(t, raw.data() + blk * info->type_size, i);
        ASSERT_NEAR(y[blk * info->block_size + i], want, 1e-5 * (std::fabs(want) + 1.0))
            << TypeName(t) << " block " << blk << " element " << i;
      }
    }
  }
}

TEST(QuantDequant, FloatFormatsAreExactConversions) {
  const float values[] = {0.f, -0.f, 1.f, -2.5f, 65504.f, 6.1035156e-05f, 5.9604645e-08f, 1e-3f};
  for (float v : values) {
    const uint16_t h = Fp32ToFp16(v);
    float y;
    DequantizeRow(GgmlType::F16, &h, &y, 1);
    EXPECT_EQ(y, Fp16ToFp32(h));
    uint16_t b = Fp32ToBf16(v);
    DequantizeRow(GgmlType::BF16, &b, &y, 1);
    uint32_t bits = static_cast<uint32_t>(b) << 16;
    float want;
    std::memcpy(&want, &bits, 4);
    EXPECT_EQ(y, want);
  }
  // A value exactly representable in every format survives untouched.
  std::vector<float> x = {0.5f, -1.f, 2.f, 0.25f};
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16}) {
    std::vector<uint8_t> q(RowBytes(t, 4));
    std::vector<float> y(4);
    QuantizeRow(t, x.data(), q.data(), 4);
    DequantizeRow(t, q.data(), y.data(), 4);
    EXPECT_EQ(x, y) << TypeName(t);
  }
}

TEST(QuantSupport, ReportsSupportedTypes) {
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                     GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q2_K,
                     GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_K}) {
    EXPECT_TRUE(IsSupported(t)) << TypeName(t);
    EXPECT_TRUE(CanQuantize(t)) << TypeName(t);
  }
  for (GgmlType t : {GgmlType::IQ2_XXS, GgmlType::IQ4_NL, GgmlType::I8, GgmlType::F64}) {
    EXPECT_FALSE(IsSupported(t)) << TypeName(t);
    EXPECT_FALSE(CanQuantize(t)) << TypeName(t);
  }
}

}  // namespace
}  // namespace rocmforge::quant
