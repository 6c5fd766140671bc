#include "engine/token_stream_internal.h"

#include <algorithm>

namespace rocmforge {

// Generated text continues the prompt, so a SentencePiece "▁" on the first
// generated token is a real space: skip_leading_space = false.
TokenStream::TokenStream(const Tokenizer& tokenizer, const StoppingParams& stopping,
                         int32_t context_length)
    : tokenizer_(tokenizer),
      stopping_(stopping),
      context_length_(context_length),
      decoder_(tokenizer, /*skip_leading_space=*/false),
      stop_(stopping.stop_strings) {}

void TokenStream::Replay(std::span<const TokenId> generated) {
  for (TokenId t : generated) {
    ++generated_;
    stop_.Push(decoder_.Push(t));  // already sent by the previous worker
  }
}

TokenStream::Output TokenStream::Push(TokenId token, int32_t sequence_length) {
  Output out;
  ++generated_;
  const auto& stop_ids = stopping_.stop_token_ids;
  if (!stopping_.ignore_eos && tokenizer_.IsEog(token)) {
    out.finish = FinishReason::kEos;
  } else if (std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end()) {
    out.finish = FinishReason::kStop;
  } else {
    out.text = stop_.Push(decoder_.Push(token));
    if (stop_.stopped()) return {std::move(out.text), FinishReason::kStop};
    if (generated_ >= stopping_.max_tokens || sequence_length >= context_length_) {
      out.finish = FinishReason::kLength;
    }
  }
  if (out.finish != FinishReason::kNone) {
    // Release what the decoder and the stop matcher still hold; the held
    // bytes may yet complete a stop string.
    out.text += stop_.Push(decoder_.Flush());
    if (stop_.stopped()) {
      out.finish = FinishReason::kStop;
    } else {
      out.text += stop_.Flush();
    }
  }
  return out;
}

}  // namespace rocmforge
