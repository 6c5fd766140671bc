// Tokenizers read from GGUF metadata (tokenizer.ggml.*):
//   model "llama": SentencePiece BPE by piece scores, "▁" space prefix, byte
//                  fallback through <0xNN> pieces.
//   model "gpt2":  byte-level BPE with ranked merges and a pre-tokenizer regex
//                  chosen by tokenizer.ggml.pre (gpt-2, llama-bpe, qwen2, ...).
// Special/control tokens present in the text are matched whole (when
// parse_special is true) before the normal algorithm runs on the pieces between.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/gguf/gguf_file.h"

namespace rocmforge {

using TokenId = int32_t;

// tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4,
  kUnused = 5, kByte = 6,
};

// Everything a tokenizer needs, as stored in GGUF. Filled by VocabFromGguf or by
// tests directly.
struct Vocab {
  std::string model;                 // "llama" or "gpt2"
  std::string pre;                   // pre-tokenizer name ("default" if absent)
  std::vector<std::string> tokens;
  std::vector<float> scores;         // may be empty for gpt2
  std::vector<TokenType> types;      // may be empty -> all normal
  std::vector<std::string> merges;   // gpt2: "a b" in rank order
  TokenId bos = -1, eos = -1, unk = -1, pad = -1, eot = -1;
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = true;      // llama: prepend "▁" to the text
  std::string chat_template;         // tokenizer.chat_template, may be empty
};

absl::StatusOr<Vocab> VocabFromGguf(const gguf::GgufFile& file);

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Builds the tokenizer named by vocab.model; InvalidArgument for an unknown
  // model or pre-tokenizer, or an inconsistent vocab.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(Vocab vocab);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromGguf(const gguf::GgufFile& file);

  // add_bos: prepend BOS when the vocab says so (vocab().add_bos), and append
  // EOS when vocab().add_eos. parse_special: recognise control tokens like
  // "<|im_start|>" written in the text (user-defined tokens always are).
  virtual std::vector<TokenId> Encode(std::string_view text, bool add_bos,
                                      bool parse_special = true) const = 0;

  // Raw bytes of one token as it contributes to the output (byte tokens become
  // their byte, "▁" becomes " ", gpt2 byte-level chars map back to bytes).
  // Control tokens (BOS/EOS...) give "" unless render_special.
  virtual std::string TokenBytes(TokenId id, bool render_special = false) const;

  // Whole-sequence decode (drops the single leading space SentencePiece adds
  // after BOS/at start when skip_leading_space).
  std::string Decode(const std::vector<TokenId>& ids, bool skip_leading_space = true) const;

  const Vocab& vocab() const { return vocab_; }
  int32_t vocab_size() const { return static_cast<int32_t>(vocab_.tokens.size()); }
  bool IsEog(TokenId id) const;  // EOS, EOT or another end-of-generation token
  // Token id of an exact piece string, or -1.
  TokenId Find(std::string_view piece) const;

 protected:
  explicit Tokenizer(Vocab vocab);

  // Fills the table behind TokenBytes(id, /*render_special=*/false) with
  // piece_bytes(id) for every token; each implementation calls it once from
  // its constructor with its own piece-to-bytes rule.
  void BuildTokenBytes(const std::function<std::string(TokenId)>& piece_bytes);
  // The BOS that Encode(text, add_bos) starts with (when the vocab adds one)
  // and the EOS it ends with, shared by every implementation's Encode.
  void AppendBosIfAdded(bool add_bos, std::vector<TokenId>* out) const;
  void AppendEosIfAdded(bool add_bos, std::vector<TokenId>* out) const;

  Vocab vocab_;
  std::vector<TokenId> eog_ids_;
  // Lookup tables derived from vocab_ (piece -> id, special tokens); defined
  // in tokenizer_internal.h so this header stays free of implementation types.
  struct Index;
  std::shared_ptr<const Index> index_;

 private:
  std::vector<std::string> token_bytes_;  // TokenBytes(id, false) of every token
};

// Turns a stream of token ids into text pieces that are always complete UTF-8:
// bytes of a partial multi-byte character are held back until it completes.
// Handles the SentencePiece leading space the same way Decode() does.
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(const Tokenizer& tok, bool skip_leading_space = true);
  // Returns the newly completed text (possibly empty).
  std::string Push(TokenId id);
  // Whatever is still held back (invalid sequences become U+FFFD).
  std::string Flush();

 private:
  const Tokenizer& tok_;
  bool skip_leading_space_;
  bool first_ = true;
  std::string pending_;
};

}  // namespace rocmforge
