// Memory of the device a backend computes on (reported by Backend and, through
// EngineStats, by the worker's rocmforge_device_memory_* gauges).
#pragma once

#include <cstddef>

namespace rocmforge {

struct MemoryUsage {
  size_t used_bytes = 0;   // in use on the device (all processes, as the runtime reports)
  size_t total_bytes = 0;  // the device's size
};

// The host as a device: this process's resident set and the machine's RAM
// (zeros where /proc cannot be read).
MemoryUsage HostMemoryUsage();

}  // namespace rocmforge
