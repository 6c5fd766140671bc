#include "engine/tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "absl/strings/str_cat.h"

namespace rocmforge {
namespace {

constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

pcre2_code* Code(void* p) { return static_cast<pcre2_code*>(p); }

}  // namespace

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::Create(std::string_view pre) {
  std::string_view pattern;
  bool ignore_merges = false;
  if (pre.empty() || pre == "default" || pre == "gpt-2" || pre == "gpt2") {
    pattern = kGpt2Pattern;
  } else if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
    pattern = kLlama3Pattern;
    ignore_merges = true;
  } else if (pre == "qwen2" || pre == "deepseek-r1-qwen") {
    pattern = kQwen2Pattern;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unsupported pre-tokenizer tokenizer.ggml.pre=\"", std::string(pre),
        "\" (supported: default, gpt-2, llama-bpe, llama3, qwen2)"));
  }
  auto result = FromPattern(pattern);
  if (result.ok()) (*result)->ignore_merges_ = ignore_merges;
  return result;
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::FromPattern(std::string_view pattern) {
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  // MATCH_INVALID_UTF: invalid UTF-8 in the text is never matched instead of
  // failing the whole match; Split() hands it on as a word of its own.
  pcre2_code* code = pcre2_compile(
      reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
      PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &err_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    return absl::InvalidArgumentError(absl::StrCat("pre-tokenizer regex does not compile at offset ",
                                                   err_offset, ": ", reinterpret_cast<char*>(msg)));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back to the interpreter
  std::unique_ptr<PreTokenizer> p(new PreTokenizer());
  p->pattern_ = std::string(pattern);
  p->code_ = code;
  return p;
}

PreTokenizer::~PreTokenizer() { pcre2_code_free(Code(code_)); }

std::vector<std::string_view> PreTokenizer::Split(std::string_view text) const {
  std::vector<std::string_view> words;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(Code(code_), nullptr);
  if (md == nullptr) {  // out of memory: keep the text whole rather than lose it
    if (!text.empty()) words.push_back(text);
    return words;
  }
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    const int rc = pcre2_match(Code(code_), subject, text.size(), pos, 0, md, nullptr);
    if (rc < 0) break;  // no further match (or a matcher limit): the rest is one word
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t start = ov[0], end = ov[1];
    if (start > pos) words.push_back(text.substr(pos, start - pos));
    if (end == start) {
      // An empty match cannot happen with these patterns, but a caller's own
      // pattern might: step over one byte so the loop always advances.
      end = start + 1;
      if (start >= pos && end <= text.size()) words.push_back(text.substr(start, 1));
    } else {
      words.push_back(text.substr(start, end - start));
    }
    pos = end;
  }
  if (pos < text.size()) words.push_back(text.substr(pos));
  pcre2_match_data_free(md);
  return words;
}

}  // namespace rocmforge
