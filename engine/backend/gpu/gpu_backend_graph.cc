// Automatic graphs for decode steps: ops are recorded with a byte signature of
// their arguments instead of being launched; at the first synchronising call the
// whole recorded sequence runs as one graph launch. A sequence seen before (same
// ops, same buffers, same shapes: every decode step of a model with the same
// token count within one 256-position attention bucket) replays its
// instantiated graph, so a step costs one launch instead of hundreds. Step
// metadata lives at fixed device addresses (gpu_backend_step.cc), which is
// what makes replay valid.
#include <algorithm>
#include <functional>
#include <string_view>
#include <utility>

#include "engine/backend/gpu/gpu_backend.h"
#include "engine/common/status_macros.h"

namespace rocmforge {

namespace {
// Graphs kept (least recently used goes): a worker's decode steps take every
// size up to the graph limit as sequences come and go, each its own graph
// (~400 nodes), times a few attention buckets, and each step is two graphs
// (its first segment and the rest).
constexpr size_t kMaxCachedGraphs = 64;
}

void GpuBackend::EmitMatVecGroup() {
  if (mv_group_.n_parts == 0) return;
  const MatVecGroup g = mv_group_;
  mv_group_.n_parts = 0;  // before Enqueue, which emits an open group first
  if (g.norm_x != nullptr) {
    EnqueueNormInGroup(g, nullptr);
    return;
  }
  if (g.n_a > 0) {
    EnqueueMixedGroup(g, nullptr, 0, 0);
    return;
  }
  const gpu::Stream st = stream_;
  SigBuf sig = Sig(14, g.type, g.cols, g.xq, g.n_parts) + PartsSig(g);
  if (g.add_to != nullptr) {
    Enqueue(sig + Sig(74, g.add_to),
            [=] { gpu::LaunchMatVecQuantizedAddTo(g.type, g.cols, g.xq, g.parts[0], g.add_to, st); });
    return;
  }
  Enqueue(std::move(sig), [=] {
    gpu::LaunchMatVecQuantizedGroup(g.type, g.cols, g.xq, g.parts, g.n_parts, st);
  });
}

void GpuBackend::SetSkippedOpsForTiming(std::vector<int> tags) {
  EmitHeld();
  skipped_ops_ = std::move(tags);
}

bool GpuBackend::SkippedForTiming(const SigBuf& sig) const {
  return !skipped_ops_.empty() && std::find(skipped_ops_.begin(), skipped_ops_.end(), sig.tag()) != skipped_ops_.end();
}

void GpuBackend::SetStepGapProbe(bool on) {
  if (on && gap_.start == nullptr) {
    if (!gpu::EventCreate(&gap_.start).ok || !gpu::EventCreate(&gap_.end[0]).ok ||
        !gpu::EventCreate(&gap_.end[1]).ok) {
      return;  // no events: no probe
    }
  }
  gap_.on = on;
  gap_.started = gap_.ended = false;
  gap_.gaps_us.clear();
}

std::vector<float> GpuBackend::TakeStepGapsUs() { return std::exchange(gap_.gaps_us, {}); }

void GpuBackend::ProbeStepStart() {
  if (!gap_.on || gap_.started) return;
  gap_.started = gpu::EventRecord(gap_.start, stream_).ok;
}

void GpuBackend::ProbeSampleEnd() {
  if (gap_.on) (void)gpu::EventRecord(gap_.end[gap_.last_end ^ 1], stream_);
}

void GpuBackend::ProbeSampleDone() {
  if (!gap_.on) return;
  float ms = 0.0f;
  if (gap_.ended && gap_.started && gpu::EventElapsedMs(gap_.end[gap_.last_end], gap_.start, &ms).ok) {
    gap_.gaps_us.push_back(1e3f * ms);
  }
  gap_.last_end ^= 1;
  gap_.ended = true;
  gap_.started = false;  // the next step's first launch records again
}

bool GpuBackend::NothingHeld() const {
  return NothingHeldBehindGroup() && mv_group_.n_parts == 0 && held_dense_.count == 0;
}

void GpuBackend::MaybeLaunchFirstSegment() {
  if (segment_launched_ || first_segment_ops_ <= 0 || !defer_ || explicit_capture_ ||
      pending_.size() < static_cast<size_t>(first_segment_ops_) || !NothingHeld()) {
    return;
  }
  segment_launched_ = true;
  absl::Status st = Flush();
  if (!st.ok() && segment_status_.ok()) segment_status_ = std::move(st);
}

absl::Status GpuBackend::Flush() {
  EmitHeld();
  JoinSideStream();  // forks launched directly (no deferred step)
  if (!segment_status_.ok()) {  // the first segment's launch failed: report it once
    absl::Status st = std::move(segment_status_);
    segment_status_ = absl::OkStatus();
    pending_.Clear();
    pending_sig_.clear();
    return st;
  }
  if (pending_.empty()) return absl::OkStatus();
  pending_.swap(flushing_);
  pending_sig_.swap(flushing_sig_);
  absl::Status st = LaunchFlushing();
  flushing_.Clear();
  flushing_sig_.clear();
  return st;
}

absl::Status GpuBackend::LaunchFlushing() {
  ProbeStepStart();  // before any capture begins
  std::string& sig = flushing_sig_;
  // Launch settings read at launch time are part of what a graph captured:
  // a sequence recorded under other settings is another graph.
  const gpu::MatVecConfig mv = gpu::GetMatVecConfig();
  const gpu::GemmConfig gc = gpu::GetGemmConfig();
  const gpu::DenseGemmConfig dc = gpu::GetDenseGemmConfig();
  sig.append(Sig(30, gpu::GetPdl(), mv.threads_per_row, mv.pairs, mv.rows_per_thread, mv.prefetch_bytes,
                 gpu::GetAttentionMergeFold(), gc.token_tile, gc.blocks_per_sm, gc.narrow, gc.splits)
                 .view());
  sig.append(Sig(32, mv.stream, mv.stream_slots, mv.stream_slot_bytes, mv.stream_warps, mv.stream_blocks_per_sm,
                 mv.stream_early, gpu::GetSmemCarveout(), gpu::GetL2PrefetchChunk(),
                 gpu::GetL2PrefetchHighPriority(), mv.q6k_staged)
                 .view());
  for (int k = 0; k < gpu::MatVecConfig::kShapeClasses; ++k) {
    sig.append(Sig(33, k, mv.shape[k].tpr, mv.shape[k].rpt, mv.shape[k].pairs).view());
  }
  sig.append(Sig(31, dc.row_tile, dc.splits, dc.min_n, dc.k_step, dc.overlap, gpu::GetDenseWgmma()).view());
  // Newest first: a decode step replays the two graphs (segments) used last.
  const size_t hash = std::hash<std::string_view>{}(sig);
  for (size_t i = graphs_.size(); i-- > 0;) {
    if (graphs_[i].hash == hash && graphs_[i].sig == sig) {
      ++graphs_replayed_;
      std::rotate(graphs_.begin() + i, graphs_.begin() + i + 1, graphs_.end());  // most recent last
      return Check(gpu::GraphLaunch(graphs_.back().exec, stream_));
    }
  }
  gpu::GpuStatus st = gpu::BeginCapture(stream_);
  if (!st.ok) {  // cannot capture here: launch directly
    flushing_.RunAll();
    JoinSideStream();
    return absl::OkStatus();
  }
  flushing_.RunAll();
  JoinSideStream();  // the graph joins its prefetch branches
  gpu::GraphExec exec = nullptr;
  RF_RETURN_IF_ERROR(Check(gpu::EndCapture(stream_, &exec)));
  ++graphs_captured_;
  if (graphs_.size() >= kMaxCachedGraphs) {
    RF_RETURN_IF_ERROR(Check(gpu::StreamSync(stream_)));
    gpu::GraphDestroy(graphs_.front().exec);
    graphs_.erase(graphs_.begin());
  }
  graphs_.push_back(CachedGraph{hash, sig, exec});
  return Check(gpu::GraphLaunch(exec, stream_));
}

}  // namespace rocmforge
