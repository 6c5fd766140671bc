#include "engine/tokenizer/chat_template.h"

#include <algorithm>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace rocmforge {
namespace {

bool Contains(std::string_view s, std::string_view what) {
  return s.find(what) != std::string_view::npos;
}

bool HasToken(const Vocab& vocab, std::string_view piece) {
  return std::find(vocab.tokens.begin(), vocab.tokens.end(), piece) != vocab.tokens.end();
}

// Jinja's trim / Python's str.strip() on the whitespace chat text contains.
std::string Strip(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(kSpace);
  return std::string(s.substr(b, e - b + 1));
}

// The default system message a ChatML template writes as a literal, e.g.
// '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' (Qwen2),
// with the Jinja string escapes undone; empty when there is none.
std::string DefaultChatMlSystem(std::string_view tmpl) {
  constexpr std::string_view kOpen = "<|im_start|>system\\n";
  const size_t at = tmpl.find(kOpen);
  if (at == std::string_view::npos) return {};
  const size_t begin = at + kOpen.size();
  const size_t end = tmpl.find("<|im_end|>", begin);
  if (end == std::string_view::npos) return {};
  const std::string_view body = tmpl.substr(begin, end - begin);
  // Only a plain literal counts; anything computed is not a default.
  if (body.empty() || Contains(body, "'") || Contains(body, "\"") || Contains(body, "{")) return {};
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\\' && i + 1 < body.size()) {
      const char c = body[++i];
      out += c == 'n' ? '\n' : c == 't' ? '\t' : c;
    } else {
      out += body[i];
    }
  }
  return out;
}

std::string TokenText(const Vocab& vocab, TokenId id) {
  return id >= 0 && id < static_cast<TokenId>(vocab.tokens.size())
             ? vocab.tokens[static_cast<size_t>(id)] : std::string();
}

std::string RenderChatMl(const Vocab& vocab, const std::vector<ChatMessage>& msgs,
                         bool add_generation_prompt) {
  std::string out;
  if (!msgs.empty() && msgs[0].role != "system") {
    const std::string sys = DefaultChatMlSystem(vocab.chat_template);
    if (!sys.empty()) absl::StrAppend(&out, "<|im_start|>system\n", sys, "<|im_end|>\n");
  }
  for (const ChatMessage& m : msgs) {
    absl::StrAppend(&out, "<|im_start|>", m.role, "\n", m.content, "<|im_end|>\n");
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string RenderLlama3(const std::vector<ChatMessage>& msgs, bool add_generation_prompt) {
  std::string out;
  for (const ChatMessage& m : msgs) {
    absl::StrAppend(&out, "<|start_header_id|>", m.role, "<|end_header_id|>\n\n",
                    Strip(m.content), "<|eot_id|>");
  }
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// Splits off a leading system message and checks the user/assistant turns
// alternate starting with user, as the [INST] templates require.
absl::Status SplitInstTurns(const std::vector<ChatMessage>& msgs, std::string* system,
                            std::vector<const ChatMessage*>* turns) {
  size_t first = 0;
  if (!msgs.empty() && msgs[0].role == "system") {
    *system = msgs[0].content;
    first = 1;
  }
  for (size_t i = first; i < msgs.size(); ++i) {
    const bool want_user = (i - first) % 2 == 0;
    if (msgs[i].role != (want_user ? "user" : "assistant")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chat message ", i, " has role \"", msgs[i].role, "\"; this model's template needs "
          "an optional first system message, then user/assistant/user/... alternating"));
    }
    turns->push_back(&msgs[i]);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RenderLlama2(const Vocab& vocab, const std::vector<ChatMessage>& msgs) {
  std::string system;
  std::vector<const ChatMessage*> turns;
  if (absl::Status s = SplitInstTurns(msgs, &system, &turns); !s.ok()) return s;
  const bool has_system = !msgs.empty() && msgs[0].role == "system";
  const std::string bos = TokenText(vocab, vocab.bos), eos = TokenText(vocab, vocab.eos);
  std::string out;
  for (size_t i = 0; i < turns.size(); ++i) {
    std::string content = turns[i]->content;
    if (i == 0 && has_system) {
      content = absl::StrCat("<<SYS>>\n", system, "\n<</SYS>>\n\n", content);
    }
    if (turns[i]->role == "user") {
      // The template writes bos_token before every [INST]; the first one is
      // added by Encode(add_bos=true) instead.
      absl::StrAppend(&out, i == 0 ? "" : bos, "[INST] ", Strip(content), " [/INST]");
    } else {
      absl::StrAppend(&out, " ", Strip(content), " ", eos);
    }
  }
  return out;
}

absl::StatusOr<std::string> RenderMistral(const Vocab& vocab, const std::vector<ChatMessage>& msgs) {
  std::string system;
  std::vector<const ChatMessage*> turns;
  if (absl::Status s = SplitInstTurns(msgs, &system, &turns); !s.ok()) return s;
  const bool has_system = !msgs.empty() && msgs[0].role == "system";
  const std::string eos = TokenText(vocab, vocab.eos);
  std::string out;
  for (size_t i = 0; i < turns.size(); ++i) {
    if (turns[i]->role == "user") {
      absl::StrAppend(&out, "[INST] ", i == 0 && has_system ? system + "\n\n" : "",
                      turns[i]->content, " [/INST]");
    } else {
      absl::StrAppend(&out, turns[i]->content, eos);
    }
  }
  if (has_system && turns.empty()) {  // a lone system message still reaches the model
    absl::StrAppend(&out, "[INST] ", system, " [/INST]");
  }
  return out;
}

}  // namespace

absl::StatusOr<ChatFormat> DetectChatFormat(const Vocab& vocab) {
  const std::string& t = vocab.chat_template;
  if (Contains(t, "<|im_start|>")) return ChatFormat::kChatML;
  if (Contains(t, "<|start_header_id|>")) return ChatFormat::kLlama3;
  if (Contains(t, "[INST]")) return Contains(t, "<<SYS>>") ? ChatFormat::kLlama2 : ChatFormat::kMistral;
  if (HasToken(vocab, "<|im_start|>") && HasToken(vocab, "<|im_end|>")) return ChatFormat::kChatML;
  if (t.empty()) {
    return absl::InvalidArgumentError(
        "model has no chat template (no tokenizer.chat_template and no ChatML tokens); "
        "send a plain prompt instead of chat messages");
  }
  return absl::InvalidArgumentError(
      "model has no chat template this server understands (supported: ChatML, Llama 3, "
      "Llama 2, Mistral); send a plain prompt instead of chat messages");
}

absl::StatusOr<std::string> RenderChat(const Vocab& vocab, const std::vector<ChatMessage>& msgs,
                                       bool add_generation_prompt) {
  absl::StatusOr<ChatFormat> format = DetectChatFormat(vocab);
  if (!format.ok()) return format.status();
  switch (*format) {
    case ChatFormat::kChatML:
      return RenderChatMl(vocab, msgs, add_generation_prompt);
    case ChatFormat::kLlama3:
      return RenderLlama3(msgs, add_generation_prompt);
    case ChatFormat::kLlama2:
      return RenderLlama2(vocab, msgs);
    case ChatFormat::kMistral:
      return RenderMistral(vocab, msgs);
  }
  return absl::InternalError("unhandled chat format");
}

}  // namespace rocmforge
