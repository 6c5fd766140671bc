// Reads the two real models in models/ and checks what the reader reports
// against the independent description in their *.reference.json (config), and
// the tensor layout llama.cpp uses for that config.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include "engine/common/fp16.h"
#include "engine/gguf/gguf_file.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace rocmforge::gguf {
namespace {

const std::string kModels = ROCMFORGE_MODELS_DIR;

nlohmann::json ReadConfig(const std::string& file) {
  std::ifstream in(kModels + "/" + file);
  EXPECT_TRUE(in.good()) << file;
  return nlohmann::json::parse(in)["config"];
}

struct Expected {
  std::string file, reference, arch, tokenizer;
};

class RealModelTest : public ::testing::TestWithParam<Expected> {};

TEST_P(RealModelTest, MetadataMatchesReferenceConfig) {
  const Expected& e = GetParam();
  const nlohmann::json cfg = ReadConfig(e.reference);
  auto f = GgufFile::Open(kModels + "/" + e.file);
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.alignment(), 32u);
  EXPECT_EQ(*g.GetString("general.architecture"), e.arch);
  const std::string a = e.arch + ".";
  EXPECT_EQ(*g.GetInt(a + "block_count"), cfg["layers"].get<int64_t>());
  EXPECT_EQ(*g.GetInt(a + "embedding_length"), cfg["dim"].get<int64_t>());
  EXPECT_EQ(*g.GetInt(a + "feed_forward_length"), cfg["ffn"].get<int64_t>());
  EXPECT_EQ(*g.GetInt(a + "attention.head_count"), cfg["heads"].get<int64_t>());
  EXPECT_EQ(*g.GetInt(a + "attention.head_count_kv"), cfg["kv_heads"].get<int64_t>());
  EXPECT_EQ(*g.GetInt(a + "rope.dimension_count"), cfg["head_dim"].get<int64_t>());
  EXPECT_NEAR(*g.GetFloat(a + "rope.freq_base"), cfg["theta"].get<double>(), 1e-3);
  EXPECT_NEAR(*g.GetFloat(a + "attention.layer_norm_rms_epsilon"), cfg["eps"].get<double>(), 1e-9);
  EXPECT_EQ(*g.GetString("tokenizer.ggml.model"), e.tokenizer);
  auto tokens = g.GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(static_cast<int64_t>(tokens->size()), cfg["vocab"].get<int64_t>());
  auto types = g.GetIntArray("tokenizer.ggml.token_type");
  ASSERT_TRUE(types.ok()) << types.status();
  EXPECT_EQ(types->size(), tokens->size());
  EXPECT_TRUE(g.GetBool("tokenizer.ggml.add_bos_token").ok());

  // Typed getters: wrong type and missing keys are errors naming the key.
  auto wrong = g.GetInt("general.architecture");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("general.architecture"), std::string::npos);
  EXPECT_NE(wrong.status().message().find("expected an integer, found string"), std::string::npos);
  EXPECT_EQ(g.GetInt("no.such.key").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*g.GetIntOr("no.such.key", 7), 7);
  EXPECT_FALSE(g.GetIntOr("general.architecture", 7).ok());
  EXPECT_FALSE(g.GetStringArray("tokenizer.ggml.token_type").ok());
}

