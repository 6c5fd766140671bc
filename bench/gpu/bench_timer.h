// Device-event timing for the GPU benchmarks: median over repeats of the mean
// time of `iters` launches, after warm-up.
#pragma once

#include <algorithm>
#include <functional>
#include <vector>

#include "kernels/gpu_api.h"

namespace rocmforge::bench {

inline double MedianMs(gpu::Stream s, const std::function<void(int)>& launch, int iters = 50,
                       int repeats = 7, int warmup = 10) {
  for (int i = 0; i < warmup; ++i) launch(i);
  gpu::Event a = nullptr, b = nullptr;
  (void)gpu::EventCreate(&a);
  (void)gpu::EventCreate(&b);
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    (void)gpu::EventRecord(a, s);
    for (int i = 0; i < iters; ++i) launch(i);
    (void)gpu::EventRecord(b, s);
    float ms = 0.0f;
    (void)gpu::EventElapsedMs(a, b, &ms);
    t.push_back(ms / iters);
  }
  gpu::EventDestroy(a);
  gpu::EventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace rocmforge::bench
