#include "router/generate_relay.h"

#include <random>

#include "absl/strings/str_cat.h"

namespace rocmforge::router {
namespace {

constexpr int kMaxLogprobs = 20;

uint64_t DrawSeed() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return gen();
}

// Whether a failed upstream call may be tried again on another worker. Before
// the first token an overloaded worker is worth a retry too; after it, only a
// worker that went away (its stream is resumed elsewhere).
bool Retryable(const grpc::Status& s, bool before_first_token) {
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::CANCELLED:  // the worker shut down under us (the client did not cancel)
    case grpc::StatusCode::ABORTED:
      return true;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return before_first_token;
    default:
      return false;
  }
}

// How the worker tokenizes `prompt` in Generate: always with the model's BOS
// rule (worker/request_builder.cc), which Tokenize applies for add_special =
// true. (The one difference: Generate drops a second BOS when the prompt text
// itself starts with the BOS piece; Tokenize does not.)
bool PromptAddsSpecial(const v1::GenerateRequest&) { return true; }

}  // namespace

grpc::Status ValidateGenerate(const v1::GenerateRequest& r) {
  const int given = (r.prompt().empty() ? 0 : 1) + (r.prompt_ids().empty() ? 0 : 1) +
                    (r.messages().empty() ? 0 : 1);
  if (given != 1) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "give exactly one of prompt, prompt_ids or messages");
  }
  if (r.resume_generated() < 0 || r.resume_generated() > r.prompt_ids_size()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("resume_generated (", r.resume_generated(),
                                     ") must be within 0..len(prompt_ids) (", r.prompt_ids_size(),
                                     ")"));
  }
  if (r.logprobs() < 0 || r.logprobs() > kMaxLogprobs) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("logprobs must be within 0..", kMaxLogprobs, ", got ",
                                     r.logprobs()));
  }
  return grpc::Status::OK;
}

// One upstream Generate call. Owned by shared_ptrs (the relay's current_ and
// its own `self`, dropped in OnDone). It carries a hold from before StartCall
// until the relay decides no further read will be issued, so OnDone (after
// which the call may not be touched) never races a StartRead.
class GenerateRelay::Attempt : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  Attempt(GenerateRelay* relay, WorkerHandle worker) : relay_(relay), worker(std::move(worker)) {}
  void OnReadDone(bool ok) override { relay_->OnUpstreamRead(this, ok); }
  void OnDone(const grpc::Status& s) override {
    std::shared_ptr<Attempt> keep = std::move(self);  // this dies when `keep` does
    relay_->OnUpstreamDone(this, s);
  }

  GenerateRelay* const relay_;
  const WorkerHandle worker;
  std::shared_ptr<Attempt> self;
  grpc::ClientContext ctx;
  v1::GenerateRequest request;
  v1::GenerateResponse response;
  bool released = false;  // hold removed (relay mu_)
};

struct GenerateRelay::TokenizeOp {
  WorkerHandle worker;
  std::string decision;
  grpc::ClientContext ctx;
  v1::TokenizeRequest request;
  v1::TokenizeResponse response;
};

GenerateRelay* GenerateRelay::Start(const RouterCore* core, grpc::CallbackServerContext* ctx,
                                    const v1::GenerateRequest* request) {
  auto* relay = new GenerateRelay(core, ctx, *request);
  Actions a;
  {
    std::lock_guard<std::mutex> lock(relay->mu_);
    relay->Begin(a);
  }
  relay->Run(std::move(a));
  return relay;
}

GenerateRelay::GenerateRelay(const RouterCore* core, grpc::CallbackServerContext* ctx,
                             const v1::GenerateRequest& request)
    : core_(core), ctx_(ctx), start_time_(std::chrono::steady_clock::now()), request_(request) {
  core_->live_relays.fetch_add(1);
}

GenerateRelay::~GenerateRelay() { core_->live_relays.fetch_sub(1); }

void GenerateRelay::Begin(Actions& a) {
  grpc::Status s = Admit(core_->keys, *core_->limiter, ctx_, &ticket_);
  if (s.ok()) s = ValidateGenerate(request_);
  if (!s.ok()) return FinishWith(a, s);
  // A fixed seed makes a resumed stream continue exactly as the first worker would have.
  if (!request_.sampling().has_seed()) request_.mutable_sampling()->set_seed(DrawSeed());
  PlaceAndLaunch(a, grpc::Status::OK);
}

