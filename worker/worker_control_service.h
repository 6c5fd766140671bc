// rocmforge.v1.WorkerControl: load report and drain, for the router.
#pragma once

#include <grpcpp/grpcpp.h>

#include "rocmforge/v1/worker_control.grpc.pb.h"
#include "worker/worker_core.h"

namespace rocmforge::worker {

class WorkerControlService final : public v1::WorkerControl::CallbackService {
 public:
  explicit WorkerControlService(WorkerCore* core) : core_(core) {}

  grpc::ServerUnaryReactor* GetLoad(grpc::CallbackServerContext* context,
                                    const v1::LoadRequest* request, v1::LoadReport* response) override;
  grpc::ServerUnaryReactor* Drain(grpc::CallbackServerContext* context,
                                  const v1::DrainRequest* request, v1::DrainResponse* response) override;

 private:
  WorkerCore* const core_;
};

}  // namespace rocmforge::worker
