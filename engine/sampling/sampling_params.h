// Sampling and stopping parameters of one sequence, and their validation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace rocmforge {

struct SamplingParams {
  float temperature = 1.0f;        // 0 = greedy
  int32_t top_k = 0;               // 0 = off
  float top_p = 1.0f;              // 1 = off
  float min_p = 0.0f;              // 0 = off
  float repetition_penalty = 1.0f; // 1 = off; applied over the last `repetition_window` tokens
  int32_t repetition_window = 64;  // prompt + generated tokens considered
  uint64_t seed = 0;
  int32_t logprobs = 0;            // top-n logprobs to return per token (0 = none)

  bool greedy() const { return temperature <= 0.0f; }
};

struct StoppingParams {
  int32_t max_tokens = 256;
  std::vector<std::string> stop_strings;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
};

// InvalidArgument with a message naming the field for nonsense values
// (negative temperature, top_p outside (0,1], NaN, ...).
absl::Status ValidateSamplingParams(const SamplingParams& p);
absl::Status ValidateStoppingParams(const StoppingParams& p, int32_t max_allowed_tokens);

}  // namespace rocmforge
