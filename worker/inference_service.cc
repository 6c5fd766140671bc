#include "worker/inference_service.h"

#include "absl/strings/str_cat.h"
#include "engine/tokenizer/utf8.h"
#include "worker/generate_reactor.h"
#include "worker/grpc_status.h"
#include "worker/request_builder.h"

namespace rocmforge::worker {
namespace {

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

const grpc::Status kLoading(grpc::StatusCode::UNAVAILABLE,
                            "the model is still loading; retry when health reports SERVING");

grpc::Status CheckModel(const WorkerCore& core, const std::string& model) {
  if (model.empty() || model == core.model_name()) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      absl::StrCat("model '", model.substr(0, 128), "' is not served here; this worker serves '",
                                   core.model_name(), "'"));
}

}  // namespace

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceService::Generate(
    grpc::CallbackServerContext* /*context*/, const v1::GenerateRequest* request) {
  return new GenerateReactor(core_, *request);  // deletes itself in OnDone
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* context,
                                                     const v1::TokenizeRequest* request,
                                                     v1::TokenizeResponse* response) {
  Engine* engine = core_->engine();
  if (!engine) return Done(context, kLoading);
  if (grpc::Status s = CheckModel(*core_, request->model()); !s.ok()) return Done(context, s);
  if (request->text().size() > core_->limits().max_prompt_bytes) {
    return Done(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                      absl::StrCat("text is ", request->text().size(),
                                                   " bytes; the limit is ",
                                                   core_->limits().max_prompt_bytes, " bytes")));
  }
  const Tokenizer& tok = engine->tokenizer();
  const std::vector<TokenId> ids =
      tok.Encode(request->text(), request->add_special() && tok.vocab().add_bos, /*parse_special=*/true);
  for (TokenId id : ids) {
    response->add_token_ids(id);
    // The vocabulary's own piece string (always valid UTF-8 in GGUF).
    response->add_pieces(utf8::ReplaceEachInvalidByte(tok.vocab().tokens[static_cast<size_t>(id)]));
  }
  return Done(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::Detokenize(grpc::CallbackServerContext* context,
                                                       const v1::DetokenizeRequest* request,
                                                       v1::DetokenizeResponse* response) {
  Engine* engine = core_->engine();
  if (!engine) return Done(context, kLoading);
  if (grpc::Status s = CheckModel(*core_, request->model()); !s.ok()) return Done(context, s);
  const Tokenizer& tok = engine->tokenizer();
  if (absl::Status s = CheckTokenIds(request->token_ids(), tok.vocab_size(), "token_ids"); !s.ok()) {
    return Done(context, ToGrpcStatus(s));
  }
  const std::vector<TokenId> ids(request->token_ids().begin(), request->token_ids().end());
  response->set_text(utf8::ReplaceEachInvalidByte(tok.Decode(ids)));
  return Done(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::ModelInfo(grpc::CallbackServerContext* context,
                                                      const v1::ModelInfoRequest* /*request*/,
                                                      v1::ModelInfoResponse* response) {
  Engine* engine = core_->engine();
  if (!engine) return Done(context, kLoading);
  const Tokenizer& tok = engine->tokenizer();
  const Vocab& vocab = tok.vocab();
  response->set_model(core_->model_name());
  response->set_architecture(engine->model_config().arch);
  response->set_vocab_size(tok.vocab_size());
  response->set_context_length(engine->context_length());
  response->set_max_tokens_limit(engine->context_length());
  response->set_quantization(engine->quantization());
  response->set_device(engine->device_name());
  response->set_bos_token_id(vocab.bos);
  if (vocab.eos >= 0) response->add_eos_token_ids(vocab.eos);
  if (vocab.eot >= 0 && vocab.eot != vocab.eos) response->add_eos_token_ids(vocab.eot);
  response->set_has_chat_template(!vocab.chat_template.empty());
  return Done(context, grpc::Status::OK);
}

}  // namespace rocmforge::worker
