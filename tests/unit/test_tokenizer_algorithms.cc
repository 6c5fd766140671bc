// The priority-queue merge loops of both tokenizers against plain quadratic
// reference implementations written from the algorithm's definition, on fresh
// random vocabularies and texts.
#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/pretokenizer.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"

namespace rocmforge {
namespace {

const std::string kMarker = "\xE2\x96\x81";  // "▁"

// ---- SentencePiece BPE ------------------------------------------------------

// Reference: repeatedly merge the adjacent pair whose concatenation is a piece
// with the highest score (leftmost on ties); unknown symbols become bytes.
std::vector<TokenId> ReferenceSpm(const Vocab& v, const std::string& text) {
  std::map<std::string, TokenId> id;
  for (size_t i = 0; i < v.tokens.size(); ++i) id[v.tokens[i]] = static_cast<TokenId>(i);
  std::string s = kMarker;
  for (char c : text) s += c == ' ' ? kMarker : std::string(1, c);
  std::vector<std::string> sym;
  for (size_t i = 0; i < s.size();) {
    const size_t n = s.compare(i, 3, kMarker) == 0 ? 3 : 1;  // test texts are ASCII + ▁
    sym.push_back(s.substr(i, n));
    i += n;
  }
  for (;;) {
    int best = -1;
    float best_score = 0;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      auto it = id.find(sym[i] + sym[i + 1]);
      if (it == id.end()) continue;
      const float sc = v.scores[static_cast<size_t>(it->second)];
      if (best < 0 || sc > best_score) {
        best = static_cast<int>(i);
        best_score = sc;
      }
    }
    if (best < 0) break;
    sym[static_cast<size_t>(best)] += sym[static_cast<size_t>(best) + 1];
    sym.erase(sym.begin() + best + 1);
  }
  std::vector<TokenId> out;
  for (const std::string& p : sym) {
    auto it = id.find(p);
    if (it != id.end()) {
      out.push_back(it->second);
      continue;
    }
    for (unsigned char c : p) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "<0x%02X>", c);
      out.push_back(id.at(hex));
    }
  }
  return out;
}

Vocab RandomSpmVocab(std::mt19937& rng) {
  Vocab v;
  v.model = "llama";
  v.tokens = {"<unk>", "<s>", "</s>"};
  v.types = {TokenType::kUnknown, TokenType::kControl, TokenType::kControl};
  for (int b = 0; b < 256; ++b) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "<0x%02X>", b);
    v.tokens.push_back(hex);
    v.types.push_back(TokenType::kByte);
  }
  // Letters 'a'..'e' and ▁ as single pieces (leave 'f' to byte fallback),
  // then random longer pieces over the same alphabet.
  const std::vector<std::string> alphabet = {"a", "b", "c", "d", "e", kMarker, "f"};
  for (int i = 0; i < 6; ++i) {
    v.tokens.push_back(alphabet[static_cast<size_t>(i)]);
    v.types.push_back(TokenType::kNormal);
  }
  std::uniform_int_distribution<int> len(2, 5), ch(0, 6);
  for (int i = 0; i < 150; ++i) {
    std::string t;
    for (int n = len(rng); n > 0; --n) t += alphabet[static_cast<size_t>(ch(rng))];
    v.tokens.push_back(t);
    v.types.push_back(TokenType::kNormal);
  }
  // Coarse scores so that ties happen.
  std::uniform_int_distribution<int> score(-8, 0);
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    v.scores.push_back(v.types[i] == TokenType::kNormal ? static_cast<float>(score(rng)) : 0.0f);
  }
  v.bos = 1;
  v.eos = 2;
  v.unk = 0;
  v.add_bos = true;
  return v;
}

TEST(TokenizerAlgorithms, SpmMatchesQuadraticReference) {
  std::mt19937 rng(20261125);
  const std::string chars = "abcdef  ";
  std::uniform_int_distribution<size_t> pick(0, chars.size() - 1);
  std::uniform_int_distribution<int> len(0, 41);
  for (int round = 0; round < 20; ++round) {
    const Vocab v = RandomSpmVocab(rng);
    auto tok = Tokenizer::Create(v);
    ASSERT_TRUE(tok.ok()) << tok.status();
    for (int i = 0; i < 50; ++i) {
      std::string text;
      for (int n = len(rng); n > 0; --n) text += chars[pick(rng)];
      if (text.empty()) continue;  // "" encodes to nothing, not to "▁"
      ASSERT_EQ((*tok)->Encode(text, false), ReferenceSpm(v, text)) << "text: '" << text << "'";
      std::vector<TokenId> with_bos = ReferenceSpm(v, text);
      with_bos.insert(with_bos.begin(), 1);
      ASSERT_EQ((*tok)->Encode(text, true), with_bos);
      ASSERT_EQ((*tok)->Decode(with_bos), text);
    }
  }
}

