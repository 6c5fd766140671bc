// Both real tokenizers read from the bundled GGUF files must reproduce the
// reference tokenizers' ids (SentencePiece / Hugging Face, checked against
// llama.cpp) for every prompt and every tokenizer case, and decode back.
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace rocmforge {
namespace {

struct ModelFiles {
  const char* gguf;
  const char* reference;
};

class TokenizerReferenceTest : public ::testing::TestWithParam<ModelFiles> {
 protected:
  void SetUp() override {
    const std::string dir = ROCMFORGE_MODELS_DIR;
    auto file = gguf::GgufFile::Open(dir + "/" + GetParam().gguf);
    ASSERT_TRUE(file.ok()) << file.status();
    auto tok = Tokenizer::FromGguf(**file);
    ASSERT_TRUE(tok.ok()) << tok.status();
    tok_ = *std::move(tok);
    std::ifstream in(dir + "/" + GetParam().reference);
    ASSERT_TRUE(in.good()) << "cannot read " << GetParam().reference;
    ref_ = nlohmann::json::parse(in);
  }

  std::unique_ptr<Tokenizer> tok_;
  nlohmann::json ref_;
};

TEST_P(TokenizerReferenceTest, PromptsEncodeToReferenceIds) {
  ASSERT_FALSE(ref_["generations"].empty());
  for (const auto& gen : ref_["generations"]) {
    const std::string prompt = gen["prompt"];
    const auto want = gen["prompt_ids"].get<std::vector<TokenId>>();
    EXPECT_EQ(tok_->Encode(prompt, /*add_bos=*/true), want) << "prompt: " << prompt;
  }
}

TEST_P(TokenizerReferenceTest, CasesEncodeToReferenceIdsAndDecodeBack) {
  int cases = 0;
  for (const auto& [key, list] : ref_.items()) {
    if (key.rfind("tokenizer_cases", 0) != 0) continue;
    for (const auto& c : list) {
      const std::string text = c["text"];
      const auto want = c["ids"].get<std::vector<TokenId>>();
      EXPECT_EQ(tok_->Encode(text, /*add_bos=*/false), want) << "text: " << text;
      // Control tokens (matched whole from their spelling) decode to nothing.
      std::string expected = text;
      for (TokenId id : want) {
        if (tok_->TokenBytes(id).empty() && !tok_->TokenBytes(id, true).empty()) {
          const std::string piece = tok_->TokenBytes(id, /*render_special=*/true);
          if (const size_t at = expected.find(piece); at != std::string::npos) {
            expected.erase(at, piece.size());
          }
        }
      }
      EXPECT_EQ(tok_->Decode(want), expected) << "ids of: " << text;
      ++cases;
    }
  }
  EXPECT_GE(cases, 20);
}

// The reference's greedy_text is the continuation decoded on its own, as
// SentencePiece/HF decode a sequence (the first piece's "▁" is dropped).
TEST_P(TokenizerReferenceTest, GreedyIdsDecodeToGreedyText) {
  for (const auto& gen : ref_["generations"]) {
    const auto ids = gen["greedy_ids"].get<std::vector<TokenId>>();
    EXPECT_EQ(tok_->Decode(ids), gen["greedy_text"].get<std::string>());
  }
}

TEST_P(TokenizerReferenceTest, PromptIdsDecodeToPrompt) {
  for (const auto& gen : ref_["generations"]) {
    const auto ids = gen["prompt_ids"].get<std::vector<TokenId>>();
    EXPECT_EQ(tok_->Decode(ids), gen["prompt"].get<std::string>());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, TokenizerReferenceTest,
    ::testing::Values(ModelFiles{"tiny-llama-spm-f16.gguf", "tiny-llama-spm.reference.json"},
                      ModelFiles{"tiny-qwen2-bpe-f16.gguf", "tiny-qwen2-bpe.reference.json"}),
    [](const ::testing::TestParamInfo<ModelFiles>& info) {
      return info.index == 0 ? std::string("LlamaSpm") : std::string("Qwen2Bpe");
    });

TEST(TokenizerReferenceSpecials, MetadataOfBothModels) {
  const std::string dir = ROCMFORGE_MODELS_DIR;
  auto spm_file = gguf::GgufFile::Open(dir + "/tiny-llama-spm-f16.gguf");
  ASSERT_TRUE(spm_file.ok()) << spm_file.status();
  auto spm = Tokenizer::FromGguf(**spm_file);
  ASSERT_TRUE(spm.ok()) << spm.status();
  EXPECT_EQ((*spm)->vocab().bos, 1);
  EXPECT_EQ((*spm)->vocab().eos, 2);
  EXPECT_TRUE((*spm)->vocab().add_bos);
  EXPECT_TRUE((*spm)->IsEog(2));
  EXPECT_FALSE((*spm)->IsEog(1));
  EXPECT_EQ((*spm)->Find("<0x0A>"), 13);
  EXPECT_EQ((*spm)->TokenBytes(1), "");
  EXPECT_EQ((*spm)->TokenBytes(1, /*render_special=*/true), "<s>");
  EXPECT_EQ((*spm)->TokenBytes(13), "\n");
  // "<s>" in the text is BOS only when special tokens are parsed.
  EXPECT_EQ((*spm)->Encode("<s>", false, true), std::vector<TokenId>{1});
  EXPECT_NE((*spm)->Encode("<s>", false, false), std::vector<TokenId>{1});

  auto bpe_file = gguf::GgufFile::Open(dir + "/tiny-qwen2-bpe-f16.gguf");
  ASSERT_TRUE(bpe_file.ok()) << bpe_file.status();
  auto bpe = Tokenizer::FromGguf(**bpe_file);
  ASSERT_TRUE(bpe.ok()) << bpe.status();
  const TokenId im_start = (*bpe)->Find("<|im_start|>");
  const TokenId im_end = (*bpe)->Find("<|im_end|>");
  ASSERT_GE(im_start, 0);
  ASSERT_GE(im_end, 0);
  EXPECT_FALSE((*bpe)->vocab().add_bos);
  EXPECT_TRUE((*bpe)->IsEog(im_end));
  EXPECT_TRUE((*bpe)->IsEog((*bpe)->vocab().eos));
  EXPECT_FALSE((*bpe)->IsEog(im_start));
  EXPECT_NE((*bpe)->vocab().chat_template.find("<|im_start|>"), std::string::npos);
  const auto ids = (*bpe)->Encode("<|im_start|>user\nhi<|im_end|>", false, true);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), im_start);
  EXPECT_EQ(ids.back(), im_end);
  EXPECT_EQ((*bpe)->Decode(ids), "user\nhi");
  // Without parse_special the markers are plain text and round-trip as such.
  const auto plain = (*bpe)->Encode("<|im_start|>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ((*bpe)->Decode(plain), "<|im_start|>");
}

}  // namespace
}  // namespace rocmforge
