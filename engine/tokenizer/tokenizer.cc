// The model-independent part of Tokenizer: construction, lookup tables,
// end-of-generation ids and whole-sequence decoding.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/tokenizer_internal.h"
#include "engine/tokenizer/utf8.h"

namespace rocmforge {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // "▁"

// Control tokens that end a turn in common chat formats (llama.cpp treats the
// same spellings as end-of-generation).
constexpr std::string_view kEogPieces[] = {
    "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
    "<|endoftext|>", "<|end_of_text|>", "<EOT>", "<|return|>",
};

std::vector<TokenId> SpecialsLongestFirst(const Vocab& v, bool include_control) {
  std::vector<TokenId> ids;
  for (TokenId id = 0; id < static_cast<TokenId>(v.tokens.size()); ++id) {
    if (v.tokens[static_cast<size_t>(id)].empty()) continue;
    const TokenType t = TypeOf(v, id);
    if (t == TokenType::kUserDefined ||
        (include_control && (t == TokenType::kControl || t == TokenType::kUnknown))) {
      ids.push_back(id);
    }
  }
  std::stable_sort(ids.begin(), ids.end(), [&v](TokenId a, TokenId b) {
    return v.tokens[static_cast<size_t>(a)].size() > v.tokens[static_cast<size_t>(b)].size();
  });
  return ids;
}

}  // namespace

absl::Status ValidateVocab(const Vocab& v) {
  const size_t n = v.tokens.size();
  if (n == 0) return absl::InvalidArgumentError("tokenizer vocab has no tokens");
  if (n > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer vocab too large: ", n, " tokens"));
  }
  if (!v.scores.empty() && v.scores.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer has ", n, " tokens but ", v.scores.size(), " scores; the counts must agree"));
  }
  if (!v.types.empty() && v.types.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer has ", n, " tokens but ", v.types.size(), " token types; the counts must agree"));
  }
  for (size_t i = 0; i < v.types.size(); ++i) {
    const auto t = static_cast<int32_t>(v.types[i]);
    if (t < 0 || t > static_cast<int32_t>(TokenType::kByte)) {
      return absl::InvalidArgumentError(
          absl::StrCat("token ", i, " has unknown token type ", t, " (expected 0..6)"));
    }
  }
  const std::pair<const char*, TokenId> specials[] = {
      {"bos", v.bos}, {"eos", v.eos}, {"unk", v.unk}, {"pad", v.pad}, {"eot", v.eot}};
  for (const auto& [name, id] : specials) {
    if (id < -1 || id >= static_cast<TokenId>(n)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tokenizer ", name, " token id ", id, " is outside the vocab of ", n, " tokens"));
    }
  }
  for (size_t i = 0; i < v.merges.size(); ++i) {
    const std::string& m = v.merges[i];
    if (m.size() < 3 || m.find(' ', 1) == std::string::npos || m.find(' ', 1) + 1 >= m.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tokenizer merge ", i, " is \"", m.substr(0, 64), "\"; expected \"left right\""));
    }
  }
  return absl::OkStatus();
}

bool HasDroppableSpacePrefix(const Vocab& vocab, TokenId id) {
  if (vocab.model != "llama" || !vocab.add_space_prefix) return false;
  const TokenType t = TypeOf(vocab, id);
  if (t != TokenType::kNormal && t != TokenType::kUserDefined && t != TokenType::kUndefined) {
    return false;
  }
  return std::string_view(vocab.tokens[static_cast<size_t>(id)]).starts_with(kSpaceMarker);
}

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
  auto index = std::make_shared<Index>();
  index->piece_to_id.reserve(vocab_.tokens.size());
  for (TokenId id = 0; id < static_cast<TokenId>(vocab_.tokens.size()); ++id) {
    index->piece_to_id[vocab_.tokens[static_cast<size_t>(id)]] = id;
  }
  index->specials_parse = SpecialsLongestFirst(vocab_, /*include_control=*/true);
  index->specials_always = SpecialsLongestFirst(vocab_, /*include_control=*/false);
  index_ = std::move(index);

  auto add_eog = [this](TokenId id) {
    if (id >= 0 && std::find(eog_ids_.begin(), eog_ids_.end(), id) == eog_ids_.end()) {
      eog_ids_.push_back(id);
    }
  };
  add_eog(vocab_.eos);
  add_eog(vocab_.eot);
  for (std::string_view piece : kEogPieces) {
    const TokenId id = Find(piece);
    if (id >= 0 && TypeOf(vocab_, id) == TokenType::kControl) add_eog(id);
  }
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Create(Vocab vocab) {
  if (absl::Status s = ValidateVocab(vocab); !s.ok()) return s;
  if (vocab.model == "llama") return NewSpmTokenizer(std::move(vocab));
  if (vocab.model == "gpt2") return NewBpeTokenizer(std::move(vocab));
  return absl::InvalidArgumentError(absl::StrCat(
      "unsupported tokenizer model \"", vocab.model, "\" (supported: llama, gpt2)"));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const gguf::GgufFile& file) {
  absl::StatusOr<Vocab> vocab = VocabFromGguf(file);
  if (!vocab.ok()) return vocab.status();
  return Create(*std::move(vocab));
}

