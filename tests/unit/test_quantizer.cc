// QuantizeModel on the real tiny llama model: Q8_0 and Q4_K_M into a temp
// dir, re-opened with GgufFile; checks the types the mix promises, the
// metadata, and that every weight dequantizes close to its F16 original.
#include <cmath>
#include <functional>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/gguf/gguf_file.h"
#include "engine/gguf/quant.h"
#include "engine/gguf/quant_mix.h"
#include "engine/gguf/quantizer.h"

namespace rocmforge::quant {
namespace {

namespace fs = std::filesystem;

const std::string kModel = std::string(ROCMFORGE_MODELS_DIR) + "/tiny-llama-spm-f16.gguf";

class QuantizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("rf_quantizer_test_" + std::to_string(rd()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::vector<float> Dequantized(const gguf::TensorInfo& t) {
  std::vector<float> out(t.n_elements);
  const size_t row_bytes = RowBytes(t.type, t.cols());
  for (int64_t r = 0; r < t.rows(); ++r) {
    DequantizeRow(t.type, t.data + r * row_bytes, out.data() + r * t.cols(), t.cols());
  }
  return out;
}

double RelRmse(const std::vector<float>& a, const std::vector<float>& b) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    ref += double(b[i]) * b[i];
  }
  return ref > 0 ? std::sqrt(err / ref) : std::sqrt(err);
}

// Opens both files and checks metadata, shapes, and per-tensor error bounds.
void CheckQuantized(const std::string& out, FileType ftype,
                    const std::function<GgmlType(const gguf::TensorInfo&)>& want_type) {
  auto src = gguf::GgufFile::Open(kModel);
  ASSERT_TRUE(src.ok()) << src.status();
  auto dst = gguf::GgufFile::Open(out);
  ASSERT_TRUE(dst.ok()) << dst.status();
  EXPECT_EQ((*dst)->GetInt("general.file_type").value_or(-1), static_cast<int64_t>(ftype));
  EXPECT_EQ((*dst)->GetInt("general.quantization_version").value_or(-1), 2);
  // Every other key is carried over unchanged (spot-check the tokenizer and shape).
  EXPECT_EQ((*dst)->GetStringArray("tokenizer.ggml.tokens").value().size(),
            (*src)->GetStringArray("tokenizer.ggml.tokens").value().size());
  EXPECT_EQ((*dst)->GetInt("llama.block_count").value_or(-1), (*src)->GetInt("llama.block_count").value_or(-2));
  EXPECT_EQ((*dst)->metadata().size(), (*src)->metadata().size() + ((*src)->Find("general.quantization_version") ? 0 : 1) +
                                           ((*src)->Find("general.file_type") ? 0 : 1));

  ASSERT_EQ((*dst)->tensors().size(), (*src)->tensors().size());
  for (const auto& s : (*src)->tensors()) {
    const gguf::TensorInfo* d = (*dst)->FindTensor(s.name);
    ASSERT_NE(d, nullptr) << s.name;
    EXPECT_EQ(d->dims, s.dims) << s.name;
    EXPECT_EQ(d->type, want_type(s)) << s.name;
    // Bounds from the format's round-trip error on these weights (with margin).
    double bound = 1e-6;
    switch (d->type) {
      case GgmlType::Q8_0: bound = 0.01; break;
      case GgmlType::Q6_K: bound = 0.03; break;
      case GgmlType::Q4_K: bound = 0.10; break;
      default: break;
    }
    const double rel = RelRmse(Dequantized(*d), Dequantized(s));
    EXPECT_LE(rel, bound) << s.name << " as " << TypeName(d->type);
    if (d->type != s.type) {
      EXPECT_GT(rel, 0.0) << s.name << " was not re-encoded";
    }
  }
}

TEST_F(QuantizerTest, Q8_0) {
  const std::string out = Path("q8_0.gguf");
  const absl::Status st = QuantizeModel(kModel, out, FileType::MOSTLY_Q8_0, 2);
  ASSERT_TRUE(st.ok()) << st;
  CheckQuantized(out, FileType::MOSTLY_Q8_0, [](const gguf::TensorInfo& t) {
    return t.dims.size() >= 2 ? GgmlType::Q8_0 : GgmlType::F32;
  });
}

TEST_F(QuantizerTest, Q4KM) {
  const std::string out = Path("q4_k_m.gguf");
  const absl::Status st = QuantizeModel(kModel, out, FileType::MOSTLY_Q4_K_M, 2);
  ASSERT_TRUE(st.ok()) << st;
  // 6 layers: use_more_bits picks layers 2 and 5 for attn_v and ffn_down.
  CheckQuantized(out, FileType::MOSTLY_Q4_K_M, [](const gguf::TensorInfo& t) {
    if (t.dims.size() < 2) return GgmlType::F32;
    if (t.name == "output.weight") return GgmlType::Q6_K;
    const bool more = t.name.rfind("blk.2.", 0) == 0 || t.name.rfind("blk.5.", 0) == 0;
    if (more && (t.name.find("attn_v.weight") != std::string::npos ||
                 t.name.find("ffn_down.weight") != std::string::npos)) {
      return GgmlType::Q6_K;
    }
    return GgmlType::Q4_K;
  });
}

TEST_F(QuantizerTest, ErrorsAreClear) {
  absl::Status st = QuantizeModel(Path("missing.gguf"), Path("x.gguf"), FileType::MOSTLY_Q8_0, 1);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(std::string(st.message()).find("missing.gguf"), std::string::npos) << st;
  st = QuantizeModel(kModel, kModel, FileType::MOSTLY_Q8_0, 1);
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(fs::exists(Path("x.gguf")));
}

}  // namespace
}  // namespace rocmforge::quant
