// Renders chat `messages` with the model's chat template into prompt text.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"
#include "rocmforge/v1/inference.pb.h"

namespace rocmforge::worker {

// InvalidArgument when the model has no usable chat template.
absl::StatusOr<std::string> RenderChatMessages(
    const Tokenizer& tokenizer, const google::protobuf::RepeatedPtrField<v1::ChatMessage>& messages);

}  // namespace rocmforge::worker
