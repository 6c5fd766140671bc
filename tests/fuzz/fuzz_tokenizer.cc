// libFuzzer target for the tokenizers, built once from both real models.
//
// Input: first byte = flags (bit 0 add_bos, bit 1 parse_special), the rest is
// the text. Checks, for each model:
//   - every id Encode returns lies inside the vocab;
//   - Decode(ids) is valid UTF-8 and equals the IncrementalDecoder stream;
//   - decode(encode(x)) == x when x is valid UTF-8 and the model guarantees a
//     round trip: no special tokens parsed, and for SentencePiece no "▁"
//     (U+2581) in the text (it is the escaped space and decodes to " ");
//   - the input read as raw int32 ids decodes without crashing to valid UTF-8;
//   - chat rendering of the text as messages does not crash.
// Models come from $ROCMFORGE_MODELS_DIR, else the directory compiled in.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/utf8.h"

#ifndef ROCMFORGE_MODELS_DIR
#define ROCMFORGE_MODELS_DIR "models"
#endif

namespace {

using rocmforge::TokenId;
using rocmforge::Tokenizer;

std::vector<std::unique_ptr<Tokenizer>> LoadTokenizers() {
  const char* env = std::getenv("ROCMFORGE_MODELS_DIR");
  const std::string dir = env != nullptr ? env : ROCMFORGE_MODELS_DIR;
  std::vector<std::unique_ptr<Tokenizer>> out;
  for (const char* name : {"tiny-llama-spm-f16.gguf", "tiny-qwen2-bpe-f16.gguf"}) {
    auto file = rocmforge::gguf::GgufFile::Open(dir + "/" + name);
    if (!file.ok()) {
      std::fprintf(stderr, "fuzz_tokenizer: %s (set ROCMFORGE_MODELS_DIR)\n",
                   std::string(file.status().message()).c_str());
      std::abort();
    }
    auto tok = Tokenizer::FromGguf(**file);
    if (!tok.ok()) {
      std::fprintf(stderr, "fuzz_tokenizer: %s\n", std::string(tok.status().message()).c_str());
      std::abort();
    }
    out.push_back(*std::move(tok));
  }
  return out;
}

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_tokenizer: check failed: %s\n", what);
    std::abort();
  }
}

std::string Stream(const Tokenizer& tok, const std::vector<TokenId>& ids) {
  rocmforge::IncrementalDecoder dec(tok);
  std::string all;
  for (TokenId id : ids) {
    const std::string piece = dec.Push(id);
    Check(rocmforge::utf8::IsValid(piece), "incremental piece is valid UTF-8");
    all += piece;
  }
  return all + dec.Flush();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::unique_ptr<Tokenizer>> toks = LoadTokenizers();
  if (size == 0) return 0;
  const bool add_bos = data[0] & 1, parse_special = data[0] & 2;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const bool valid = rocmforge::utf8::IsValid(text);

  for (const auto& tok : toks) {
    const std::vector<TokenId> ids = tok->Encode(text, add_bos, parse_special);
    for (TokenId id : ids) Check(id >= 0 && id < tok->vocab_size(), "id inside the vocab");
    const std::string decoded = tok->Decode(ids);
    Check(rocmforge::utf8::IsValid(decoded), "Decode gives valid UTF-8");
    Check(Stream(*tok, ids) == decoded, "IncrementalDecoder equals Decode");
    const bool spm = tok->vocab().model == "llama";
    const bool round_trip =
        valid && !parse_special &&
        !(spm && text.find("\xE2\x96\x81") != std::string::npos);
    if (round_trip) Check(decoded == text, "decode(encode(x)) == x");

    std::vector<TokenId> raw(size / sizeof(TokenId));
    if (!raw.empty()) std::memcpy(raw.data(), data, raw.size() * sizeof(TokenId));
    Check(rocmforge::utf8::IsValid(tok->Decode(raw)), "raw ids decode to valid UTF-8");
    Stream(*tok, raw);

    const size_t half = text.size() / 2;
    auto chat = rocmforge::RenderChat(
        tok->vocab(), {{"system", text.substr(0, half)}, {"user", text.substr(half)}}, true);
    if (chat.ok()) tok->Encode(*chat, true, true);
  }
  return 0;
}
