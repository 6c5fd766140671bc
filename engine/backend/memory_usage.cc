#include "engine/backend/memory_usage.h"

#include <unistd.h>

#include <cstdio>

namespace rocmforge {

MemoryUsage HostMemoryUsage() {
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

}  // namespace rocmforge