TEST_P(RealModelTest, TensorsMatchLlamaCppLayout) {
  const Expected& e = GetParam();
  const nlohmann::json cfg = ReadConfig(e.reference);
  auto f = GgufFile::Open(kModels + "/" + e.file);
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  const int64_t dim = cfg["dim"], ffn = cfg["ffn"], layers = cfg["layers"], vocab = cfg["vocab"];
  const int64_t q = cfg["heads"].get<int64_t>() * cfg["head_dim"].get<int64_t>();
  const int64_t kv = cfg["kv_heads"].get<int64_t>() * cfg["head_dim"].get<int64_t>();
  const bool bias = cfg["qkv_bias"], tied = cfg["tied"];

  std::map<std::string, std::vector<int64_t>> want = {{"token_embd.weight", {dim, vocab}},
                                                      {"output_norm.weight", {dim}}};
  if (!tied) want["output.weight"] = {dim, vocab};
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    want[p + "attn_norm.weight"] = {dim};
    want[p + "ffn_norm.weight"] = {dim};
    want[p + "attn_q.weight"] = {dim, q};
    want[p + "attn_k.weight"] = {dim, kv};
    want[p + "attn_v.weight"] = {dim, kv};
    want[p + "attn_output.weight"] = {q, dim};
    want[p + "ffn_gate.weight"] = {dim, ffn};
    want[p + "ffn_up.weight"] = {dim, ffn};
    want[p + "ffn_down.weight"] = {ffn, dim};
    if (bias) {
      want[p + "attn_q.bias"] = {q};
      want[p + "attn_k.bias"] = {kv};
      want[p + "attn_v.bias"] = {kv};
    }
  }
  ASSERT_EQ(g.tensors().size(), want.size());
  const uint8_t* file_begin = g.tensors().front().data - g.tensors().front().offset;
  for (const TensorInfo& t : g.tensors()) {
    SCOPED_TRACE(t.name);
    ASSERT_TRUE(want.count(t.name));
    EXPECT_EQ(t.dims, want[t.name]);
    EXPECT_EQ(g.FindTensor(t.name), &t);
    // As README.md says: 2-D weights F16, norms and biases F32.
    EXPECT_EQ(t.type, t.dims.size() == 2 ? GgmlType::F16 : GgmlType::F32);
    int64_t n = 1;
    for (int64_t d : t.dims) n *= d;
    EXPECT_EQ(t.n_elements, n);
    EXPECT_EQ(t.nbytes, static_cast<size_t>(n) * (t.type == GgmlType::F16 ? 2 : 4));
    EXPECT_EQ(t.rows() * t.cols(), n);
    EXPECT_EQ(t.offset % g.alignment(), 0u);
    EXPECT_EQ(t.data - file_begin, static_cast<std::ptrdiff_t>(t.offset));
    EXPECT_LE(static_cast<size_t>(t.data - (file_begin - 0)) + t.nbytes, g.file_size());
  }
  EXPECT_EQ(g.FindTensor("no.such.tensor"), nullptr);

  // The data really is where the reader says: RMSNorm weights of a trained
  // model are finite and of moderate size, F16 weights are finite.
  const TensorInfo* norm = g.FindTensor("output_norm.weight");
  ASSERT_NE(norm, nullptr);
  for (int64_t k = 0; k < norm->n_elements; ++k) {
    float w;
    std::memcpy(&w, norm->data + 4 * k, 4);
    ASSERT_TRUE(std::isfinite(w) && std::fabs(w) < 100.0f) << w;
  }
  const TensorInfo* emb = g.FindTensor("token_embd.weight");
  double sumsq = 0;
  for (int64_t k = 0; k < emb->n_elements; ++k) {
    uint16_t h;
    std::memcpy(&h, emb->data + 2 * k, 2);
    const float w = Fp16ToFp32(h);
    ASSERT_TRUE(std::isfinite(w));
    sumsq += static_cast<double>(w) * w;
  }
  EXPECT_GT(sumsq, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Models, RealModelTest,
                         ::testing::Values(Expected{"tiny-llama-spm-f16.gguf", "tiny-llama-spm.reference.json",
                                                    "llama", "llama"},
                                           Expected{"tiny-qwen2-bpe-f16.gguf", "tiny-qwen2-bpe.reference.json",
                                                    "qwen2", "gpt2"}),
                         [](const auto& info) { return info.param.arch; });

TEST(GgufOpen, MissingFileIsNotFound) {
  auto f = GgufFile::Open("/nonexistent/dir/model.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(f.status().message().find("/nonexistent/dir/model.gguf"), std::string::npos);
}

TEST(GgufOpen, DirectoryAndEmptyFileAreRejected) {
  auto dir = GgufFile::Open(kModels);
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.status().message().find("not a regular file"), std::string::npos);

  const std::string empty = std::string(ROCMFORGE_BINARY_DIR) + "/test_gguf_reader_empty.gguf";
  std::fclose(std::fopen(empty.c_str(), "wb"));
  auto e = GgufFile::Open(empty);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("empty"), std::string::npos);
  std::remove(empty.c_str());
}

TEST(GgufOpen, FromBytesMatchesOpen) {
  const std::string path = kModels + "/tiny-llama-spm-f16.gguf";
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto a = GgufFile::Open(path);
  auto b = GgufFile::FromBytes(bytes, "copy.gguf");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ((*a)->metadata().size(), (*b)->metadata().size());
  ASSERT_EQ((*a)->tensors().size(), (*b)->tensors().size());
  for (size_t k = 0; k < (*a)->tensors().size(); ++k) {
    const TensorInfo& x = (*a)->tensors()[k];
    const TensorInfo& y = (*b)->tensors()[k];
    EXPECT_EQ(x.name, y.name);
    ASSERT_EQ(x.nbytes, y.nbytes);
    EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes), 0);
  }
  EXPECT_EQ((*b)->path(), "copy.gguf");
}

}  // namespace
}  // namespace rocmforge::gguf
