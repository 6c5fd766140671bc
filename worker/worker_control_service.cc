#include "worker/worker_control_service.h"

#include <cmath>

namespace rocmforge::worker {

grpc::ServerUnaryReactor* WorkerControlService::GetLoad(grpc::CallbackServerContext* context,
                                                        const v1::LoadRequest* /*request*/,
                                                        v1::LoadReport* response) {
  response->set_worker_id(core_->worker_id());
  response->set_draining(core_->draining());
  if (Engine* engine = core_->engine()) {
    const EngineStats s = engine->Stats();
    response->set_model(core_->model_name());
    response->set_running(s.running);
    response->set_waiting(s.waiting);
    response->set_free_kv_blocks(s.free_kv_blocks);
    response->set_total_kv_blocks(s.total_kv_blocks);
    response->set_tokens_per_second(s.tokens_per_second);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* WorkerControlService::Drain(grpc::CallbackServerContext* context,
                                                      const v1::DrainRequest* request,
                                                      v1::DrainResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const double deadline = request->deadline_seconds();
  if (!std::isfinite(deadline) || deadline < 0) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "deadline_seconds must be >= 0 (0 = wait without limit)"));
    return reactor;
  }
  response->set_in_flight(core_->StartDrain(deadline));
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace rocmforge::worker
