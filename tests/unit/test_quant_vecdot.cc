// VecDot (scalar and AVX2) against float dot products of dequantized rows.
//   1. VecDot(w, QuantizeActivation(x)) equals the float dot of dequant(w)
//      with dequant(activation) up to float rounding (same math, exact ints).
//   2. It is within the activation's quantization error of the true dot
//      dequant(w) . x, bounded by Cauchy-Schwarz: |w| * |x_act - x|.
//   3. The AVX2 and scalar paths agree to float rounding.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/gguf/ggml_types.h"
#include "engine/gguf/quant.h"

namespace rocmforge::quant {
namespace {

const GgmlType kWeightTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,
                                 GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                                 GgmlType::Q8_1, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,
                                 GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_K};

struct Row {
  std::vector<uint8_t> bytes;
  std::vector<float> deq;
};

Row Quantized(GgmlType t, const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  Row r{std::vector<uint8_t>(RowBytes(t, n)), std::vector<float>(n)};
  QuantizeRow(t, x.data(), r.bytes.data(), n);
  DequantizeRow(t, r.bytes.data(), r.deq.data(), n);
  return r;
}

struct Case {
  GgmlType type;
  int64_t n;
  std::vector<float> w, x;
};

// Fresh random rows of awkward lengths: a few blocks, many blocks, and for
// the float types a length that is not a multiple of the SIMD width.
std::vector<Case> MakeCases(std::mt19937* rng) {
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> uni(-3.f, 3.f);
  std::vector<Case> cases;
  for (GgmlType t : kWeightTypes) {
    const int64_t block = GetTypeInfo(t)->block_size;
    std::vector<int64_t> lengths = block == 256 ? std::vector<int64_t>{256, 5 * 256, 11 * 256}
                                   : block == 32 ? std::vector<int64_t>{32, 7 * 32, 97 * 32}
                                                 : std::vector<int64_t>{1, 13, 8 * 129 + 5};
    for (int64_t n : lengths) {
      for (int variant = 0; variant < 2; ++variant) {
        Case c{t, n, std::vector<float>(n), std::vector<float>(n)};
        for (int64_t i = 0; i < n; ++i) {
          c.w[i] = variant ? uni(*rng) + 0.3f : 0.02f * normal(*rng);
          c.x[i] = variant ? 10.f * normal(*rng) : uni(*rng);
        }
        cases.push_back(std::move(c));
      }
    }
  }
  return cases;
}

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
  return s;
}
double AbsDot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += std::fabs(double(a[i]) * b[i]);
  return s;
}
double Norm(const std::vector<float>& a) { return std::sqrt(Dot(a, a)); }
double DiffNorm(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(s);
}

void CheckPath(bool scalar) {
  ForceScalar(scalar);
  std::mt19937 rng(std::random_device{}());
  for (const Case& c : MakeCases(&rng)) {
    const std::string what = std::string(TypeName(c.type)) + " n=" + std::to_string(c.n) + " (" +
                             VecDotImpl() + ")";
    const Row w = Quantized(c.type, c.w);
    const GgmlType at = ActivationType(c.type);
    std::vector<uint8_t> act(ActivationRowBytes(c.type, c.n));
    ASSERT_EQ(act.size(), RowBytes(at, c.n)) << what;
    QuantizeActivation(c.type, c.x.data(), act.data(), c.n);
    std::vector<float> x_act(c.n);
    DequantizeRow(at, act.data(), x_act.data(), c.n);

    const double got = VecDot(c.type, w.bytes.data(), act.data(), c.n);
    // 1. Same products, float rounding only.
    const double same = Dot(w.deq, x_act);
    EXPECT_NEAR(got, same, 2e-6 * AbsDot(w.deq, x_act) + 1e-30) << what;
    // 2. Within the activation's quantization error of the true dot.
    const double truth = Dot(w.deq, c.x);
    const double act_err = Norm(w.deq) * DiffNorm(x_act, c.x);
    EXPECT_NEAR(got, truth, act_err + 2e-6 * AbsDot(w.deq, c.x) + 1e-30) << what;
    // ... and within weight + activation error of the dot of the raw floats.
    const double both_err = act_err + DiffNorm(w.deq, c.w) * Norm(c.x);
    EXPECT_NEAR(got, Dot(c.w, c.x), both_err + 2e-6 * AbsDot(c.w, c.x) + 1e-30) << what;
  }
  ForceScalar(false);
}

