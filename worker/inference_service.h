// rocmforge.v1.Inference on a worker (gRPC callback API).
#pragma once

#include <grpcpp/grpcpp.h>

#include "rocmforge/v1/inference.grpc.pb.h"
#include "worker/worker_core.h"

namespace rocmforge::worker {

class InferenceService final : public v1::Inference::CallbackService {
 public:
  explicit InferenceService(WorkerCore* core) : core_(core) {}

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context,
                                       const v1::DetokenizeRequest* request,
                                       v1::DetokenizeResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfo(grpc::CallbackServerContext* context,
                                      const v1::ModelInfoRequest* request,
                                      v1::ModelInfoResponse* response) override;

 private:
  WorkerCore* const core_;
};

}  // namespace rocmforge::worker
