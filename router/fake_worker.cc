#include "router/fake_worker.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "grpcpp/alarm.h"
#include "grpcpp/health_check_service_interface.h"

namespace rocmforge::router::testing {
namespace {

uint64_t Mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<int32_t> FakeWorker::TokenizeText(const std::string& text, bool add_special) {
  std::vector<int32_t> ids;
  if (add_special) ids.push_back(1);
  for (unsigned char c : text) ids.push_back(static_cast<int32_t>(c) + 3);
  return ids;
}

int32_t FakeWorker::NextToken(uint64_t seed, const std::vector<int32_t>& ids, int vocab) {
  uint64_t h = Mix(seed);
  for (int32_t id : ids) h = Mix(h ^ static_cast<uint32_t>(id));
  return 3 + static_cast<int32_t>(h % static_cast<uint64_t>(vocab - 3));
}

std::string FakeWorker::Piece(int32_t id) { return absl::StrCat(" w", id); }

// One Generate stream: one token per message, paced by token_delay.
class FakeWorker::Stream : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  Stream(FakeWorker* w, const v1::GenerateRequest& r) : w_(w) {
    w_->in_flight_.fetch_add(1);
    if (!r.prompt_ids().empty()) {
      ids_.assign(r.prompt_ids().begin(), r.prompt_ids().end());
    } else if (!r.prompt().empty()) {
      ids_ = TokenizeText(r.prompt(), true);
    } else {
      std::string chat;
      for (const auto& m : r.messages()) chat += m.role() + ": " + m.content() + "\n";
      ids_ = TokenizeText(chat, true);
    }
    seed_ = r.sampling().has_seed() ? r.sampling().seed() : 12345;
    generated_ = r.resume_generated();
    max_tokens_ = r.stopping().has_max_tokens() ? r.stopping().max_tokens() : 256;
    fail_after_ = w_->fail_after_.load();
    delay_ = std::chrono::microseconds(w_->token_delay_us_.load());
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return Done(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
    if (final_sent_) return Done(grpc::Status::OK);
    Next();
  }
  void OnCancel() override { cancelled_.store(true); }
  void OnDone() override {
    w_->in_flight_.fetch_sub(1);
    delete this;
  }

 private:
  void Next() {
    if (delay_.count() > 0 && sent_ > 0) {  // the first token comes at once
      alarm_.Set(std::chrono::system_clock::now() + delay_, [this](bool) { WriteNext(); });
    } else {
      WriteNext();
    }
  }
  void WriteNext() {
    if (cancelled_.load()) return Done(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
    if (fail_after_ >= 0 && sent_ >= fail_after_) {
      return Done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "fake worker: simulated failure"));
    }
    const int32_t id = NextToken(seed_, ids_, w_->options_.vocab);
    ids_.push_back(id);
    ++generated_;
    ++sent_;
    msg_.Clear();
    msg_.add_token_ids(id);
    msg_.set_text(w_->options_.stamp_send_time
                      ? std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           std::chrono::steady_clock::now().time_since_epoch())
                                           .count())
                      : Piece(id));
    if (generated_ >= max_tokens_) {
      msg_.set_finish_reason(v1::FINISH_REASON_LENGTH);
      msg_.mutable_usage()->set_generated_tokens(generated_);
      msg_.mutable_usage()->set_seed(seed_);
      final_sent_ = true;
    }
    StartWrite(&msg_);
  }
  void Done(const grpc::Status& s) {
    if (finished_) return;
    finished_ = true;
    Finish(s);
  }

  FakeWorker* w_;
  std::vector<int32_t> ids_;
  uint64_t seed_ = 0;
  int generated_ = 0, max_tokens_ = 0, sent_ = 0, fail_after_ = -1;
  std::chrono::microseconds delay_{0};
  std::atomic<bool> cancelled_{false};
  bool final_sent_ = false, finished_ = false;
  v1::GenerateResponse msg_;
  grpc::Alarm alarm_;
};