TEST(QuantVecDot, ScalarMatchesDequantizedDot) { CheckPath(/*scalar=*/true); }

TEST(QuantVecDot, DefaultPathMatchesDequantizedDot) {
  // On an AVX2 machine this is the AVX2 path; elsewhere the scalar one again.
  CheckPath(/*scalar=*/false);
}

TEST(QuantVecDot, Avx2AgreesWithScalar) {
  ForceScalar(false);
  if (std::string(VecDotImpl()) != "avx2") GTEST_SKIP() << "CPU without AVX2+FMA+F16C";
  std::mt19937 rng(std::random_device{}());
  for (const Case& c : MakeCases(&rng)) {
    const Row w = Quantized(c.type, c.w);
    std::vector<uint8_t> act(ActivationRowBytes(c.type, c.n));
    QuantizeActivation(c.type, c.x.data(), act.data(), c.n);
    const double fast = VecDot(c.type, w.bytes.data(), act.data(), c.n);
    ForceScalar(true);
    const double ref = VecDot(c.type, w.bytes.data(), act.data(), c.n);
    ForceScalar(false);
    std::vector<float> x_act(c.n);
    DequantizeRow(ActivationType(c.type), act.data(), x_act.data(), c.n);
    EXPECT_NEAR(fast, ref, 2e-6 * AbsDot(w.deq, x_act) + 1e-30)
        << TypeName(c.type) << " n=" << c.n;
  }
}

TEST(QuantVecDot, ActivationPairing) {
  EXPECT_EQ(ActivationType(GgmlType::F32), GgmlType::F32);
  EXPECT_EQ(ActivationType(GgmlType::F16), GgmlType::F32);
  EXPECT_EQ(ActivationType(GgmlType::BF16), GgmlType::F32);
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0}) {
    EXPECT_EQ(ActivationType(t), GgmlType::Q8_0) << TypeName(t);
  }
  for (GgmlType t : {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    EXPECT_EQ(ActivationType(t), GgmlType::Q8_K) << TypeName(t);
    EXPECT_EQ(ActivationRowBytes(t, 512), 2 * sizeof(BlockQ8_K));
  }
}

// The AVX2 Q8_0 activation quantizer writes the scalar one's bytes exactly:
// random rows of awkward lengths and scales, plus blocks built to hit every
// rounding tie (amax 127, so id = 1 and x * id = x: +-0.5, +-1.5, ... +-126.5),
// an all-zero block, and blocks of tiny, huge and mixed-sign values.
TEST(QuantVecDot, Avx2Q8_0QuantizerBitIdenticalToScalar) {
  ForceScalar(false);
  if (std::string(VecDotImpl()) != "avx2") GTEST_SKIP() << "CPU without AVX2+FMA+F16C";
  std::mt19937 rng(std::random_device{}());
  std::vector<std::vector<float>> rows;
  for (int64_t blocks : {1, 3, 7, 129}) {
    for (float scale : {1e-6f, 0.03f, 1.0f, 250.0f, 3e4f}) {
      std::normal_distribution<float> dist(0.0f, scale);
      std::vector<float> x(static_cast<size_t>(blocks * 32));
      for (float& v : x) v = dist(rng);
      rows.push_back(x);
    }
  }
  std::vector<float> ties;
  for (int b = 0; b < 8; ++b) {
    for (int j = 0; j < 32; ++j) {
      const float v = j == 0 ? 127.0f : static_cast<float>(static_cast<int>(rng() % 127)) + 0.5f;
      ties.push_back(rng() % 2 ? -v : v);
    }
  }
  for (int j = 0; j < 32; ++j) ties.push_back(0.0f);
  rows.push_back(ties);
  for (const std::vector<float>& x : rows) {
    const int64_t n = static_cast<int64_t>(x.size());
    std::vector<uint8_t> fast(ActivationRowBytes(GgmlType::Q8_0, n)), ref(fast.size());
    QuantizeActivation(GgmlType::Q8_0, x.data(), fast.data(), n);
    ForceScalar(true);
    QuantizeActivation(GgmlType::Q8_0, x.data(), ref.data(), n);
    ForceScalar(false);
    EXPECT_EQ(fast, ref) << "n=" << n << " first value " << x[0];
  }
}

}  // namespace
}  // namespace rocmforge::quant
