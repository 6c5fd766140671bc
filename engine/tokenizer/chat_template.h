// Chat prompts rendered the way the model's own chat template
// (tokenizer.chat_template) renders them, for the common families. Jinja is
// not interpreted: the family is recognised from marker strings in the
// template and rendered by hand-written code that matches those templates.
//
//   ChatML  ("<|im_start|>")       <|im_start|>{role}\n{content}<|im_end|>\n ...
//           A template that writes a default system message when the first
//           message is not "system" (Qwen2 style) gets it too.
//   Llama 3 ("<|start_header_id|>") <|start_header_id|>{role}<|end_header_id|>\n\n
//           {content, trimmed}<|eot_id|> ...
//   Llama 2 ("[INST]" and "<<SYS>>") <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user}
//           [/INST] {assistant} </s> ... (contents stripped, as the template does)
//   Mistral ("[INST]" otherwise)   [INST] {user} [/INST]{assistant}</s> ...; a
//           system message is put before the first user message followed by
//           "\n\n" (the v0.1 template rejects it; later Mistral templates do this).
// A model without a template, or with an unrecognised one, falls back to
// ChatML when its vocab has <|im_start|> and <|im_end|>; otherwise
// InvalidArgument "model has no chat template".
//
// The text never starts with the BOS token: encode it with
// Tokenizer::Encode(text, /*add_bos=*/true, /*parse_special=*/true), which adds
// BOS when the model wants one. BOS/EOS inside the conversation (Llama 2) are
// written as their token text and become tokens through parse_special.
// Llama 2 and Mistral need user/assistant turns alternating, starting with
// user (after an optional first system message), as their templates demand;
// other orders give InvalidArgument.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"

namespace rocmforge {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" (ChatML/Llama 3 accept any)
  std::string content;
};

enum class ChatFormat { kChatML, kLlama3, kLlama2, kMistral };

// Which family RenderChat uses for this vocab (same errors as RenderChat).
absl::StatusOr<ChatFormat> DetectChatFormat(const Vocab& vocab);

// add_generation_prompt: end with the header of an assistant turn so the model
// writes the reply (ChatML, Llama 3; the [INST] formats already end there).
absl::StatusOr<std::string> RenderChat(const Vocab& vocab, const std::vector<ChatMessage>& msgs,
                                       bool add_generation_prompt);

}  // namespace rocmforge
