#include "engine/backend/backend_factory.h"

#include "absl/strings/str_cat.h"
#include "engine/backend/cpu/cpu_backend.h"
#if defined(ROCMFORGE_HAVE_GPU)
#include "engine/backend/gpu_backend_factory.h"
#endif

namespace rocmforge {

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(std::string_view device, int threads) {
  if (device == "cpu") {
    if (threads < 0) return absl::InvalidArgumentError(absl::StrCat("threads must be >= 0, got ", threads));
    return CreateCpuBackend(threads);
  }
  if (device == "gpu") {
#if defined(ROCMFORGE_HAVE_GPU)
    return CreateGpuBackend();
#else
    return absl::UnavailableError(
        "this build has no GPU backend; rebuild with -DROCMFORGE_GPU=hip or -DROCMFORGE_GPU=cuda, or use --device cpu");
#endif
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown device '", std::string(device), "'; expected cpu or gpu"));
}

}  // namespace rocmforge
