// "llama" tokenizer: SentencePiece BPE driven by piece scores, with byte
// fallback, reproducing llama.cpp's llm_tokenizer_spm.
//
// Algorithm: the text (spaces escaped to "▁", one "▁" prepended) is split into
// UTF-8 characters; repeatedly the adjacent pair whose concatenation is a
// vocab piece with the highest score is merged (ties: leftmost). Each final
// symbol is its piece's id, or its bytes as <0xNN> tokens when it is no piece.
#include <array>
#include <cstdio>
#include <queue>
#include <utility>
#include <vector>

#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/tokenizer_internal.h"

namespace rocmforge {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // "▁"

// Character length by lead byte, as llama.cpp's unicode_len_utf8 computes it:
// invalid bytes simply count as one (or more) bytes; nothing is rejected.
size_t CharLen(char c) {
  static constexpr size_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[static_cast<uint8_t>(c) >> 4];
}

struct Symbol {
  int prev = -1;
  int next = -1;
  size_t offset = 0;  // into the escaped text
  size_t n = 0;       // bytes; 0 once merged into the left neighbour
};

struct Bigram {
  int left = 0;
  int right = 0;
  float score = 0;
  size_t size = 0;  // bytes of the concatenation when it was queued
};

// Highest score first; on equal scores the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

class SpmTokenizer final : public Tokenizer {
 public:
  explicit SpmTokenizer(Vocab vocab) : Tokenizer(std::move(vocab)) {
    for (int b = 0; b < 256; ++b) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "<0x%02X>", b);
      TokenId id = Find(hex);
      if (id < 0) id = Find(std::string(1, static_cast<char>(b)));
      if (id < 0) id = vocab_.unk;
      byte_token_[static_cast<size_t>(b)] = id;
    }
    BuildTokenBytes([this](TokenId id) { return PieceBytes(id); });
  }

  std::vector<TokenId> Encode(std::string_view text, bool add_bos,
                              bool parse_special) const override {
    std::vector<TokenId> out;
    AppendBosIfAdded(add_bos, &out);
    // Like llama.cpp: raw text at the start or right after a special token
    // gets the space prefix.
    bool prev_special = true;
    for (const Fragment& f : SplitSpecial(
             text, vocab_, parse_special ? index_->specials_parse : index_->specials_always)) {
      if (f.token >= 0) {
        out.push_back(f.token);
        prev_special = true;
        continue;
      }
      std::string escaped;
      escaped.reserve(f.text.size() * 3 + 3);
      if (vocab_.add_space_prefix && prev_special) escaped += kSpaceMarker;
      for (char c : f.text) {
        if (c == ' ') {
          escaped += kSpaceMarker;
        } else {
          escaped += c;
        }
      }
      EncodeEscaped(escaped, &out);
      prev_special = false;
    }
    AppendEosIfAdded(add_bos, &out);
    return out;
  }

 private:
  // Output bytes of a piece when special tokens are not rendered.
  std::string PieceBytes(TokenId id) const {
    const std::string& piece = vocab_.tokens[static_cast<size_t>(id)];
    switch (TypeOf(vocab_, id)) {
      case TokenType::kNormal:
      case TokenType::kUserDefined:
      case TokenType::kUndefined: {
        std::string s;
        for (size_t i = 0; i < piece.size();) {
          if (std::string_view(piece).substr(i).starts_with(kSpaceMarker)) {
            s += ' ';
            i += kSpaceMarker.size();
          } else {
            s += piece[i++];
          }
        }
        return s;
      }
      case TokenType::kByte: {
        unsigned v = 0;
        char tail = 0;
        if (piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%2X%c", &v, &tail) == 2 &&
            tail == '>') {
          return std::string(1, static_cast<char>(v));
        }
        return piece.size() == 1 ? piece : std::string();
      }
      default:  // control, unknown, unused: nothing unless rendered
        return {};
    }
  }

  void EncodeEscaped(const std::string& text, std::vector<TokenId>* out) const {
    std::vector<Symbol> symbols;
    for (size_t off = 0; off < text.size();) {
      Symbol s;
      s.offset = off;
      s.n = std::min(CharLen(text[off]), text.size() - off);
      off += s.n;
      s.prev = static_cast<int>(symbols.size()) - 1;
      s.next = off == text.size() ? -1 : static_cast<int>(symbols.size()) + 1;
      symbols.push_back(s);
    }
    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    auto try_add = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      const std::string_view joined = std::string_view(text).substr(
          symbols[static_cast<size_t>(left)].offset,
          symbols[static_cast<size_t>(left)].n + symbols[static_cast<size_t>(right)].n);
      const TokenId id = Find(joined);
      if (id < 0) return;
      const float score = vocab_.scores.empty() ? 0.0f : vocab_.scores[static_cast<size_t>(id)];
      queue.push({left, right, score, joined.size()});
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

    while (!queue.empty()) {
      const Bigram b = queue.top();
      queue.pop();
      Symbol& l = symbols[static_cast<size_t>(b.left)];
      Symbol& r = symbols[static_cast<size_t>(b.right)];
      // Stale entry: one side was merged away or has grown since.
      if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) symbols[static_cast<size_t>(r.next)].prev = b.left;
      try_add(l.prev, b.left);
      try_add(b.left, l.next);
    }

    for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[static_cast<size_t>(i)].next) {
      const Symbol& s = symbols[static_cast<size_t>(i)];
      const std::string_view piece = std::string_view(text).substr(s.offset, s.n);
      const TokenId id = Find(piece);
      if (id >= 0) {
        out->push_back(id);
        continue;
      }
      for (char c : piece) {  // byte fallback
        const TokenId b = byte_token_[static_cast<uint8_t>(c)];
        if (b >= 0) out->push_back(b);
      }
    }
  }

  std::array<TokenId, 256> byte_token_{};
};

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> NewSpmTokenizer(Vocab vocab) {
  return std::unique_ptr<Tokenizer>(new SpmTokenizer(std::move(vocab)));
}

}  // namespace rocmforge
