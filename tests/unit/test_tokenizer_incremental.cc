// IncrementalDecoder: over random id sequences of both real models (byte
// tokens included, so multi-byte characters arrive split across tokens) the
// pieces are each valid UTF-8 and concatenate to Decode(ids); over encoded
// random Unicode text they give the text back.
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"

namespace rocmforge {
namespace {

// Independent validity check (RFC 3629): no overlongs, no surrogates, <= U+10FFFF.
bool ValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    unsigned cp;
    if (c < 0x80) { n = 1; cp = c; }
    else if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
    else return false;
    if (i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

std::string Utf8(unsigned cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

class IncrementalTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    auto file = gguf::GgufFile::Open(std::string(ROCMFORGE_MODELS_DIR) + "/" + GetParam());
    ASSERT_TRUE(file.ok()) << file.status();
    auto tok = Tokenizer::FromGguf(**file);
    ASSERT_TRUE(tok.ok()) << tok.status();
    tok_ = *std::move(tok);
  }

  // Streams `ids` through a fresh decoder, checking every piece.
  std::string Stream(const std::vector<TokenId>& ids) {
    IncrementalDecoder dec(*tok_);
    std::string all;
    for (TokenId id : ids) {
      const std::string piece = dec.Push(id);
      EXPECT_TRUE(ValidUtf8(piece)) << "broken UTF-8 emitted after id " << id;
      all += piece;
    }
    const std::string rest = dec.Flush();
    EXPECT_TRUE(ValidUtf8(rest));
    return all + rest;
  }

  std::unique_ptr<Tokenizer> tok_;
};

TEST_P(IncrementalTest, RandomIdsConcatenateToDecode) {
  std::mt19937 rng(12345);
  const TokenId n = tok_->vocab_size();
  std::uniform_int_distribution<TokenId> any(0, n - 1);
  std::uniform_int_distribution<int> len(1, 60), coin(0, 3);
  // Ids whose bytes are a single byte >= 0x80: the pieces of split characters.
  std::vector<TokenId> high_bytes;
  for (TokenId id = 0; id < n; ++id) {
    const std::string b = tok_->TokenBytes(id);
    if (b.size() == 1 && static_cast<unsigned char>(b[0]) >= 0x80) high_bytes.push_back(id);
  }
  ASSERT_GE(high_bytes.size(), 128u);
  std::uniform_int_distribution<size_t> high(0, high_bytes.size() - 1);
  for (int round = 0; round < 300; ++round) {
    std::vector<TokenId> ids;
    for (int i = len(rng); i > 0; --i) ids.push_back(coin(rng) == 0 ? any(rng) : high_bytes[high(rng)]);
    const std::string whole = tok_->Decode(ids);
    EXPECT_TRUE(ValidUtf8(whole));
    ASSERT_EQ(Stream(ids), whole);
  }
  // Out-of-range ids are ignored, not a crash.
  EXPECT_EQ(Stream({-5, n, n + 100}), "");
  EXPECT_EQ(tok_->Decode({-1, n}), "");
}

TEST_P(IncrementalTest, EncodedRandomTextStreamsBackExactly) {
  std::mt19937 rng(99);
  // ASCII, Latin-1, Greek, CJK, emoji, combining marks, spaces and newlines.
  const unsigned pool[] = {'a', 'Z', ' ', ' ', '\n', '\t', '7', '.', '\'', 0xE9, 0xDC, 0x3A9,
                           0x65E5, 0x672C, 0x30C6, 0x1F642, 0x1F680, 0x301, 0x2211, 0x10348};
  std::uniform_int_distribution<size_t> pick(0, std::size(pool) - 1);
  std::uniform_int_distribution<int> len(1, 30);
  for (int round = 0; round < 200; ++round) {
    std::string text;
    for (int i = len(rng); i > 0; --i) text += Utf8(pool[pick(rng)]);
    const auto ids = tok_->Encode(text, /*add_bos=*/true, /*parse_special=*/false);
    ASSERT_EQ(tok_->Decode(ids), text);
    ASSERT_EQ(Stream(ids), text);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, IncrementalTest,
                         ::testing::Values("tiny-llama-spm-f16.gguf", "tiny-qwen2-bpe-f16.gguf"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return info.index == 0 ? std::string("LlamaSpm") : std::string("Qwen2Bpe");
                         });

}  // namespace
}  // namespace rocmforge
