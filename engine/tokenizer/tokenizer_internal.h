// Pieces shared by the tokenizer implementations (not part of the public API).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"

namespace rocmforge {

// Lets unordered_map<std::string, ...> be searched with a string_view.
struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using PieceMap = std::unordered_map<std::string, TokenId, StringViewHash, std::equal_to<>>;

struct Tokenizer::Index {
  PieceMap piece_to_id;  // the last id wins for duplicate pieces, as in llama.cpp
  // Tokens matched whole in the text before the normal algorithm runs, longest
  // first: control + user-defined + unknown when parse_special, otherwise only
  // user-defined (Hugging Face's "added tokens" that are not special).
  std::vector<TokenId> specials_parse;
  std::vector<TokenId> specials_always;
};

// Type of a token; all tokens are normal when the vocab has no types.
inline TokenType TypeOf(const Vocab& v, TokenId id) {
  return v.types.empty() ? TokenType::kNormal : v.types[static_cast<size_t>(id)];
}

// Checks everything Create() relies on: non-empty tokens, scores/types sizes,
// known type values, special ids inside the vocab, parseable merges.
absl::Status ValidateVocab(const Vocab& v);

// A piece of input text: either raw text for the normal algorithm, or one
// special token matched whole.
struct Fragment {
  TokenId token = -1;     // >= 0: a special token
  std::string_view text;  // raw text when token < 0 (never empty)
};

// Splits `text` at every occurrence of the given special tokens, trying longer
// tokens first (llama.cpp's tokenizer_st_partition).
std::vector<Fragment> SplitSpecial(std::string_view text, const Vocab& vocab,
                                   const std::vector<TokenId>& specials);

// Factories of the two implementations; `vocab` is already validated.
absl::StatusOr<std::unique_ptr<Tokenizer>> NewSpmTokenizer(Vocab vocab);
absl::StatusOr<std::unique_ptr<Tokenizer>> NewBpeTokenizer(Vocab vocab);

// Whether the SentencePiece space prefix of token `id` should be dropped when
// it starts the decoded text (a normal "▁..." piece of a 'llama' vocab that
// adds the prefix).
bool HasDroppableSpacePrefix(const Vocab& vocab, TokenId id);

}  // namespace rocmforge
