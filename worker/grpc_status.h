// Maps absl::Status (the engine's error type) to grpc::Status at the edge of
// the service. The message is passed through unchanged: engine messages are
// written for a person to act on.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace rocmforge::worker {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace rocmforge::worker
