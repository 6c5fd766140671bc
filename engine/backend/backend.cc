#include "engine/backend/backend.h"

namespace rocmforge {

MemoryUsage Backend::DeviceMemoryUsage() const { return HostMemoryUsage(); }

std::vector<int32_t> Backend::StepTokenSizes() const { return {}; }
int32_t Backend::DefaultPrefillCapWithDecodes() const { return 64; }
size_t Backend::UseSpareMemory(size_t) { return 0; }

void Backend::AddRmsNorm(float* x, const float* residual, const Weight& w, float* out, int n,
                         int dim, float eps) {
  Add(x, residual, static_cast<int64_t>(n) * dim);
  RmsNorm(x, w, out, n, dim, eps);
}

}  // namespace rocmforge
