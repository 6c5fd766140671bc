// One client Generate call through the router: opens Generate on a chosen
// worker and relays each message as it arrives (one message in flight: the
// next upstream read starts when the client has taken the previous one, so a
// slow client slows only its own upstream stream).
//
// Failover: when the upstream call fails retryably (worker gone, unavailable,
// overloaded) before the first token, the same request goes to the next worker
// in placement order ("retry"). After tokens were relayed it resumes on another
// worker ("resume"): prompt_ids = the prompt's ids (via Tokenize for a text
// prompt) + the ids already relayed, resume_generated = their count, same seed
// (the router draws one when the client gave none, so the continuation is the
// one the first worker would have produced) and the same max_tokens. A chat
// (`messages`) request cannot be turned into ids here; it is re-run from the
// start with the same seed and the first N relayed tokens are skipped.
//
// A client cancel cancels the upstream call; the client's deadline is the
// upstream deadline.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "rocmforge/v1/inference.grpc.pb.h"
#include "router/router_core.h"

namespace rocmforge::router {

// Router-side checks before any worker sees the request. OK or INVALID_ARGUMENT.
grpc::Status ValidateGenerate(const v1::GenerateRequest& request);

class GenerateRelay : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  // Creates the reactor and starts the call; the library owns it from here
  // (it deletes itself when both the client call and all upstream calls ended).
  static GenerateRelay* Start(const RouterCore* core, grpc::CallbackServerContext* ctx,
                              const v1::GenerateRequest* request);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  class Attempt;
  struct TokenizeOp;
  friend class Attempt;

  // What to do once mu_ is released (gRPC operations are never started under
  // mu_: the library may run a reaction inline on the calling thread).
  struct Actions {
    std::shared_ptr<Attempt> start;                 // StartCall on this attempt
    std::shared_ptr<Attempt> read;                  // StartRead on this attempt
    std::shared_ptr<Attempt> release;               // RemoveHold: no more reads on it
    bool write = false;                             // StartWrite(&out_)
    std::shared_ptr<Attempt> cancel;                // TryCancel this attempt
    std::shared_ptr<TokenizeOp> cancel_tokenize;    // TryCancel this Tokenize
    std::shared_ptr<TokenizeOp> tokenize;           // start this Tokenize
    bool finish = false;                            // Finish(finish_status)
    grpc::Status finish_status;
    bool destroy = false;                           // delete this
  };

  GenerateRelay(const RouterCore* core, grpc::CallbackServerContext* ctx,
                const v1::GenerateRequest& request);
  ~GenerateRelay() override;
  void Run(Actions a);

  // All below run with mu_ held and only fill `a`.
  void Begin(Actions& a);
  void PlaceAndLaunch(Actions& a, const grpc::Status& last_error);
  void Launch(Actions& a, const WorkerHandle& worker, const std::string& decision,
              const std::vector<int32_t>* prompt_ids);
  void HandleUpstreamEnd(Actions& a, const grpc::Status& status, const WorkerHandle& worker);
  void FinishWith(Actions& a, const grpc::Status& status);
  void MaybeDestroy(Actions& a);
  grpc::Status ClientGoneStatus() const;  // CANCELLED, or DEADLINE_EXCEEDED past the deadline

  // Upstream events.
  void OnUpstreamRead(Attempt* attempt, bool ok);
  void OnUpstreamDone(Attempt* attempt, const grpc::Status& status);
  void OnTokenized(const std::shared_ptr<TokenizeOp>& op, const grpc::Status& status);

  const RouterCore* core_;
  grpc::CallbackServerContext* ctx_;
  const std::chrono::steady_clock::time_point start_time_;

  std::mutex mu_;
  v1::GenerateRequest request_;  // the client's, with a seed filled in
  std::unique_ptr<ConcurrencyLimiter::Ticket> ticket_;
  std::set<std::string> tried_;
  std::vector<int32_t> relayed_ids_;
  int attempts_ = 0;
  int skip_tokens_ = 0;  // replay-resume: tokens the client already has
  std::shared_ptr<Attempt> current_;
  std::shared_ptr<TokenizeOp> tokenizing_;
  int upstream_open_ = 0;  // attempts + Tokenize calls not yet done
  v1::GenerateResponse out_;
  bool write_pending_ = false;
  bool deferred_end_ = false;  // upstream ended while a write was pending
  grpc::Status deferred_status_;
  WorkerHandle deferred_worker_;
  bool saw_final_ = false;
  bool client_gone_ = false;  // cancelled or a write failed
  bool finished_ = false;
  bool server_done_ = false;
};

}  // namespace rocmforge::router
