#include "router/inference_service.h"

#include <functional>
#include <set>

#include "router/generate_relay.h"

namespace rocmforge::router {
namespace {

using AsyncStub = v1::Inference::Stub::async_interface;

// One forwarded unary call: lives until the upstream callback finishes the
// client's call. The upstream context inherits the client's deadline and
// cancellation.
template <typename Req, typename Resp>
class UnaryForward {
 public:
  using Method = std::function<void(AsyncStub*, grpc::ClientContext*, const Req*, Resp*,
                                    std::function<void(grpc::Status)>)>;

  static grpc::ServerUnaryReactor* Start(const RouterCore* core, grpc::CallbackServerContext* ctx,
                                         const Req* request, Resp* response,
                                         const std::string& model, Method method) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    auto* call = new UnaryForward(core, ctx, reactor, request, response, model, std::move(method));
    grpc::Status s = Admit(core->keys, *core->limiter, ctx, &call->ticket_);
    if (!s.ok()) return call->Done(s);
    call->Try(grpc::Status::OK);
    return reactor;
  }

 private:
  UnaryForward(const RouterCore* core, grpc::CallbackServerContext* ctx,
               grpc::ServerUnaryReactor* reactor, const Req* request, Resp* response,
               std::string model, Method method)
      : core_(core), ctx_(ctx), reactor_(reactor), request_(request), response_(response),
        model_(std::move(model)), method_(std::move(method)) {}

  grpc::ServerUnaryReactor* Done(const grpc::Status& s) {
    grpc::ServerUnaryReactor* r = reactor_;
    core_->metrics->CountRequest(s.error_code());
    delete this;
    r->Finish(s);
    return r;
  }

  void Try(const grpc::Status& last_error) {
    absl::StatusOr<Chosen> chosen = core_->Choose("", model_, tried_);
    if (!chosen.ok()) {
      Done(tried_.empty() ? ToGrpc(chosen.status()) : last_error);
      return;
    }
    WorkerHandle w = chosen->worker;
    tried_.insert(w->address);
    upstream_ = grpc::ClientContext::FromCallbackServerContext(*ctx_);
    method_(w->inference->async(), upstream_.get(), request_, response_,
            [this, w](grpc::Status s) {
              if (s.error_code() == grpc::StatusCode::UNAVAILABLE && tried_.size() < 2) {
                core_->pool->MarkFailed(w);
                Try(s);
                return;
              }
              Done(s);
            });
  }

  const RouterCore* core_;
  grpc::CallbackServerContext* ctx_;
  grpc::ServerUnaryReactor* reactor_;
  const Req* request_;
  Resp* response_;
  std::string model_;
  Method method_;
  std::unique_ptr<ConcurrencyLimiter::Ticket> ticket_;
  std::set<std::string> tried_;
  std::unique_ptr<grpc::ClientContext> upstream_;
};

}  // namespace

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceService::Generate(
    grpc::CallbackServerContext* ctx, const v1::GenerateRequest* request) {
  return GenerateRelay::Start(core_, ctx, request);
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* ctx,
                                                     const v1::TokenizeRequest* request,
                                                     v1::TokenizeResponse* response) {
  return UnaryForward<v1::TokenizeRequest, v1::TokenizeResponse>::Start(
      core_, ctx, request, response, request->model(),
      [](AsyncStub* s, grpc::ClientContext* c, const v1::TokenizeRequest* q,
         v1::TokenizeResponse* p, std::function<void(grpc::Status)> f) {
        s->Tokenize(c, q, p, std::move(f));
      });
}

grpc::ServerUnaryReactor* InferenceService::Detokenize(grpc::CallbackServerContext* ctx,
                                                       const v1::DetokenizeRequest* request,
                                                       v1::DetokenizeResponse* response) {
  return UnaryForward<v1::DetokenizeRequest, v1::DetokenizeResponse>::Start(
      core_, ctx, request, response, request->model(),
      [](AsyncStub* s, grpc::ClientContext* c, const v1::DetokenizeRequest* q,
         v1::DetokenizeResponse* p, std::function<void(grpc::Status)> f) {
        s->Detokenize(c, q, p, std::move(f));
      });
}

grpc::ServerUnaryReactor* InferenceService::ModelInfo(grpc::CallbackServerContext* ctx,
                                                      const v1::ModelInfoRequest* request,
                                                      v1::ModelInfoResponse* response) {
  return UnaryForward<v1::ModelInfoRequest, v1::ModelInfoResponse>::Start(
      core_, ctx, request, response, "",
      [](AsyncStub* s, grpc::ClientContext* c, const v1::ModelInfoRequest* q,
         v1::ModelInfoResponse* p, std::function<void(grpc::Status)> f) {
        s->ModelInfo(c, q, p, std::move(f));
      });
}

}  // namespace rocmforge::router
