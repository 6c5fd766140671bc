#include "worker/generate_reactor.h"

#include <utility>

#include "engine/tokenizer/utf8.h"
#include "worker/grpc_status.h"

namespace rocmforge::worker {
namespace {

v1::FinishReason ToProto(FinishReason r) {
  switch (r) {
    case FinishReason::kLength: return v1::FINISH_REASON_LENGTH;
    case FinishReason::kStop: return v1::FINISH_REASON_STOP;
    case FinishReason::kEos: return v1::FINISH_REASON_EOS;
    case FinishReason::kCancelled: return v1::FINISH_REASON_CANCELLED;
    case FinishReason::kError: return v1::FINISH_REASON_ERROR;
    case FinishReason::kNone: break;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

void CopyUsage(const Usage& u, v1::Usage* out) {
  out->set_prompt_tokens(u.prompt_tokens);
  out->set_cached_prompt_tokens(u.cached_prompt_tokens);
  out->set_generated_tokens(u.generated_tokens);
  out->set_queue_seconds(u.queue_seconds);
  out->set_time_to_first_token_seconds(u.time_to_first_token_seconds);
  out->set_total_seconds(u.total_seconds);
  out->set_seed(u.seed);
}

}  // namespace

GenerateReactor::GenerateReactor(WorkerCore* core, const v1::GenerateRequest& request) : core_(core) {
  engine_ = core_->engine();
  if (engine_ == nullptr) {
    FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "the model is still loading; retry when health reports SERVING"));
    return;
  }
  if (!core_->BeginStream()) {
    core_->metrics()->RecordRejected(RejectReason::kDraining);
    FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "worker is draining"));
    return;
  }
  registered_ = true;
  absl::StatusOr<GenerationRequest> built =
      BuildGenerationRequest(request, core_->served_model(), core_->limits(), core_->DrawSeed());
  if (!built.ok()) {
    core_->metrics()->RecordRejected(RejectReason::kInvalidArgument);
    FinishOnce(ToGrpcStatus(built.status()));
    return;
  }
  // The sink may run before Submit returns; everything it touches is ready.
  absl::StatusOr<uint64_t> id =
      engine_->Submit(std::move(*built), [this](TokenEvent&& event) { OnEvent(std::move(event)); });
  if (!id.ok()) {
    core_->metrics()->RecordRejected(absl::IsInvalidArgument(id.status())
                                         ? RejectReason::kInvalidArgument
                                         : RejectReason::kOverloaded);
    FinishOnce(ToGrpcStatus(id.status()));
    return;
  }
  bool cancel_now;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id_ = *id;
    has_id_ = true;
    cancel_now = cancel_requested_ && !final_received_;
  }
  core_->SetStreamRequestId(*id);
  if (cancel_now) engine_->Cancel(*id);
}

void GenerateReactor::AppendEvent(TokenEvent&& event) {
  for (TokenId t : event.token_ids) pending_.add_token_ids(t);
  if (utf8::IsValid(event.text)) {
    pending_.mutable_text()->append(event.text);
  } else {
    pending_.mutable_text()->append(utf8::ReplaceEachInvalidByte(event.text));
  }
  for (const TokenLogprobs& lp : event.logprobs) {
    v1::TokenLogprob* out = pending_.add_logprobs();
    out->set_logprob(lp.logprob);
    for (const auto& [tok, logprob] : lp.top) {
      v1::TopLogprob* top = out->add_top();
      top->set_token_id(tok);
      top->set_logprob(logprob);
      top->set_text(utf8::ReplaceEachInvalidByte(
          engine_->tokenizer().TokenBytes(tok, /*render_special=*/true)));
    }
  }
  if (event.finished) {
    final_received_ = true;
    final_pending_ = true;
    pending_.set_finish_reason(ToProto(event.finish_reason));
    CopyUsage(event.usage, pending_.mutable_usage());
    if (!event.error.empty()) pending_.set_error(utf8::ReplaceEachInvalidByte(event.error));
  }
}

bool GenerateReactor::HasPendingLocked() const {
  return pending_.token_ids_size() > 0 || !pending_.text().empty() || final_pending_;
}

void GenerateReactor::OnEvent(TokenEvent&& event) {
  core_->metrics()->AddGeneratedTokens(static_cast<int64_t>(event.token_ids.size()));
  bool start_write = false, finish = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (final_received_) return;  // defensive: nothing may follow the final event
    AppendEvent(std::move(event));
    if (write_failed_ || cancel_requested_) {
      // Client gone: nothing more is written; finish after the final event.
      if (final_received_ && !write_in_flight_ && !finish_called_) finish = finish_called_ = true;
    } else if (!write_in_flight_ && HasPendingLocked()) {
      current_ = std::move(pending_);
      pending_.Clear();
      final_in_current_ = final_pending_;
      final_pending_ = false;
      write_in_flight_ = start_write = true;
    }
  }
  if (start_write) StartWrite(&current_);
  if (finish) Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the stream"));
}

void GenerateReactor::OnWriteDone(bool ok) {
  bool start_write = false, finish = false, cancel = false;
  grpc::Status status = grpc::Status::OK;
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    write_in_flight_ = false;
    if (!ok || cancel_requested_) {
      write_failed_ = true;
      if (final_received_) {
        if (!finish_called_) finish = finish_called_ = true;
        status = grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
      } else if (!cancel_requested_) {
        cancel_requested_ = true;
        cancel = has_id_;
        id = id_;
      }
    } else if (final_in_current_) {
      if (!finish_called_) finish = finish_called_ = true;
    } else if (HasPendingLocked()) {
      current_ = std::move(pending_);
      pending_.Clear();
      final_in_current_ = final_pending_;
      final_pending_ = false;
      write_in_flight_ = start_write = true;
    }
  }
  if (start_write) StartWrite(&current_);
  if (cancel) engine_->Cancel(id);
  if (finish) Finish(status);
}

void GenerateReactor::OnCancel() {
  bool cancel = false, finish = false;
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancel_requested_ = true;
    if (has_id_ && !final_received_) {
      cancel = true;
      id = id_;
    } else if (final_received_ && !write_in_flight_ && !finish_called_) {
      finish = finish_called_ = true;
    }
  }
  if (cancel) engine_->Cancel(id);
  if (finish) Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the stream"));
}

void GenerateReactor::OnDone() {
  uint64_t id;
  bool had_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = id_;
    had_id = has_id_;
  }
  WorkerCore* core = core_;
  const bool registered = registered_;
  delete this;
  if (registered) core->EndStream(id, had_id);
}

void GenerateReactor::FinishOnce(const grpc::Status& status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finish_called_) return;
    finish_called_ = true;
  }
  Finish(status);
}

}  // namespace rocmforge::worker
