// "gpt2" tokenizer: byte-level BPE with ranked merges, reproducing llama.cpp's
// llm_tokenizer_bpe (and Hugging Face's ByteLevel BPE).
//
// Algorithm: special tokens are cut out first; the pre-tokenizer regex splits
// the rest into words; each word's bytes become GPT-2 byte-level characters;
// then, repeatedly, the adjacent pair with the lowest merge rank is merged
// (ties: leftmost). Each final symbol is looked up in the vocab.
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/pretokenizer.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/tokenizer_internal.h"
#include "engine/tokenizer/utf8.h"

namespace rocmforge {
namespace {

struct Symbol {
  int prev = -1;
  int next = -1;
  size_t offset = 0;
  size_t n = 0;  // 0 once merged into the left neighbour
};

struct Bigram {
  int left = 0;
  int right = 0;
  int rank = 0;
  size_t size = 0;
};

// Lowest rank first; on equal ranks the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

class BpeTokenizer final : public Tokenizer {
 public:
  BpeTokenizer(Vocab vocab, std::unique_ptr<PreTokenizer> pre)
      : Tokenizer(std::move(vocab)), pre_(std::move(pre)) {
    // Key "left right" is the merge line itself; byte-level pieces never hold
    // a plain space, so the key is unambiguous.
    merge_rank_.reserve(vocab_.merges.size());
    for (size_t i = 0; i < vocab_.merges.size(); ++i) {
      merge_rank_.emplace(vocab_.merges[i], static_cast<TokenId>(i));  // first rank wins
    }
    BuildTokenBytes([this](TokenId id) { return PieceBytes(id); });
  }

  std::vector<TokenId> Encode(std::string_view text, bool add_bos,
                              bool parse_special) const override {
    std::vector<TokenId> out;
    AppendBosIfAdded(add_bos, &out);
    std::string word;
    for (const Fragment& f : SplitSpecial(
             text, vocab_, parse_special ? index_->specials_parse : index_->specials_always)) {
      if (f.token >= 0) {
        out.push_back(f.token);
        continue;
      }
      for (std::string_view raw : pre_->Split(f.text)) {
        word.clear();
        byte_level::Encode(raw, &word);
        EncodeWord(word, &out);
      }
    }
    AppendEosIfAdded(add_bos, &out);
    return out;
  }

 private:
  std::string PieceBytes(TokenId id) const {
    const std::string& piece = vocab_.tokens[static_cast<size_t>(id)];
    switch (TypeOf(vocab_, id)) {
      case TokenType::kNormal:
      case TokenType::kUndefined:
      case TokenType::kByte:
        return byte_level::Decode(piece);
      case TokenType::kUserDefined:  // added tokens are stored as plain text
        return piece;
      default:
        return {};
    }
  }

  int Rank(std::string_view left, std::string_view right, std::string* key) const {
    key->assign(left);
    key->push_back(' ');
    key->append(right);
    auto it = merge_rank_.find(*key);
    return it == merge_rank_.end() ? -1 : it->second;
  }

  void EncodeWord(const std::string& word, std::vector<TokenId>* out) const {
    if (word.empty()) return;
    if (pre_->ignore_merges()) {
      if (TokenId id = Find(word); id >= 0) {
        out->push_back(id);
        return;
      }
    }
    // Symbols are the word's characters (valid UTF-8 by construction).
    std::vector<Symbol> symbols;
    for (size_t off = 0; off < word.size();) {
      Symbol s;
      s.offset = off;
      s.n = std::min(utf8::SequenceLength(static_cast<uint8_t>(word[off])), word.size() - off);
      off += s.n;
      s.prev = static_cast<int>(symbols.size()) - 1;
      s.next = off == word.size() ? -1 : static_cast<int>(symbols.size()) + 1;
      symbols.push_back(s);
    }
    auto text_of = [&](int i) {
      const Symbol& s = symbols[static_cast<size_t>(i)];
      return std::string_view(word).substr(s.offset, s.n);
    };
    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    std::string key;
    auto try_add = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      const int rank = Rank(text_of(left), text_of(right), &key);
      if (rank < 0) return;
      queue.push({left, right, rank, text_of(left).size() + text_of(right).size()});
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

    while (!queue.empty()) {
      const Bigram b = queue.top();
      queue.pop();
      Symbol& l = symbols[static_cast<size_t>(b.left)];
      Symbol& r = symbols[static_cast<size_t>(b.right)];
      if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // stale
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) symbols[static_cast<size_t>(r.next)].prev = b.left;
      try_add(l.prev, b.left);
      try_add(b.left, l.next);
    }

    for (int i = 0; i != -1; i = symbols[static_cast<size_t>(i)].next) {
      const std::string_view piece = text_of(i);
      if (TokenId id = Find(piece); id >= 0) {
        out->push_back(id);
        continue;
      }
      // A merge result missing from the vocab: fall back to its characters.
      for (size_t off = 0; off < piece.size();) {
        const size_t n = std::min(utf8::SequenceLength(static_cast<uint8_t>(piece[off])),
                                  piece.size() - off);
        if (TokenId id = Find(piece.substr(off, n)); id >= 0) {
          out->push_back(id);
        } else if (vocab_.unk >= 0) {
          out->push_back(vocab_.unk);
        }
        off += n;
      }
    }
  }

  std::unique_ptr<PreTokenizer> pre_;
  PieceMap merge_rank_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> NewBpeTokenizer(Vocab vocab) {
  absl::StatusOr<std::unique_ptr<PreTokenizer>> pre = PreTokenizer::Create(vocab.pre);
  if (!pre.ok()) return pre.status();
  return std::unique_ptr<Tokenizer>(new BpeTokenizer(std::move(vocab), *std::move(pre)));
}

}  // namespace rocmforge
