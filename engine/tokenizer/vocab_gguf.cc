// VocabFromGguf: the tokenizer.ggml.* metadata of a GGUF file as a Vocab.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/tokenizer_internal.h"

namespace rocmforge {
namespace {

// Errors name the file once (the reader's typed getters may already have).
absl::Status Prefixed(const gguf::GgufFile& file, const absl::Status& s) {
  if (absl::StartsWith(s.message(), file.path())) return s;
  return absl::Status(s.code(), absl::StrCat(file.path(), ": ", s.message()));
}

// A special token id; -1 when absent. Out-of-range ids are an error because a
// model that names a token it does not have cannot be run correctly.
absl::StatusOr<TokenId> SpecialId(const gguf::GgufFile& file, std::string_view key, size_t n,
                                  int64_t dflt = -1) {
  if (dflt >= static_cast<int64_t>(n)) dflt = -1;
  RF_ASSIGN_OR_RETURN(int64_t v, file.GetIntOr(key, dflt));
  if (v == -1) return -1;
  if (v < 0 || v >= static_cast<int64_t>(n)) {
    return absl::InvalidArgumentError(
        absl::StrCat("key ", std::string(key), " = ", v, " is outside the vocab of ", n, " tokens"));
  }
  return static_cast<TokenId>(v);
}

absl::StatusOr<Vocab> ReadVocab(const gguf::GgufFile& file) {
  Vocab v;
  if (file.Find("tokenizer.ggml.model") == nullptr) {
    return absl::NotFoundError("no tokenizer in the file (key tokenizer.ggml.model is missing)");
  }
  RF_ASSIGN_OR_RETURN(v.model, file.GetString("tokenizer.ggml.model"));
  if (v.model != "llama" && v.model != "gpt2") {
    return absl::InvalidArgumentError(absl::StrCat(
        "unsupported tokenizer.ggml.model \"", v.model, "\" (supported: llama, gpt2)"));
  }
  RF_ASSIGN_OR_RETURN(v.pre, file.GetStringOr("tokenizer.ggml.pre", "default"));
  if (file.Find("tokenizer.ggml.tokens") == nullptr) {
    return absl::NotFoundError("key tokenizer.ggml.tokens is missing: the file has no vocabulary");
  }
  RF_ASSIGN_OR_RETURN(v.tokens, file.GetStringArray("tokenizer.ggml.tokens"));
  const size_t n = v.tokens.size();
  if (n == 0) return absl::InvalidArgumentError("tokenizer.ggml.tokens is empty");
  if (n > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.ggml.tokens has ", n, " entries"));
  }

  if (file.Find("tokenizer.ggml.scores") != nullptr) {
    RF_ASSIGN_OR_RETURN(v.scores, file.GetFloatArray("tokenizer.ggml.scores"));
    if (v.scores.size() != n) {
      return absl::InvalidArgumentError(absl::StrCat("tokenizer.ggml.scores has ", v.scores.size(),
                                                     " entries but there are ", n, " tokens"));
    }
  }
  if (file.Find("tokenizer.ggml.token_type") != nullptr) {
    RF_ASSIGN_OR_RETURN(std::vector<int64_t> types, file.GetIntArray("tokenizer.ggml.token_type"));
    if (types.size() != n) {
      return absl::InvalidArgumentError(absl::StrCat("tokenizer.ggml.token_type has ", types.size(),
                                                     " entries but there are ", n, " tokens"));
    }
    v.types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (types[i] < 0 || types[i] > static_cast<int64_t>(TokenType::kByte)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tokenizer.ggml.token_type[", i, "] = ", types[i], " is not a token type (0..6)"));
      }
      v.types.push_back(static_cast<TokenType>(types[i]));
    }
  }
  if (file.Find("tokenizer.ggml.merges") != nullptr) {
    RF_ASSIGN_OR_RETURN(v.merges, file.GetStringArray("tokenizer.ggml.merges"));
  } else if (v.model == "gpt2") {
    return absl::NotFoundError("gpt2 tokenizer without tokenizer.ggml.merges");
  }

  // SentencePiece vocabs without the keys use <unk>=0, <s>=1, </s>=2 (llama.cpp too).
  const bool spm = v.model == "llama";
  RF_ASSIGN_OR_RETURN(v.bos, SpecialId(file, "tokenizer.ggml.bos_token_id", n, spm ? 1 : -1));
  RF_ASSIGN_OR_RETURN(v.eos, SpecialId(file, "tokenizer.ggml.eos_token_id", n, spm ? 2 : -1));
  RF_ASSIGN_OR_RETURN(v.unk, SpecialId(file, "tokenizer.ggml.unknown_token_id", n, spm ? 0 : -1));
  RF_ASSIGN_OR_RETURN(v.pad, SpecialId(file, "tokenizer.ggml.padding_token_id", n));
  RF_ASSIGN_OR_RETURN(v.eot, SpecialId(file, "tokenizer.ggml.eot_token_id", n));

  // Defaults as llama.cpp: SentencePiece and Llama 3 vocabs add BOS, others not.
  const bool llama3 = v.pre == "llama-bpe" || v.pre == "llama3" || v.pre == "llama-v3";
  RF_ASSIGN_OR_RETURN(v.add_bos,
                      file.GetBoolOr("tokenizer.ggml.add_bos_token", v.model == "llama" || llama3));
  RF_ASSIGN_OR_RETURN(v.add_eos, file.GetBoolOr("tokenizer.ggml.add_eos_token", false));
  RF_ASSIGN_OR_RETURN(v.add_space_prefix,
                      file.GetBoolOr("tokenizer.ggml.add_space_prefix", v.model == "llama"));
  RF_ASSIGN_OR_RETURN(v.chat_template, file.GetStringOr("tokenizer.chat_template", ""));
  RF_RETURN_IF_ERROR(ValidateVocab(v));
  return v;
}

}  // namespace

absl::StatusOr<Vocab> VocabFromGguf(const gguf::GgufFile& file) {
  absl::StatusOr<Vocab> v = ReadVocab(file);
  if (!v.ok()) return Prefixed(file, v.status());
  return v;
}

}  // namespace rocmforge
