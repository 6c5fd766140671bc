// One request's output side: turns its sampled tokens into text pieces and
// decides when it is finished. Text is complete UTF-8 (IncrementalDecoder)
// and never contains a stop string (StopMatcher). Finish order for a token:
// EOS/EOT (unless ignore_eos) -> stop token id -> stop string -> max_tokens
// -> context full. EOS and stop-token ids contribute no text.
// No model needed: unit-tested on its own.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "engine/engine.h"
#include "engine/sampling/stop_matcher.h"
#include "engine/tokenizer/tokenizer.h"

namespace rocmforge {

class TokenStream {
 public:
  // `context_length`: a sequence (prompt + generated) reaching it is finished
  // with kLength because its next token would have no position left.
  TokenStream(const Tokenizer& tokenizer, const StoppingParams& stopping, int32_t context_length);

  // Resume after failover: feeds tokens another worker already generated and
  // sent, so max_tokens counts them and stop strings and the UTF-8 state see
  // them; their text is not emitted again.
  void Replay(std::span<const TokenId> generated);

  struct Output {
    std::string text;
    FinishReason finish = FinishReason::kNone;
  };
  // One sampled token; `sequence_length` is prompt + generated including it.
  Output Push(TokenId token, int32_t sequence_length);

  int32_t generated() const { return generated_; }

 private:
  const Tokenizer& tokenizer_;
  StoppingParams stopping_;
  int32_t context_length_;
  IncrementalDecoder decoder_;
  StopMatcher stop_;
  int32_t generated_ = 0;
};

}  // namespace rocmforge