void GenerateRelay::PlaceAndLaunch(Actions& a, const grpc::Status& last_error) {
  auto fail = [&](const std::string& why) {
    FinishWith(a, grpc::Status(last_error.error_code(),
                               absl::StrCat(last_error.error_message(), " (", why, ")")));
  };
  if (attempts_ >= core_->max_attempts) {
    return fail(absl::StrCat("gave up after ", attempts_, " workers"));
  }
  absl::StatusOr<Chosen> chosen = core_->Choose(request_.session_id(), request_.model(), tried_);
  if (!chosen.ok()) {
    if (attempts_ == 0) return FinishWith(a, ToGrpc(chosen.status()));
    return fail(std::string(chosen.status().message()));
  }
  const std::string decision =
      attempts_ == 0 ? chosen->decision : (relayed_ids_.empty() ? "retry" : "resume");
  if (relayed_ids_.empty() || !request_.prompt_ids().empty()) {
    const std::vector<int32_t> ids(request_.prompt_ids().begin(), request_.prompt_ids().end());
    return Launch(a, chosen->worker, decision, relayed_ids_.empty() ? nullptr : &ids);
  }
  if (!request_.prompt().empty()) {  // resume needs the prompt's ids: ask the new worker
    auto op = std::make_shared<TokenizeOp>();
    op->worker = chosen->worker;
    op->decision = decision;
    op->request.set_text(request_.prompt());
    op->request.set_add_special(PromptAddsSpecial(request_));
    op->request.set_model(request_.model());
    if (ctx_->deadline() != std::chrono::system_clock::time_point::max())
      op->ctx.set_deadline(ctx_->deadline());
    tokenizing_ = op;
    ++upstream_open_;
    a.tokenize = op;
    return;
  }
  Launch(a, chosen->worker, decision, nullptr);  // chat messages: replay and skip
}

void GenerateRelay::Launch(Actions& a, const WorkerHandle& worker, const std::string& decision,
                           const std::vector<int32_t>* prompt_ids) {
  auto at = std::make_shared<Attempt>(this, worker);
  at->self = at;
  at->request = request_;
  skip_tokens_ = 0;
  if (prompt_ids != nullptr) {
    at->request.clear_prompt();
    at->request.clear_messages();
    at->request.clear_prompt_ids();
    for (int32_t id : *prompt_ids) at->request.add_prompt_ids(id);
    for (int32_t id : relayed_ids_) at->request.add_prompt_ids(id);
    at->request.set_resume_generated(request_.resume_generated() +
                                     static_cast<int32_t>(relayed_ids_.size()));
  } else {
    skip_tokens_ = static_cast<int>(relayed_ids_.size());
  }
  if (ctx_->deadline() != std::chrono::system_clock::time_point::max())
    at->ctx.set_deadline(ctx_->deadline());
  tried_.insert(worker->address);
  ++attempts_;
  ++upstream_open_;
  current_ = at;
  core_->pool->StreamOpened(worker);
  core_->metrics->CountPlacement(decision);
  a.start = at;
}

void GenerateRelay::Run(Actions a) {
  if (a.tokenize) {
    std::shared_ptr<TokenizeOp> op = a.tokenize;
    op->worker->inference->async()->Tokenize(&op->ctx, &op->request, &op->response,
                                             [this, op](grpc::Status s) { OnTokenized(op, s); });
  }
  if (a.start) {
    Attempt* at = a.start.get();
    at->worker->inference->async()->Generate(&at->ctx, &at->request, at);
    at->AddHold();
    at->StartRead(&at->response);
    at->StartCall();
  }
  if (a.read) a.read->StartRead(&a.read->response);
  if (a.release) a.release->RemoveHold();
  if (a.write) StartWrite(&out_);
  if (a.cancel) a.cancel->ctx.TryCancel();
  if (a.cancel_tokenize) a.cancel_tokenize->ctx.TryCancel();
  if (a.finish) Finish(a.finish_status);
  if (a.destroy) delete this;
}

void GenerateRelay::OnUpstreamRead(Attempt* at, bool ok) {
  Actions a;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::shared_ptr<Attempt> self = at->self;  // alive: OnDone has not run (we hold it)
    if (!ok || client_gone_ || finished_ || at != current_.get()) {
      // The stream is over (or nobody wants it): no further read; let OnDone come.
      if (!at->released) {
        at->released = true;
        a.release = self;
      }
    } else {
      v1::GenerateResponse& m = at->response;
      if (skip_tokens_ > 0) {  // replay-resume: drop what the client already has
        const int n = m.token_ids_size();
        const int drop = std::min(n, skip_tokens_);
        skip_tokens_ -= drop;
        m.mutable_token_ids()->erase(m.mutable_token_ids()->begin(),
                                     m.mutable_token_ids()->begin() + drop);
        const int drop_lp = std::min(drop, m.logprobs_size());
        m.mutable_logprobs()->DeleteSubrange(0, drop_lp);
        if (drop == n) m.clear_text();
      }
      const bool final_message = m.finish_reason() != v1::FINISH_REASON_UNSPECIFIED;
      if (m.token_ids_size() == 0 && m.text().empty() && !final_message) {
        a.read = self;  // nothing for the client in this one
      } else {
        if (relayed_ids_.empty() && m.token_ids_size() > 0) {
          core_->metrics->ObserveTimeToFirstToken(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time_)
                  .count());
        }
        relayed_ids_.insert(relayed_ids_.end(), m.token_ids().begin(), m.token_ids().end());
        core_->metrics->CountRelayedTokens(m.token_ids_size());
        saw_final_ |= final_message;
        m.set_worker(at->worker->address);
        out_.Clear();
        out_.Swap(&m);
        write_pending_ = true;
        a.write = true;
      }
    }
  }
  Run(std::move(a));
}