// ---- byte-level BPE ----------------------------------------------------------

// Reference: per pre-tokenized word, repeatedly merge the adjacent pair with
// the lowest merge rank (leftmost on ties).
std::vector<TokenId> ReferenceBpe(const Vocab& v, const PreTokenizer& pre, const std::string& text) {
  std::map<std::string, TokenId> id;
  for (size_t i = 0; i < v.tokens.size(); ++i) id[v.tokens[i]] = static_cast<TokenId>(i);
  std::map<std::pair<std::string, std::string>, int> rank;
  for (size_t i = 0; i < v.merges.size(); ++i) {
    const size_t sp = v.merges[i].find(' ', 1);
    rank.emplace(std::make_pair(v.merges[i].substr(0, sp), v.merges[i].substr(sp + 1)),
                 static_cast<int>(i));
  }
  std::vector<TokenId> out;
  for (std::string_view raw : pre.Split(text)) {
    std::string word;
    byte_level::Encode(raw, &word);
    std::vector<std::string> sym;
    for (size_t i = 0; i < word.size();) {  // byte-level chars are 1 or 2 bytes here
      const size_t n = (static_cast<unsigned char>(word[i]) & 0x80) ? 2 : 1;
      sym.push_back(word.substr(i, n));
      i += n;
    }
    for (;;) {
      int best = -1, best_rank = 0;
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        auto it = rank.find({sym[i], sym[i + 1]});
        if (it != rank.end() && (best < 0 || it->second < best_rank)) {
          best = static_cast<int>(i);
          best_rank = it->second;
        }
      }
      if (best < 0) break;
      sym[static_cast<size_t>(best)] += sym[static_cast<size_t>(best) + 1];
      sym.erase(sym.begin() + best + 1);
    }
    for (const std::string& p : sym) out.push_back(id.at(p));
  }
  return out;
}

Vocab RandomBpeVocab(std::mt19937& rng) {
  Vocab v;
  v.model = "gpt2";
  v.pre = "gpt-2";
  for (int b = 0; b < 256; ++b) {
    std::string c;
    byte_level::Encode(std::string(1, static_cast<char>(b)), &c);
    v.tokens.push_back(c);
  }
  // Merges built bottom-up from letters and 'Ġ' so that every merge result is
  // a token; rank = creation order.
  std::vector<std::string> parts = {"a", "b", "c", "d", "\xC4\xA0"};
  std::uniform_int_distribution<int> coin(0, 99);
  for (int i = 0; i < 120; ++i) {
    std::uniform_int_distribution<size_t> pick(0, parts.size() - 1);
    const std::string l = parts[pick(rng)], r = parts[pick(rng)];
    if (r == "\xC4\xA0" || (l.find("\xC4\xA0") != std::string::npos && l != "\xC4\xA0")) continue;
    const std::string merged = l + r;
    if (std::find(v.tokens.begin(), v.tokens.end(), merged) != v.tokens.end()) continue;
    v.merges.push_back(l + " " + r);
    v.tokens.push_back(merged);
    if (coin(rng) < 60) parts.push_back(merged);
  }
  v.tokens.push_back("<|endoftext|>");
  v.types.assign(v.tokens.size(), TokenType::kNormal);
  v.types.back() = TokenType::kControl;
  v.eos = static_cast<TokenId>(v.tokens.size()) - 1;
  return v;
}

TEST(TokenizerAlgorithms, BpeMatchesQuadraticReference) {
  std::mt19937 rng(7);
  const std::string chars = "abcd abcd  \n!1";
  std::uniform_int_distribution<size_t> pick(0, chars.size() - 1);
  std::uniform_int_distribution<int> len(0, 40);
  auto pre = PreTokenizer::Create("gpt-2");
  ASSERT_TRUE(pre.ok());
  for (int round = 0; round < 20; ++round) {
    const Vocab v = RandomBpeVocab(rng);
    auto tok = Tokenizer::Create(v);
    ASSERT_TRUE(tok.ok()) << tok.status();
    for (int i = 0; i < 50; ++i) {
      std::string text;
      for (int n = len(rng); n > 0; --n) text += chars[pick(rng)];
      const auto ids = (*tok)->Encode(text, true);
      ASSERT_EQ(ids, ReferenceBpe(v, **pre, text)) << "text: '" << text << "'";
      ASSERT_EQ((*tok)->Decode(ids), text);
      // The control token is matched whole and decodes to nothing.
      const auto with_eos = (*tok)->Encode(text + "<|endoftext|>", false);
      ASSERT_FALSE(with_eos.empty());
      EXPECT_EQ(with_eos.back(), v.eos);
      EXPECT_TRUE((*tok)->IsEog(v.eos));
    }
  }
}

}  // namespace
}  // namespace rocmforge
