// One Generate stream (gRPC callback API: no thread per stream).
//
// The engine calls the sink on its own thread; the sink only appends to this
// stream's pending message under a short lock and, when no write is in
// flight, starts one. The next write starts from OnWriteDone. While a write is
// in flight, new tokens coalesce into the one pending message (ids, text and
// logprobs appended), so a slow client grows only its own buffer and never
// blocks the engine. Client cancel or disconnect cancels the engine request;
// Finish is called once, after the engine's final event (so the engine never
// calls into a deleted reactor).
#pragma once

#include <cstdint>
#include <mutex>

#include <grpcpp/grpcpp.h>

#include "engine/engine.h"
#include "rocmforge/v1/inference.pb.h"
#include "worker/worker_core.h"

namespace rocmforge::worker {

class GenerateReactor : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  // Validates and submits; on error finishes the call at once.
  GenerateReactor(WorkerCore* core, const v1::GenerateRequest& request);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  void OnEvent(TokenEvent&& event);  // engine thread
  void AppendEvent(TokenEvent&& event);
  bool HasPendingLocked() const;
  void FinishOnce(const grpc::Status& status);  // call without mu_

  WorkerCore* const core_;
  Engine* engine_ = nullptr;
  bool registered_ = false;  // counted in core_'s in-flight streams

  std::mutex mu_;
  v1::GenerateResponse pending_;   // accumulates while a write is in flight
  v1::GenerateResponse current_;   // the message being written
  bool write_in_flight_ = false;
  bool write_failed_ = false;      // client gone: stop writing
  bool final_received_ = false;    // the engine's last event arrived
  bool final_pending_ = false;     // ... and sits in pending_
  bool final_in_current_ = false;  // ... and is being written
  bool finish_called_ = false;
  bool cancel_requested_ = false;
  bool has_id_ = false;
  uint64_t id_ = 0;
};

}  // namespace rocmforge::worker
