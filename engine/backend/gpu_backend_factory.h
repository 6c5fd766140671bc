// Implemented by the GPU backend (engine/backend/gpu), only in builds with
// ROCMFORGE_HAVE_GPU. Unavailable / an error when no usable device is found.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "engine/backend/backend.h"

namespace rocmforge {

absl::StatusOr<std::unique_ptr<Backend>> CreateGpuBackend();

}  // namespace rocmforge
