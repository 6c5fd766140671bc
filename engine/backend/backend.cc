#include "engine/backend/backend.h"

#include <unistd.h>

#include <cstdio>

namespace rocmforge {

// Host memory: resident set of this process and physical RAM.
MemoryUsage Backend::DeviceMemoryUsage() const {
  MemoryUsage m;
  const long page = sysconf(_SC_PAGESIZE);
  m.total_bytes = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(page);
  long pages_total = 0, pages_resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) == 2) {
      m.used_bytes = static_cast<size_t>(pages_resident) * static_cast<size_t>(page);
    }
    std::fclose(f);
  }
  return m;
}

void Backend::AddRmsNorm(float* x, const float* residual, const Weight& w, float* out, int n,
                         int dim, float eps) {
  Add(x, residual, static_cast<int64_t>(n) * dim);
  RmsNorm(x, w, out, n, dim, eps);
}

}  // namespace rocmforge
