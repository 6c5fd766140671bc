// Turns a public GenerateRequest into the engine's GenerationRequest: checks
// every field a client controls, tokenizes, and reports bad input as
// InvalidArgument with a message that says what to change. Runs on the gRPC
// thread before anything is queued, so a bad request never reaches the engine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "rocmforge/v1/inference.pb.h"

namespace rocmforge::worker {

struct RequestLimits {
  size_t max_prompt_bytes = 1 << 20;    // `prompt`, and all message contents together
  int32_t max_messages = 1024;
  int32_t max_stop_strings = 16;
  size_t max_stop_string_bytes = 256;
  int32_t max_stop_token_ids = 64;
  int32_t max_logprobs = 20;
  int32_t default_max_tokens = 256;
};

// What the engine serves, as the builder needs it (decoupled from Engine so
// it can be tested with any tokenizer).
struct ServedModel {
  const Tokenizer* tokenizer = nullptr;
  std::string name;            // compared with GenerateRequest.model when that is set
  int32_t context_length = 0;  // prompt + generated tokens must fit
};

// `random_seed` is used when the request leaves sampling.seed unset, so the
// seed actually used can be reported back in usage.
absl::StatusOr<GenerationRequest> BuildGenerationRequest(const v1::GenerateRequest& request,
                                                         const ServedModel& model,
                                                         const RequestLimits& limits,
                                                         uint64_t random_seed);

// Shared by Tokenize/Detokenize: InvalidArgument naming the first id outside
// [0, vocab_size).
absl::Status CheckTokenIds(const google::protobuf::RepeatedField<int32_t>& ids,
                           int32_t vocab_size, const char* field);

}  // namespace rocmforge::worker