void GenerateRelay::OnWriteDone(bool ok) {
  Actions a;
  {
    std::lock_guard<std::mutex> lock(mu_);
    write_pending_ = false;
    if (!ok) client_gone_ = true;
    if (current_) {
      if (ok && !finished_ && !client_gone_) {
        a.read = current_;
      } else if (!current_->released) {
        current_->released = true;
        a.release = current_;
        if (client_gone_) a.cancel = current_;
      }
    }
    if (deferred_end_) {
      deferred_end_ = false;
      HandleUpstreamEnd(a, deferred_status_, deferred_worker_);
      deferred_worker_.reset();
    }
  }
  Run(std::move(a));
}

void GenerateRelay::OnUpstreamDone(Attempt* at, const grpc::Status& status) {
  Actions a;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --upstream_open_;
    core_->pool->StreamClosed(at->worker);
    if (at == current_.get()) current_.reset();
    if (write_pending_) {  // finish the client's write first, then decide
      deferred_end_ = true;
      deferred_status_ = status;
      deferred_worker_ = at->worker;
    } else {
      HandleUpstreamEnd(a, status, at->worker);
    }
  }
  Run(std::move(a));
}

void GenerateRelay::OnTokenized(const std::shared_ptr<TokenizeOp>& op, const grpc::Status& status) {
  Actions a;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --upstream_open_;
    tokenizing_.reset();
    if (finished_) {
      MaybeDestroy(a);
    } else if (client_gone_) {
      FinishWith(a, ClientGoneStatus());
    } else if (!status.ok()) {
      tried_.insert(op->worker->address);
      if (Retryable(status, false)) {
        core_->pool->MarkFailed(op->worker);
        PlaceAndLaunch(a, status);
      } else {
        FinishWith(a, status);
      }
    } else {
      const std::vector<int32_t> ids(op->response.token_ids().begin(),
                                     op->response.token_ids().end());
      Launch(a, op->worker, op->decision, &ids);
    }
  }
  Run(std::move(a));
}

void GenerateRelay::HandleUpstreamEnd(Actions& a, const grpc::Status& status,
                                      const WorkerHandle& worker) {
  if (finished_) return MaybeDestroy(a);
  if (client_gone_) {
    return FinishWith(a, ClientGoneStatus());
  }
  // The client has the whole stream once it has the final message.
  if (status.ok() || saw_final_) return FinishWith(a, grpc::Status::OK);
  if (!Retryable(status, relayed_ids_.empty())) return FinishWith(a, status);
  if (status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) core_->pool->MarkFailed(worker);
  if (std::chrono::system_clock::now() >= ctx_->deadline()) {
    return FinishWith(a, grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                      "deadline passed while failing over"));
  }
  PlaceAndLaunch(a, grpc::Status(status.error_code(),
                                 absl::StrCat("worker ", worker->address, ": ",
                                              status.error_message())));
}

void GenerateRelay::FinishWith(Actions& a, const grpc::Status& status) {
  if (finished_) return;
  finished_ = true;
  a.finish = true;
  a.finish_status = status;
  ticket_.reset();
  core_->metrics->CountRequest(status.error_code());
  core_->metrics->ObserveRequestDuration(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time_).count());
}

grpc::Status GenerateRelay::ClientGoneStatus() const {
  // gRPC's deadline timer can fire a little before system_clock reaches the
  // deadline it reports; a client that goes away this close to its deadline
  // ran out of time rather than cancelled.
  constexpr auto kDeadlineSlack = std::chrono::milliseconds(100);
  if (std::chrono::system_clock::now() + kDeadlineSlack >= ctx_->deadline()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the client's deadline passed");
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client");
}

void GenerateRelay::MaybeDestroy(Actions& a) {
  if (server_done_ && upstream_open_ == 0) a.destroy = true;
}

void GenerateRelay::OnCancel() {
  Actions a;
  {
    std::lock_guard<std::mutex> lock(mu_);
    client_gone_ = true;
    a.cancel = current_;  // its outstanding read ends with ok=false, which releases it
    a.cancel_tokenize = tokenizing_;
    if (upstream_open_ == 0 && !write_pending_) {
      FinishWith(a, ClientGoneStatus());
    }
  }
  Run(std::move(a));
}

void GenerateRelay::OnDone() {
  Actions a;
  {
    std::lock_guard<std::mutex> lock(mu_);
    server_done_ = true;
    MaybeDestroy(a);
  }
  Run(std::move(a));
}

}  // namespace rocmforge::router
