#include "worker/chat_render.h"

namespace rocmforge::worker {

absl::StatusOr<std::string> RenderChatMessages(
    const Tokenizer& /*tokenizer*/,
    const google::protobuf::RepeatedPtrField<v1::ChatMessage>& /*messages*/) {
  return absl::UnimplementedError("chat messages are not supported yet; send `prompt` instead");
}

}  // namespace rocmforge::worker
