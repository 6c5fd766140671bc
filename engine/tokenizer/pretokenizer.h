// Pre-tokenizers of byte-level BPE vocabs: the regex that cuts text into words
// before merges run, chosen by tokenizer.ggml.pre. The patterns are the ones in
// the models' Hugging Face tokenizer.json files, run with PCRE2 in UTF mode with
// Unicode properties (\p{L}, \p{N}, Unicode \s) and look-ahead.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace rocmforge {

class PreTokenizer {
 public:
  // Known names: "default", "gpt-2", "gpt2" (GPT-2 regex); "llama-bpe",
  // "llama3", "llama-v3" (Llama 3 regex); "qwen2", "deepseek-r1-qwen" (Qwen2
  // regex). Anything else is InvalidArgument naming the supported ones.
  static absl::StatusOr<std::unique_ptr<PreTokenizer>> Create(std::string_view pre);
  // A pattern given directly (tests use it).
  static absl::StatusOr<std::unique_ptr<PreTokenizer>> FromPattern(std::string_view pattern);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // The words of `text`, in order, covering every byte: matches of the pattern
  // and, between them, any unmatched stretch (e.g. invalid UTF-8) as its own word.
  // Safe to call from several threads at once.
  std::vector<std::string_view> Split(std::string_view text) const;

  // The pattern in use.
  const std::string& pattern() const { return pattern_; }
  // Llama 3 vocabs emit a whole word that is itself a token without merging
  // (Hugging Face "ignore_merges").
  bool ignore_merges() const { return ignore_merges_; }

 private:
  PreTokenizer() = default;
  std::string pattern_;
  bool ignore_merges_ = false;
  void* code_ = nullptr;  // pcre2_code_8*
};

}  // namespace rocmforge
