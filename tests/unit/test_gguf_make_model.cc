// make-model: named shapes carry the published hyper-parameters, the writer
// produces files the reader accepts with the right tensors, types and
// metadata, the random weights have the intended distribution after
// quantization, and the synthetic tokenizers are self-consistent.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include "engine/gguf/gguf_file.h"
#include "engine/gguf/model_shapes.h"
#include "engine/gguf/quant.h"
#include "engine/gguf/quant_mix.h"
#include "engine/gguf/random_model.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"

namespace rocmforge::gguf {
namespace {

std::string TempPath(const std::string& name) { return std::string(ROCMFORGE_BINARY_DIR) + "/" + name; }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

int64_t ParamCount(const ModelShape& s) {
  int64_t n = 0;
  for (const TensorSpec& t : TensorsOf(s)) {
    int64_t e = 1;
    for (int64_t d : t.dims) e *= d;
    n += e;
  }
  return n;
}

// Parameter counts of the published checkpoints (as Hugging Face reports them),
// an independent check of every dim in TensorsOf.
TEST(ModelShapes, RealShapesHaveThePublishedParameterCounts) {
  EXPECT_EQ(ParamCount(*FindShape("llama3-8b")), 8030261248);
  EXPECT_EQ(ParamCount(*FindShape("llama2-7b")), 6738415616);
  EXPECT_EQ(ParamCount(*FindShape("mistral-7b")), 7241732096);
  EXPECT_EQ(ParamCount(*FindShape("qwen2-7b")), 7615616512);
}

TEST(ModelShapes, HyperParameters) {
  const ModelShape l3 = *FindShape("llama3-8b");
  EXPECT_EQ(l3.arch, "llama");
  EXPECT_EQ(l3.n_kv_heads, 8);
  EXPECT_EQ(l3.rope_base, 500000.0f);
  EXPECT_EQ(l3.context, 8192);
  EXPECT_EQ(l3.vocab_kind, VocabKind::kGpt2);
  EXPECT_EQ(l3.tokenizer_pre, "llama-bpe");
  const ModelShape q2 = *FindShape("qwen2-7b");
  EXPECT_EQ(q2.arch, "qwen2");
  EXPECT_EQ(q2.head_dim(), 128);
  EXPECT_EQ(q2.rms_eps, 1e-6f);
  EXPECT_TRUE(q2.qkv_bias);
  EXPECT_FALSE(q2.tied_output);
  EXPECT_EQ(FindShape("mistral-7b")->context, 32768);
  EXPECT_EQ(FindShape("llama2-7b")->vocab_kind, VocabKind::kSpm);
  auto unknown = FindShape("gpt5");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("llama3-8b"), std::string::npos);  // lists the known names
}

void CheckVocab(const ModelShape& s) {
  SCOPED_TRACE(s.name);
  const SyntheticVocab v = MakeVocab(s);
  ASSERT_EQ(static_cast<int64_t>(v.tokens.size()), s.vocab);
  ASSERT_EQ(v.token_types.size(), v.tokens.size());
  const std::set<std::string> unique(v.tokens.begin(), v.tokens.end());
  EXPECT_EQ(unique.size(), v.tokens.size()) << "duplicate tokens";
  ASSERT_GE(v.bos_id, 0);
  ASSERT_LT(v.eos_id, s.vocab);
  EXPECT_EQ(v.token_types[static_cast<size_t>(v.bos_id)], 3);
  EXPECT_EQ(v.token_types[static_cast<size_t>(v.eos_id)], 3);
  if (s.vocab_kind == VocabKind::kGpt2) {
    EXPECT_TRUE(v.scores.empty());
    // Byte-level alphabet: 256 distinct single code points; 'A' is itself,
    // the space byte is U+0120 'Ġ' as in GPT-2.
    EXPECT_TRUE(unique.count("A"));
    EXPECT_TRUE(unique.count("\xC4\xA0"));
    EXPECT_EQ(v.tokens[0], "!");
    EXPECT_GE(v.merges.size(), 200u);
    for (const std::string& m : v.merges) {
      const size_t sp = m.find(' ');
      ASSERT_NE(sp, std::string::npos) << m;
      const std::string a = m.substr(0, sp), b = m.substr(sp + 1);
      EXPECT_TRUE(unique.count(a) && unique.count(b) && unique.count(a + b)) << m;
    }
    EXPECT_TRUE(unique.count("\xC4\xA0the"));  // "Ġthe", learned from the English text
    if (s.tokenizer_pre == "qwen2") {
      EXPECT_TRUE(unique.count("<|im_start|>") && unique.count("<|im_end|>"));
      EXPECT_EQ(v.tokens[static_cast<size_t>(v.eos_id)], "<|endoftext|>");
    } else {
      EXPECT_EQ(v.tokens[static_cast<size_t>(v.bos_id)], "<|begin_of_text|>");
      EXPECT_EQ(v.tokens[static_cast<size_t>(v.eos_id)], "<|end_of_text|>");
      EXPECT_TRUE(v.add_bos);
    }
  } else {
    ASSERT_EQ(v.scores.size(), v.tokens.size());
    EXPECT_EQ(v.tokens[0], "<unk>");
    EXPECT_EQ(v.tokens[1], "<s>");
    EXPECT_EQ(v.tokens[2], "</s>");
    for (int b = 0; b < 256; ++b) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "<0x%02X>", b);
      EXPECT_EQ(v.tokens[static_cast<size_t>(3 + b)], hex);
      EXPECT_EQ(v.token_types[static_cast<size_t>(3 + b)], 6);
    }
    // Every multi-character normal piece can be built by merging two pieces
    // that are themselves in the vocabulary (what SPM-BPE needs).
    const std::string kSpace = "\xE2\x96\x81";
    EXPECT_TRUE(unique.count(kSpace) && unique.count(kSpace + "the"));
    for (size_t k = 0; k < v.tokens.size(); ++k) {
      const std::string& t = v.tokens[k];
      if (v.token_types[k] != 1 || t.size() <= 1 || t == kSpace) continue;
      bool splittable = false;
      for (size_t cut = 1; cut < t.size() && !splittable; ++cut) {
        splittable = unique.count(t.substr(0, cut)) && unique.count(t.substr(cut));
      }
      EXPECT_TRUE(splittable) << t;
    }
  }
}

