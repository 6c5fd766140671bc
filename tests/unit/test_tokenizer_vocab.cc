// Malformed vocabularies, built directly or written into GGUF files, give
// errors that name the problem instead of crashing; well-formed metadata is
// read with the documented defaults.
#include <cstdio>
#include <string>
#include <vector>

#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"

namespace rocmforge {
namespace {

Vocab SmallSpm() {
  Vocab v;
  v.model = "llama";
  v.tokens = {"<unk>", "<s>", "</s>", "\xE2\x96\x81" "a", "a"};
  v.scores = {0, 0, 0, -1, -2};
  v.types = {TokenType::kUnknown, TokenType::kControl, TokenType::kControl, TokenType::kNormal,
             TokenType::kNormal};
  v.unk = 0;
  v.bos = 1;
  v.eos = 2;
  v.add_bos = true;
  return v;
}

void ExpectInvalid(Vocab v, const std::string& needle) {
  auto tok = Tokenizer::Create(std::move(v));
  ASSERT_FALSE(tok.ok()) << "expected an error mentioning '" << needle << "'";
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tok.status().message().find(needle), std::string::npos) << tok.status();
}

TEST(TokenizerVocab, CreateRejectsInconsistentVocabs) {
  ASSERT_TRUE(Tokenizer::Create(SmallSpm()).ok());
  Vocab v = SmallSpm();
  v.tokens.clear();
  v.scores.clear();
  v.types.clear();
  ExpectInvalid(v, "no tokens");
  v = SmallSpm();
  v.scores.pop_back();
  ExpectInvalid(v, "scores");
  v = SmallSpm();
  v.types.push_back(TokenType::kNormal);
  ExpectInvalid(v, "token types");
  v = SmallSpm();
  v.types[3] = static_cast<TokenType>(42);
  ExpectInvalid(v, "unknown token type");
  v = SmallSpm();
  v.bos = 5;
  ExpectInvalid(v, "bos token id 5");
  v = SmallSpm();
  v.eot = -7;
  ExpectInvalid(v, "eot");
  v = SmallSpm();
  v.model = "wordpiece";
  ExpectInvalid(v, "wordpiece");
  v = SmallSpm();
  v.model = "gpt2";
  v.pre = "mystery";
  ExpectInvalid(v, "mystery");
  v = SmallSpm();
  v.model = "gpt2";
  v.merges = {"a b", "nospace"};
  ExpectInvalid(v, "merge 1");
}

TEST(TokenizerVocab, VocabWithoutBytePiecesStillEncodes) {
  auto tok = Tokenizer::Create(SmallSpm());
  ASSERT_TRUE(tok.ok());
  // "a" is known; "z" has no piece and no <0x7A>: it becomes <unk>.
  EXPECT_EQ((*tok)->Encode("az", true), (std::vector<TokenId>{1, 3, 0}));
  EXPECT_EQ((*tok)->Encode("", true), (std::vector<TokenId>{1}));
  EXPECT_EQ((*tok)->Encode("", false), (std::vector<TokenId>{}));
}

class VocabGgufTest : public ::testing::Test {
 protected:
  gguf::GgufWriter BaseWriter() {
    gguf::GgufWriter w;
    w.SetString("general.architecture", "llama");
    w.SetString("tokenizer.ggml.model", "llama");
    w.SetStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xE2\x96\x81" "a"});
    w.SetF32Array("tokenizer.ggml.scores", {0, 0, 0, -1});
    w.SetI32Array("tokenizer.ggml.token_type", {2, 3, 3, 1});
    return w;
  }

  absl::StatusOr<Vocab> Read(const gguf::GgufWriter& w) {
    const std::string path = ::testing::TempDir() + "/rf_tok_vocab_" +
                             ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                             ".gguf";
    if (absl::Status s = w.Write(path); !s.ok()) return s;
    auto file = gguf::GgufFile::Open(path);
    if (!file.ok()) return file.status();
    return VocabFromGguf(**file);
  }

  void ExpectError(const gguf::GgufWriter& w, const std::string& needle) {
    auto v = Read(w);
    ASSERT_FALSE(v.ok()) << "expected an error mentioning '" << needle << "'";
    std::printf("  error as reported: %s\n", std::string(v.status().message()).c_str());
    EXPECT_NE(v.status().message().find(needle), std::string::npos) << v.status();
  }
};

TEST_F(VocabGgufTest, ReadsMetadataWithDefaults) {
  auto v = Read(BaseWriter());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->model, "llama");
  EXPECT_EQ(v->pre, "default");
  EXPECT_EQ(v->tokens.size(), 4u);
  EXPECT_EQ(v->types[1], TokenType::kControl);
  // SentencePiece defaults: <unk>=0 <s>=1 </s>=2, add BOS, space prefix.
  EXPECT_EQ(v->unk, 0);
  EXPECT_EQ(v->bos, 1);
  EXPECT_EQ(v->eos, 2);
  EXPECT_TRUE(v->add_bos);
  EXPECT_FALSE(v->add_eos);
  EXPECT_TRUE(v->add_space_prefix);

  gguf::GgufWriter w = BaseWriter();
  w.SetU32("tokenizer.ggml.bos_token_id", 2);
  w.SetBool("tokenizer.ggml.add_bos_token", false);
  w.SetBool("tokenizer.ggml.add_space_prefix", false);
  w.SetString("tokenizer.chat_template", "{{ '<|im_start|>' }}");
  v = Read(w);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->bos, 2);
  EXPECT_FALSE(v->add_bos);
  EXPECT_FALSE(v->add_space_prefix);
  EXPECT_EQ(v->chat_template, "{{ '<|im_start|>' }}");
}

TEST_F(VocabGgufTest, MalformedMetadataIsAnError) {
  gguf::GgufWriter no_tok;
  no_tok.SetString("general.architecture", "llama");
  ExpectError(no_tok, "tokenizer.ggml.model");

  gguf::GgufWriter no_tokens;
  no_tokens.SetString("tokenizer.ggml.model", "llama");
  ExpectError(no_tokens, "tokenizer.ggml.tokens");

  gguf::GgufWriter w = BaseWriter();
  w.SetF32Array("tokenizer.ggml.scores", {0, 0});
  ExpectError(w, "tokenizer.ggml.scores has 2 entries");

  w = BaseWriter();
  w.SetI32Array("tokenizer.ggml.token_type", {1, 1, 1, 9});
  ExpectError(w, "token_type[3]");

  w = BaseWriter();
  w.SetU32("tokenizer.ggml.eos_token_id", 4);
  ExpectError(w, "tokenizer.ggml.eos_token_id");

  w = BaseWriter();
  w.SetString("tokenizer.ggml.tokens", "not an array");
  ExpectError(w, "tokenizer.ggml.tokens");

  w = BaseWriter();
  w.SetString("tokenizer.ggml.model", "t5");
  ExpectError(w, "t5");

  w = BaseWriter();
  w.SetString("tokenizer.ggml.model", "gpt2");
  ExpectError(w, "merges");

  w = BaseWriter();
  w.SetString("tokenizer.ggml.model", "gpt2");
  w.SetStringArray("tokenizer.ggml.merges", {"a"});
  ExpectError(w, "merge 0");
}

}  // namespace
}  // namespace rocmforge
