// Creates a backend by device name.
//   "cpu": the CPU backend with `threads` threads (0 = all cores).
//   "gpu": the GPU backend of this build (HIP or CUDA); Unavailable in builds
//          without one (ROCMFORGE_GPU=none).
// Anything else is InvalidArgument naming the accepted values.
#pragma once

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/backend/backend.h"

namespace rocmforge {

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(std::string_view device, int threads);

}  // namespace rocmforge
