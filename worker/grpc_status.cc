#include "worker/grpc_status.h"

#include <string>

namespace rocmforge::worker {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl::StatusCode and grpc::StatusCode share the canonical numbering
  // (both follow google.rpc.Code), so the cast keeps the meaning.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace rocmforge::worker
