// The public Inference API as served by the router: Generate is relayed as a
// stream (GenerateRelay); Tokenize, Detokenize and ModelInfo go to any usable
// worker (least loaded of two; one retry on another worker if it is unavailable).
#pragma once

#include "rocmforge/v1/inference.grpc.pb.h"
#include "router/router_core.h"

namespace rocmforge::router {

class InferenceService final : public v1::Inference::CallbackService {
 public:
  explicit InferenceService(const RouterCore* core) : core_(core) {}

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* ctx, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* ctx,
                                     const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* ctx,
                                       const v1::DetokenizeRequest* request,
                                       v1::DetokenizeResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfo(grpc::CallbackServerContext* ctx,
                                      const v1::ModelInfoRequest* request,
                                      v1::ModelInfoResponse* response) override;

 private:
  const RouterCore* core_;
};

}  // namespace rocmforge::router
