#include "engine/sampling/sampling_params.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace rocmforge {
namespace {

constexpr int32_t kMaxLogprobs = 20;        // as the public API documents (0..20)
constexpr size_t kMaxStopStrings = 16;
constexpr size_t kMaxStopStringBytes = 256;

absl::Status Bad(const std::string& field, const std::string& rule, double got) {
  return absl::InvalidArgumentError(absl::StrCat(field, " ", rule, ", got ", got));
}

}  // namespace

absl::Status ValidateSamplingParams(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f) {
    return Bad("temperature", "must be a finite number >= 0 (0 = greedy)", p.temperature);
  }
  if (p.top_k < 0) return Bad("top_k", "must be >= 0 (0 = off)", p.top_k);
  if (!std::isfinite(p.top_p) || p.top_p <= 0.0f || p.top_p > 1.0f) {
    return Bad("top_p", "must be in (0, 1] (1 = off)", p.top_p);
  }
  if (!std::isfinite(p.min_p) || p.min_p < 0.0f || p.min_p > 1.0f) {
    return Bad("min_p", "must be in [0, 1] (0 = off)", p.min_p);
  }
  if (!std::isfinite(p.repetition_penalty) || p.repetition_penalty <= 0.0f) {
    return Bad("repetition_penalty", "must be a finite number > 0 (1 = off)", p.repetition_penalty);
  }
  if (p.repetition_window < 0) {
    return Bad("repetition_window", "must be >= 0", p.repetition_window);
  }
  if (p.logprobs < 0 || p.logprobs > kMaxLogprobs) {
    return Bad("logprobs", absl::StrCat("must be in [0, ", kMaxLogprobs, "]"), p.logprobs);
  }
  return absl::OkStatus();
}

absl::Status ValidateStoppingParams(const StoppingParams& p, int32_t max_allowed_tokens) {
  if (p.max_tokens < 1) return Bad("max_tokens", "must be >= 1", p.max_tokens);
  if (max_allowed_tokens > 0 && p.max_tokens > max_allowed_tokens) {
    return Bad("max_tokens", absl::StrCat("must be <= ", max_allowed_tokens, " (the server's limit)"),
               p.max_tokens);
  }
  if (p.stop_strings.size() > kMaxStopStrings) {
    return Bad("stop", absl::StrCat("allows at most ", kMaxStopStrings, " strings"),
               static_cast<double>(p.stop_strings.size()));
  }
  for (size_t i = 0; i < p.stop_strings.size(); ++i) {
    const std::string& s = p.stop_strings[i];
    if (s.empty()) return absl::InvalidArgumentError(absl::StrCat("stop[", i, "] is empty"));
    if (s.size() > kMaxStopStringBytes) {
      return Bad(absl::StrCat("stop[", i, "]"),
                 absl::StrCat("must be at most ", kMaxStopStringBytes, " bytes"),
                 static_cast<double>(s.size()));
    }
  }
  for (size_t i = 0; i < p.stop_token_ids.size(); ++i) {
    if (p.stop_token_ids[i] < 0) {
      return Bad(absl::StrCat("stop_token_ids[", i, "]"), "must be >= 0", p.stop_token_ids[i]);
    }
  }
  return absl::OkStatus();
}

}  // namespace rocmforge