TEST(ModelShapes, SyntheticVocabulariesAreConsistent) {
  for (const ModelShape& s : NamedShapes()) CheckVocab(s);
}

struct Case {
  std::string shape, type;
};

class MakeModelTest : public ::testing::TestWithParam<Case> {};

TEST_P(MakeModelTest, ReaderAcceptsItWithTheRightShapesTypesAndWeights) {
  const ModelShape shape = *FindShape(GetParam().shape);
  FileType ftype;
  ASSERT_TRUE(quant::ParseFileType(GetParam().type, &ftype));
  const std::string path = TempPath("test_gguf_make_model_" + shape.name + "_" + GetParam().type + ".gguf");
  RandomModelOptions opt;
  opt.seed = 42;
  opt.threads = 2;
  opt.progress = false;
  ASSERT_TRUE(WriteRandomModel(shape, ftype, path, opt).ok());

  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  const std::string a = shape.arch + ".";
  EXPECT_EQ(*g.GetString("general.architecture"), shape.arch);
  EXPECT_EQ(*g.GetInt("general.file_type"), static_cast<int64_t>(ftype));
  EXPECT_EQ(*g.GetInt(a + "block_count"), shape.n_layers);
  EXPECT_EQ(*g.GetInt(a + "embedding_length"), shape.dim);
  EXPECT_EQ(*g.GetInt(a + "feed_forward_length"), shape.ffn);
  EXPECT_EQ(*g.GetInt(a + "attention.head_count"), shape.n_heads);
  EXPECT_EQ(*g.GetInt(a + "attention.head_count_kv"), shape.n_kv_heads);
  EXPECT_EQ(*g.GetInt(a + "rope.dimension_count"), shape.head_dim());
  EXPECT_EQ(*g.GetInt(a + "context_length"), shape.context);
  EXPECT_FLOAT_EQ(static_cast<float>(*g.GetFloat(a + "rope.freq_base")), shape.rope_base);
  EXPECT_EQ(static_cast<int64_t>(g.GetStringArray("tokenizer.ggml.tokens")->size()), shape.vocab);
  EXPECT_EQ(*g.GetString("tokenizer.ggml.model"), shape.vocab_kind == VocabKind::kGpt2 ? "gpt2" : "llama");
  EXPECT_EQ(g.Find("tokenizer.ggml.merges") != nullptr, shape.vocab_kind == VocabKind::kGpt2);
  EXPECT_EQ(g.Find("tokenizer.ggml.scores") != nullptr, shape.vocab_kind == VocabKind::kSpm);

  // Independent expectation of the tensor set (llama.cpp naming).
  const int64_t q = shape.n_heads * shape.head_dim(), kv = shape.n_kv_heads * shape.head_dim();
  size_t expected_count = 1 + 1 + (shape.tied_output ? 0 : 1) +
                          static_cast<size_t>(shape.n_layers) * (9 + (shape.qkv_bias ? 3 : 0));
  ASSERT_EQ(g.tensors().size(), expected_count);
  EXPECT_EQ(g.FindTensor("token_embd.weight")->dims, (std::vector<int64_t>{shape.dim, shape.vocab}));
  EXPECT_EQ(g.FindTensor("output.weight") == nullptr, shape.tied_output);
  EXPECT_EQ(g.FindTensor("blk.1.attn_k.weight")->dims, (std::vector<int64_t>{shape.dim, kv}));
  EXPECT_EQ(g.FindTensor("blk.1.attn_output.weight")->dims, (std::vector<int64_t>{q, shape.dim}));
  EXPECT_EQ(g.FindTensor("blk.0.ffn_down.weight")->dims, (std::vector<int64_t>{shape.ffn, shape.dim}));
  EXPECT_EQ(g.FindTensor("blk.0.attn_q.bias") != nullptr, shape.qkv_bias);

  for (const TensorInfo& t : g.tensors()) {
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.type, quant::TensorTypeFor(ftype, t.name, static_cast<int>(t.dims.size()), t.dims[0],
                                           static_cast<int>(shape.n_layers)));
    // Dequantize a few rows; weights ~ N(0, 0.02), norm weights ~ 1.
    const bool norm = t.name.find("_norm.") != std::string::npos;
    const int64_t rows = std::min<int64_t>(t.rows(), 8);
    std::vector<float> x(static_cast<size_t>(t.cols()));
    double sum = 0, sumsq = 0;
    for (int64_t r = 0; r < rows; ++r) {
      quant::DequantizeRow(t.type, t.data + static_cast<size_t>(r) * RowBytes(t.type, t.cols()), x.data(), t.cols());
      for (float w : x) {
        ASSERT_TRUE(std::isfinite(w));
        sum += w;
        sumsq += static_cast<double>(w) * w;
      }
    }
    const double n = static_cast<double>(rows * t.cols());
    const double mean = sum / n, sd = std::sqrt(std::max(0.0, sumsq / n - mean * mean));
    EXPECT_NEAR(mean, norm ? 1.0 : 0.0, norm ? 0.01 : 0.004);
    EXPECT_NEAR(sd, 0.02, 0.005);
  }
  std::remove(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(TinyShapes, MakeModelTest,
                         ::testing::Values(Case{"tiny-llama", "F16"}, Case{"tiny-llama", "Q4_K_M"},
                                           Case{"tiny-qwen2", "F16"}, Case{"tiny-qwen2", "Q4_K_M"},
                                           Case{"tiny-qwen2", "Q8_0"}),
                         [](const auto& info) {
                           std::string n = info.param.shape + "_" + info.param.type;
                           for (char& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return n;
                         });

// The engine's tokenizers accept the synthetic vocabularies: text round-trips
// and the learned merges actually compress English.
TEST(MakeModel, TokenizerLoadsTheSyntheticVocabularies) {
  for (const char* name : {"tiny-llama", "tiny-qwen2"}) {
    SCOPED_TRACE(name);
    const ModelShape shape = *FindShape(name);
    RandomModelOptions opt;
    opt.progress = false;
    const std::string path = TempPath(std::string("test_gguf_make_model_tok_") + name + ".gguf");
    ASSERT_TRUE(WriteRandomModel(shape, FileType::MOSTLY_F16, path, opt).ok());
    auto f = GgufFile::Open(path);
    ASSERT_TRUE(f.ok()) << f.status();
    auto tok = Tokenizer::FromGguf(**f);
    ASSERT_TRUE(tok.ok()) << tok.status();
    for (const std::string text : {"The people of the town went down to the river.",
                                   "Z\xC3\xA9" "bra 42 \xF0\x9F\x99\x82 tabs\tand  spaces"}) {
      const std::vector<TokenId> ids = (*tok)->Encode(text, /*add_bos=*/false, /*parse_special=*/false);
      ASSERT_FALSE(ids.empty());
      for (TokenId id : ids) ASSERT_TRUE(id >= 0 && id < shape.vocab) << id;
      EXPECT_EQ((*tok)->Decode(ids), text);
    }
    const std::string english = "The people of the town went down to the river.";
    EXPECT_LT((*tok)->Encode(english, false, false).size(), english.size() / 2);
    std::remove(path.c_str());
  }
}

TEST(MakeModel, DeterministicForASeedWhateverTheThreadCount) {
  const ModelShape shape = *FindShape("tiny-llama");
  RandomModelOptions opt;
  opt.progress = false;
  opt.seed = 7;
  opt.threads = 1;
  const std::string a = TempPath("test_gguf_make_model_det_a.gguf"), b = TempPath("test_gguf_make_model_det_b.gguf");
  ASSERT_TRUE(WriteRandomModel(shape, FileType::MOSTLY_Q8_0, a, opt).ok());
  opt.threads = 3;
  ASSERT_TRUE(WriteRandomModel(shape, FileType::MOSTLY_Q8_0, b, opt).ok());
  EXPECT_EQ(ReadAll(a), ReadAll(b));
  opt.seed = 8;
  ASSERT_TRUE(WriteRandomModel(shape, FileType::MOSTLY_Q8_0, b, opt).ok());
  EXPECT_NE(ReadAll(a), ReadAll(b));
  std::remove(a.c_str());
  std::remove(b.c_str());
}

TEST(MakeModel, DistinctTensorsGetDistinctData) {
  const ModelShape shape = *FindShape("tiny-llama");
  RandomModelOptions opt;
  opt.progress = false;
  const std::string path = TempPath("test_gguf_make_model_distinct.gguf");
  ASSERT_TRUE(WriteRandomModel(shape, FileType::MOSTLY_F16, path, opt).ok());
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok());
  const TensorInfo* g0 = (*f)->FindTensor("blk.0.ffn_gate.weight");
  const TensorInfo* u0 = (*f)->FindTensor("blk.0.ffn_up.weight");
  const TensorInfo* g1 = (*f)->FindTensor("blk.1.ffn_gate.weight");
  ASSERT_TRUE(g0 && u0 && g1);
  EXPECT_NE(std::memcmp(g0->data, u0->data, g0->nbytes), 0);
  EXPECT_NE(std::memcmp(g0->data, g1->data, g0->nbytes), 0);
  // Rows within a tensor differ too (256 distinct pool rows).
  const size_t row = RowBytes(g0->type, g0->cols());
  EXPECT_NE(std::memcmp(g0->data, g0->data + row, row), 0);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace rocmforge::gguf
