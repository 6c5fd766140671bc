// Weight prefetch into L2 on a side stream during the latency-bound kernels
// of a batch-1 decode step. A batch-1 MatMul knows its weights while the
// producer of its input (attention, a norm, SwiGLU) is still held
// (gpu_backend_fusion.cc): it forks the side stream from the main stream
// first (event record + wait), so the prefetch kernel runs beside the held
// kernel, which then launches on the main stream. The side stream joins the
// main one at the next flush (inside the capture, so every graph joins its
// branches). The prefetch writes nothing; the join only keeps graphs valid
// and frees (which flush and synchronize) ordered after it. On by default for
// K-quant weights (gpu_backend.h, SetWeightPrefetch).
#include <algorithm>

#include "engine/backend/gpu/gpu_backend.h"

namespace rocmforge {

void GpuBackend::SetWeightPrefetch(const WeightPrefetch& p) {
  EmitHeld();
  prefetch_ = p;
}

void GpuBackend::MaybePrefetchWeight(GgmlType type, const void* w, size_t bytes) {
  if (gpu::ActivationRule(type) != 2) return;  // K-quants only (measured; see SetWeightPrefetch)
  size_t limit = 0;
  if (held_attn_.valid) {
    limit = prefetch_.attention;
  } else if (held_.kind == HeldOp::kRmsNorm || held_.kind == HeldOp::kAddRmsNorm) {
    limit = prefetch_.after_norm;
  } else if (held_.kind == HeldOp::kSwiGLU) {
    limit = prefetch_.after_swiglu;
  }
  if (limit == 0 || w == nullptr || !gpu::L2PrefetchWorks()) return;
  if (side_stream_ == nullptr) {
    if (!gpu::StreamCreate(&side_stream_).ok || !gpu::EventCreateNoTiming(&fork_event_).ok ||
        !gpu::EventCreateNoTiming(&join_event_).ok) {
      prefetch_ = WeightPrefetch{0, 0, 0};  // no side stream: no prefetch
      return;
    }
  }
  const size_t n = std::min(bytes, limit);
  const gpu::Stream main = stream_, side = side_stream_;
  const gpu::Event fork = fork_event_, join = join_event_;
  EnqueueBeforeHeld(Sig(21, w, n), [=, this] {
    if (!gpu::EventRecord(fork, main).ok || !gpu::StreamWaitEvent(side, fork).ok) return;
    side_join_pending_ = true;
    gpu::LaunchPrefetchL2(w, n, side);
    (void)gpu::EventRecord(join, side);
  });
}

void GpuBackend::JoinSideStream() {
  if (!side_join_pending_) return;
  side_join_pending_ = false;
  (void)gpu::StreamWaitEvent(stream_, join_event_);
}

}  // namespace rocmforge