void Tokenizer::BuildTokenBytes(const std::function<std::string(TokenId)>& piece_bytes) {
  token_bytes_.resize(vocab_.tokens.size());
  for (TokenId id = 0; id < vocab_size(); ++id) token_bytes_[static_cast<size_t>(id)] = piece_bytes(id);
}

void Tokenizer::AppendBosIfAdded(bool add_bos, std::vector<TokenId>* out) const {
  if (add_bos && vocab_.add_bos && vocab_.bos >= 0) out->push_back(vocab_.bos);
}

void Tokenizer::AppendEosIfAdded(bool add_bos, std::vector<TokenId>* out) const {
  if (add_bos && vocab_.add_eos && vocab_.eos >= 0) out->push_back(vocab_.eos);
}

std::string Tokenizer::TokenBytes(TokenId id, bool render_special) const {
  if (id < 0 || id >= vocab_size()) return {};
  const TokenType t = TypeOf(vocab_, id);
  if (render_special && (t == TokenType::kControl || t == TokenType::kUnknown ||
                         t == TokenType::kUnused)) {
    return vocab_.tokens[static_cast<size_t>(id)];
  }
  return token_bytes_[static_cast<size_t>(id)];
}

std::string Tokenizer::Decode(const std::vector<TokenId>& ids, bool skip_leading_space) const {
  std::string bytes;
  bool first = true;
  for (TokenId id : ids) {
    std::string piece = TokenBytes(id);
    if (piece.empty()) continue;
    if (first && skip_leading_space && piece[0] == ' ' && HasDroppableSpacePrefix(vocab_, id)) {
      piece.erase(0, 1);
    }
    first = false;
    bytes += piece;
  }
  std::string out;
  out.reserve(bytes.size());
  utf8::AppendValid(bytes, /*final=*/true, &out);
  return out;
}

bool Tokenizer::IsEog(TokenId id) const {
  return std::find(eog_ids_.begin(), eog_ids_.end(), id) != eog_ids_.end();
}

TokenId Tokenizer::Find(std::string_view piece) const {
  auto it = index_->piece_to_id.find(piece);
  return it == index_->piece_to_id.end() ? -1 : it->second;
}

std::vector<Fragment> SplitSpecial(std::string_view text, const Vocab& vocab,
                                   const std::vector<TokenId>& specials) {
  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({-1, text});
  std::vector<Fragment> next;
  for (TokenId id : specials) {
    const std::string& piece = vocab.tokens[static_cast<size_t>(id)];
    bool any = false;
    for (const Fragment& f : frags) {
      if (f.token < 0 && f.text.find(piece) != std::string_view::npos) {
        any = true;
        break;
      }
    }
    if (!any) continue;
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      std::string_view rest = f.text;
      for (size_t p; (p = rest.find(piece)) != std::string_view::npos;) {
        if (p > 0) next.push_back({-1, rest.substr(0, p)});
        next.push_back({id, {}});
        rest.remove_prefix(p + piece.size());
      }
      if (!rest.empty()) next.push_back({-1, rest});
    }
    frags.swap(next);
  }
  return frags;
}

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tok, bool skip_leading_space)
    : tok_(tok), skip_leading_space_(skip_leading_space) {}

std::string IncrementalDecoder::Push(TokenId id) {
  std::string piece = tok_.TokenBytes(id);
  if (piece.empty()) return {};
  if (first_ && skip_leading_space_ && piece[0] == ' ' &&
      HasDroppableSpacePrefix(tok_.vocab(), id)) {
    piece.erase(0, 1);
  }
  first_ = false;
  pending_ += piece;
  std::string out;
  const size_t used = utf8::AppendValid(pending_, /*final=*/false, &out);
  pending_.erase(0, used);
  return out;
}

std::string IncrementalDecoder::Flush() {
  std::string out;
  utf8::AppendValid(pending_, /*final=*/true, &out);
  pending_.clear();
  return out;
}

}  // namespace rocmforge
