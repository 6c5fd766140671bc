#include "worker/chat_render.h"

#include <vector>

#include "engine/tokenizer/chat_template.h"

namespace rocmforge::worker {

absl::StatusOr<std::string> RenderChatMessages(
    const Tokenizer& tokenizer, const google::protobuf::RepeatedPtrField<v1::ChatMessage>& messages) {
  std::vector<ChatMessage> turns;
  turns.reserve(static_cast<size_t>(messages.size()));
  for (const v1::ChatMessage& m : messages) turns.push_back({m.role(), m.content()});
  // The reply comes next: end with the assistant header where the format has one.
  return RenderChat(tokenizer.vocab(), turns, /*add_generation_prompt=*/true);
}

}  // namespace rocmforge::worker
