#include "worker/request_builder.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/common/status_macros.h"
#include "worker/chat_render.h"

namespace rocmforge::worker {
namespace {

absl::Status Invalid(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

absl::StatusOr<SamplingParams> BuildSampling(const v1::GenerateRequest& request,
                                             const RequestLimits& limits, uint64_t random_seed) {
  const v1::SamplingOptions& s = request.sampling();
  SamplingParams p;
  if (s.has_temperature()) p.temperature = s.temperature();
  if (s.has_top_k()) p.top_k = s.top_k();
  if (s.has_top_p()) p.top_p = s.top_p();
  if (s.has_min_p()) p.min_p = s.min_p();
  if (s.has_repetition_penalty()) p.repetition_penalty = s.repetition_penalty();
  p.seed = s.has_seed() ? s.seed() : random_seed;
  if (request.logprobs() < 0 || request.logprobs() > limits.max_logprobs) {
    return Invalid(absl::StrCat("logprobs must be between 0 and ", limits.max_logprobs, ", got ",
                                request.logprobs()));
  }
  p.logprobs = request.logprobs();
  RF_RETURN_IF_ERROR(ValidateSamplingParams(p));
  return p;
}

absl::StatusOr<StoppingParams> BuildStopping(const v1::StoppingOptions& s, const ServedModel& model,
                                             const RequestLimits& limits) {
  StoppingParams p;
  p.max_tokens = s.has_max_tokens() ? s.max_tokens() : limits.default_max_tokens;
  if (!s.has_max_tokens() && p.max_tokens > model.context_length - 1) {
    p.max_tokens = model.context_length - 1;  // an unset default never fails the request
  }
  if (s.stop_size() > limits.max_stop_strings) {
    return Invalid(absl::StrCat("at most ", limits.max_stop_strings, " stop strings are allowed, got ",
                                s.stop_size()));
  }
  for (const std::string& stop : s.stop()) {
    if (stop.empty()) return Invalid("stop strings must not be empty");
    if (stop.size() > limits.max_stop_string_bytes) {
      return Invalid(absl::StrCat("each stop string must be at most ", limits.max_stop_string_bytes,
                                  " bytes, got one of ", stop.size()));
    }
    p.stop_strings.push_back(stop);
  }
  if (s.stop_token_ids_size() > limits.max_stop_token_ids) {
    return Invalid(absl::StrCat("at most ", limits.max_stop_token_ids, " stop_token_ids are allowed"));
  }
  RF_RETURN_IF_ERROR(CheckTokenIds(s.stop_token_ids(), model.tokenizer->vocab_size(),
                                   "stopping.stop_token_ids"));
  p.stop_token_ids.assign(s.stop_token_ids().begin(), s.stop_token_ids().end());
  p.ignore_eos = s.ignore_eos();
  RF_RETURN_IF_ERROR(ValidateStoppingParams(p, model.context_length));
  return p;
}

// BOS per model (vocab.add_bos); a chat template that already wrote the BOS
// token into its text does not get a second one.
std::vector<TokenId> EncodeWithBos(const Tokenizer& tok, const std::string& text) {
  std::vector<TokenId> ids = tok.Encode(text, /*add_bos=*/tok.vocab().add_bos, /*parse_special=*/true);
  const TokenId bos = tok.vocab().bos;
  if (ids.size() >= 2 && bos >= 0 && ids[0] == bos && ids[1] == bos) ids.erase(ids.begin());
  return ids;
}

absl::StatusOr<std::vector<TokenId>> BuildPrompt(const v1::GenerateRequest& request,
                                                 const ServedModel& model,
                                                 const RequestLimits& limits) {
  const Tokenizer& tok = *model.tokenizer;
  if (!request.prompt().empty()) {
    if (request.prompt().size() > limits.max_prompt_bytes) {
      return Invalid(absl::StrCat("prompt is ", request.prompt().size(), " bytes; the limit is ",
                                  limits.max_prompt_bytes, " bytes"));
    }
    return EncodeWithBos(tok, request.prompt());
  }
  if (request.prompt_ids_size() > 0) {
    RF_RETURN_IF_ERROR(CheckTokenIds(request.prompt_ids(), tok.vocab_size(), "prompt_ids"));
    return std::vector<TokenId>(request.prompt_ids().begin(), request.prompt_ids().end());
  }
  if (request.messages_size() > limits.max_messages) {
    return Invalid(absl::StrCat("at most ", limits.max_messages, " messages are allowed, got ",
                                request.messages_size()));
  }
  size_t bytes = 0;
  for (const v1::ChatMessage& m : request.messages()) {
    if (m.role() != "system" && m.role() != "user" && m.role() != "assistant") {
      return Invalid(absl::StrCat("message role must be system, user or assistant, got '",
                                  m.role().substr(0, 32), "'"));
    }
    bytes += m.content().size();
  }
  if (bytes > limits.max_prompt_bytes) {
    return Invalid(absl::StrCat("messages hold ", bytes, " bytes of content; the limit is ",
                                limits.max_prompt_bytes, " bytes"));
  }
  RF_ASSIGN_OR_RETURN(std::string rendered, RenderChatMessages(tok, request.messages()));
  return EncodeWithBos(tok, rendered);
}

}  // namespace

absl::Status CheckTokenIds(const google::protobuf::RepeatedField<int32_t>& ids, int32_t vocab_size,
                           const char* field) {
  for (int i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size) {
      return Invalid(absl::StrCat(field, "[", i, "] = ", ids[i], " is not a token id; the vocabulary has ",
                                  vocab_size, " tokens (0..", vocab_size - 1, ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<GenerationRequest> BuildGenerationRequest(const v1::GenerateRequest& request,
                                                         const ServedModel& model,
                                                         const RequestLimits& limits,
                                                         uint64_t random_seed) {
  const int sources = (!request.prompt().empty() ? 1 : 0) + (request.prompt_ids_size() > 0 ? 1 : 0) +
                      (request.messages_size() > 0 ? 1 : 0);
  if (sources != 1) {
    return Invalid(absl::StrCat("set exactly one of prompt, prompt_ids or messages (got ", sources,
                                ")"));
  }
  if (!request.model().empty() && request.model() != model.name) {
    return Invalid(absl::StrCat("model '", request.model().substr(0, 128),
                                "' is not served here; this worker serves '", model.name,
                                "' (leave `model` empty to accept it)"));
  }
  GenerationRequest out;
  RF_ASSIGN_OR_RETURN(out.sampling, BuildSampling(request, limits, random_seed));
  RF_ASSIGN_OR_RETURN(out.stopping, BuildStopping(request.stopping(), model, limits));
  RF_ASSIGN_OR_RETURN(out.prompt, BuildPrompt(request, model, limits));
  if (out.prompt.empty()) return Invalid("prompt is empty after tokenization");
  if (static_cast<int64_t>(out.prompt.size()) >= model.context_length) {
    return Invalid(absl::StrCat("prompt has ", out.prompt.size(),
                                " tokens but the context window is ", model.context_length,
                                " tokens (room for at least one generated token is needed); "
                                "shorten the prompt"));
  }
  if (request.resume_generated() != 0) {
    if (request.prompt_ids_size() == 0) return Invalid("resume_generated needs prompt_ids");
    if (request.resume_generated() < 0 || request.resume_generated() >= request.prompt_ids_size()) {
      return Invalid(absl::StrCat("resume_generated must be in [0, ", request.prompt_ids_size(),
                                  ") (fewer than the prompt_ids), got ", request.resume_generated()));
    }
  }
  out.resume_generated = request.resume_generated();
  out.priority = request.priority();
  out.request_id = request.request_id().substr(0, 128);
  return out;
}

}  // namespace rocmforge::worker