class FakeWorker::Service final : public v1::Inference::CallbackService {
 public:
  explicit Service(FakeWorker* w) : w_(w) {}
  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(grpc::CallbackServerContext*,
                                                           const v1::GenerateRequest* r) override {
    w_->generate_calls_.fetch_add(1);
    {
      std::lock_guard<std::mutex> lock(w_->mu_);
      w_->last_request_ = *r;
    }
    grpc::Status bad;
    if (w_->draining_.load()) {
      bad = grpc::Status(grpc::StatusCode::UNAVAILABLE, "fake worker: draining");
    } else if (!r->model().empty() && r->model() != w_->options_.model) {
      bad = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "fake worker: unknown model");
    } else if (r->prompt().empty() && r->prompt_ids().empty() && r->messages().empty()) {
      bad = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "fake worker: empty prompt");
    } else if (r->stopping().has_max_tokens() && r->stopping().max_tokens() <= 0) {
      bad = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "fake worker: max_tokens must be > 0");
    }
    if (!bad.ok()) {
      class Reject : public grpc::ServerWriteReactor<v1::GenerateResponse> {
       public:
        explicit Reject(const grpc::Status& s) { Finish(s); }
        void OnDone() override { delete this; }
      };
      return new Reject(bad);
    }
    return new Stream(w_, *r);
  }
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* ctx,
                                     const v1::TokenizeRequest* r,
                                     v1::TokenizeResponse* resp) override {
    for (int32_t id : TokenizeText(r->text(), r->add_special())) resp->add_token_ids(id);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* ctx,
                                       const v1::DetokenizeRequest* r,
                                       v1::DetokenizeResponse* resp) override {
    std::string text;
    for (int32_t id : r->token_ids()) text += Piece(id);
    resp->set_text(text);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* ModelInfo(grpc::CallbackServerContext* ctx,
                                      const v1::ModelInfoRequest*,
                                      v1::ModelInfoResponse* resp) override {
    resp->set_model(w_->options_.model);
    resp->set_vocab_size(w_->options_.vocab);
    resp->set_device("fake");
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  FakeWorker* w_;
};

class FakeWorker::Control final : public v1::WorkerControl::CallbackService {
 public:
  explicit Control(FakeWorker* w) : w_(w) {}
  grpc::ServerUnaryReactor* GetLoad(grpc::CallbackServerContext* ctx, const v1::LoadRequest*,
                                    v1::LoadReport* r) override {
    if (const int code = w_->load_report_error_.load(); code != grpc::StatusCode::OK) {
      auto* reactor = ctx->DefaultReactor();
      reactor->Finish(grpc::Status(static_cast<grpc::StatusCode>(code), "load report withheld (test)"));
      return reactor;
    }
    r->set_worker_id(w_->address());
    r->set_model(w_->options_.model);
    r->set_running(w_->in_flight_.load());
    r->set_draining(w_->draining_.load());
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* Drain(grpc::CallbackServerContext* ctx, const v1::DrainRequest*,
                                  v1::DrainResponse* r) override {
    w_->SetDraining(true);
    r->set_in_flight(w_->in_flight_.load());
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  FakeWorker* w_;
};

absl::StatusOr<std::unique_ptr<FakeWorker>> FakeWorker::Start(const FakeWorkerOptions& options) {
  std::unique_ptr<FakeWorker> w(new FakeWorker());
  w->options_ = options;
  w->token_delay_us_.store(options.token_delay.count());
  w->service_ = std::make_unique<Service>(w.get());
  w->control_ = std::make_unique<Control>(w.get());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder b;
  b.AddListeningPort(absl::StrCat(options.host, ":", options.port),
                     options.credentials ? options.credentials : grpc::InsecureServerCredentials(),
                     &w->port_);
  b.RegisterService(w->service_.get());
  b.RegisterService(w->control_.get());
  w->server_ = b.BuildAndStart();
  if (!w->server_ || w->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("fake worker cannot listen on ", options.host, ":",
                                               options.port));
  }
  w->SetServing(true);
  return w;
}

FakeWorker::~FakeWorker() { Kill(); }

std::string FakeWorker::address() const { return absl::StrCat(options_.host, ":", port_); }

void FakeWorker::SetServing(bool serving) {
  std::lock_guard<std::mutex> lock(mu_);
  if (killed_) return;
  server_->GetHealthCheckService()->SetServingStatus(serving);
}

void FakeWorker::SetDraining(bool draining) {
  draining_.store(draining);
  SetServing(!draining);
}
void FakeWorker::SetFailAfterTokens(int n) { fail_after_.store(n); }
void FakeWorker::SetTokenDelay(std::chrono::microseconds d) { token_delay_us_.store(d.count()); }
void FakeWorker::SetLoadReportError(grpc::StatusCode code) { load_report_error_.store(code); }

void FakeWorker::Kill() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (killed_ || !server_) return;
    killed_ = true;
  }
  server_->Shutdown(std::chrono::system_clock::now());
  server_->Wait();
}

v1::GenerateRequest FakeWorker::last_request() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_request_;
}

}  // namespace rocmforge::router::testing
