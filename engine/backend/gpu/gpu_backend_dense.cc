// Dense prefill path extras (GpuBackend::SetDensePrefill), all off by default:
// one f16 conversion per matmul input, producers (RMSNorm, AddRmsNorm, SwiGLU)
// that write the f16 copy themselves, and the next dense matmul's weights
// dequantized on a side stream while the current GEMM runs. Each runs the
// kernels of the plain path on the same values, so results are bit-identical
// to gpu::LaunchMatMulDense's; only what is launched, and on which stream,
// changes.
//
// Overlap, per dense matmul i of weight W (buffers 0 = dense_w16_, 1 =
// dense_ovl_.w16b):
//   main: [convert x | reuse] [dequantize W into u | wait side_done (hit)]
//         record before_gemm ... wait after_gemm
//   gemm (high priority): wait before_gemm, GEMM_i (reads buffer u), record after_gemm
//   side: wait before_gemm, dequantize next(W) into 1 - u, record side_done / join
// The side stream writes buffer 1 - u only after before_gemm, i.e. after every
// earlier GEMM (main waited for each) has finished reading it; GEMM_i is
// dispatched first (higher priority), the dequantization fills the SMs it
// leaves idle and the time until the next GEMM, which waits for side_done.
// next(W) is the first matmul after W last time (a forward's matmuls repeat
// in order) that takes the dense path under the current call's rules; the
// order is learned over every batched matmul, dense or not, so it holds when
// n or the options change which ones are dense. A wrong guess costs a wasted
// dequantization only.
#include <algorithm>

#include "engine/backend/gpu/gpu_backend.h"

namespace rocmforge {

namespace {
// Matmuls the fork looks ahead past ones that stay off the dense path (a
// Llama layer has at most 2 in a row: K and V).
constexpr int kMaxOrderHops = 8;
bool Overlaps(const float* a, int64_t na, const float* b, int64_t nb) { return a < b + nb && b < a + na; }
}  // namespace

GpuBackend::DenseOverlapRes::~DenseOverlapRes() {
  gpu::Free(w16b);
  if (gemm != nullptr) gpu::StreamDestroy(gemm);
  for (gpu::Event e : {before_gemm, after_gemm, side_done}) {
    if (e != nullptr) gpu::EventDestroy(e);
  }
}

void GpuBackend::SetDensePrefill(const DensePrefillOptions& o) {
  EmitHeld();
  // A side-stream dequantization still running must finish before the plain
  // path (or a changed plan) writes the buffers.
  JoinSideStream();
  dense_opts_ = o;
  dense_pf_ = DenseWeightRef{};
  x16_.x = nullptr;
}

void GpuBackend::DenseResident::Clear() {
  for (auto& [w, p] : w16) gpu::Free(p);
  w16.clear();
}

void GpuBackend::SetDenseResidentF16(bool on) {
  EmitHeld();
  JoinSideStream();
  if (!on) {
    (void)Flush();
    (void)gpu::StreamSync(stream_);  // no queued GEMM may still read a copy
    dense_res_.Clear();
  }
  dense_res_.on = on;
  dense_res_.failed = false;
}

const uint16_t* GpuBackend::DenseResidentW16(GgmlType type, const void* w, int64_t rows, int64_t cols) {
  if (!dense_res_.on || dense_res_.failed || defer_ || explicit_capture_) return nullptr;
  if (const auto it = dense_res_.w16.find(w); it != dense_res_.w16.end()) return static_cast<uint16_t*>(it->second);
  if (loaded_weights_.count(w) == 0) return nullptr;  // only weights, which never change
  void* p = nullptr;
  if (!gpu::Malloc(&p, gpu::MatMulDenseWeightBytes(type, rows, cols)).ok) {
    (void)gpu::LastLaunchError();  // the failed allocation is answered here
    dense_res_.failed = true;
    return nullptr;
  }
  dense_res_.w16[w] = p;
  const gpu::Stream st = stream_;
  Enqueue(Sig(68, type, w, rows, cols, p), [=] {
    gpu::LaunchDequantizeF16(type, w, rows, cols, static_cast<uint16_t*>(p), st);
  });
  return static_cast<uint16_t*>(p);
}

bool GpuBackend::X16Valid(const float* x, int n, int64_t cols, const void* buf) const {
  return x16_.x != nullptr && x16_.x == x && x16_.n == n && x16_.cols == cols && x16_.buf == buf &&
         dense_drops_ - x16_.drops == dense_calls_ - x16_.calls;
}

void GpuBackend::X16NoteWrite(const float* p, int64_t count) {
  if (x16_.x != nullptr && Overlaps(p, count, x16_.x, static_cast<int64_t>(x16_.n) * x16_.cols)) x16_.x = nullptr;
}

bool GpuBackend::DenseOverlapReady() {
  if (!dense_opts_.overlap_dequant || dense_w16_ == nullptr) return false;
  DenseOverlapRes& r = dense_ovl_;
  bool ok = true;
  if (r.gemm == nullptr) {
    ok = gpu::StreamCreateHighPriority(&r.gemm).ok && gpu::EventCreateNoTiming(&r.before_gemm).ok &&
         gpu::EventCreateNoTiming(&r.after_gemm).ok && gpu::EventCreateNoTiming(&r.side_done).ok;
  }
  if (ok && side_stream_ == nullptr) {  // shared with the weight prefetch (gpu_backend_prefetch.cc)
    ok = gpu::StreamCreate(&side_stream_).ok && gpu::EventCreateNoTiming(&fork_event_).ok &&
         gpu::EventCreateNoTiming(&join_event_).ok;
  }
  // Buffer 1 as large as buffer 0 (a flush and sync when it grows: the first
  // large matmul, or after a larger weight was loaded).
  if (ok && r.w16b_cap < dense_w16_cap_) ok = Grow(&r.w16b, &r.w16b_cap, dense_w16_cap_).ok();
  if (!ok) dense_opts_.overlap_dequant = false;  // no streams or memory: the serial order
  return ok;
}

bool GpuBackend::EmitHeldAsF16(const float* x, int n, int64_t cols, uint16_t* x16) {
  const HeldOp h = held_;
  if (h.kind == HeldOp::kNone || held_attn_.valid || n_held_rope_ != 0 || mv_group_.n_parts != 0 ||
      gemm_group_.n_parts != 0) {
    return false;
  }
  if (h.out != x || h.total != static_cast<int64_t>(n) * cols) return false;
  const gpu::Stream st = stream_;
  switch (h.kind) {
    case HeldOp::kRmsNorm:
    case HeldOp::kAddRmsNorm:
      if (h.dim != cols || h.n != n || !gpu::RmsNormF16Supported(h.dim)) return false;
      held_.kind = HeldOp::kNone;  // before Enqueue, which emits what is held first
      if (h.kind == HeldOp::kRmsNorm) {
        Enqueue(Sig(65, h.x, h.w, h.out, h.n, h.dim, h.eps, x16),
                [=] { gpu::LaunchRmsNormF16(h.x, h.w, h.out, x16, h.n, h.dim, h.eps, st); });
      } else {
        Enqueue(Sig(66, h.x, h.y, h.w, h.out, h.n, h.dim, h.eps, x16),
                [=] { gpu::LaunchAddRmsNormF16(h.x, h.y, h.w, h.out, x16, h.n, h.dim, h.eps, st); });
      }
      return true;
    case HeldOp::kSwiGLU:
      held_.kind = HeldOp::kNone;
      Enqueue(Sig(67, h.x, h.y, h.out, h.total, x16),
              [=] { gpu::LaunchSwiGLUF16(h.x, h.y, h.out, x16, h.total, st); });
      return true;
    default:
      return false;
  }
}

bool GpuBackend::EnqueueDenseMatMul(GgmlType type, const void* wd, int64_t rows, int64_t cols, const float* x,
                                    float* y, int n, const gpu::DenseScratch& dense) {
  const int64_t x_vals = static_cast<int64_t>(n) * cols, y_vals = static_cast<int64_t>(n) * rows;
  const DensePrefillOptions o = dense_opts_;
  if (!gpu::MatMulDenseTakes(type, wd, rows, cols, n, dense)) {
    X16NoteWrite(y, y_vals);
    return false;
  }
  if ((!o.reuse_x16 && !o.f16_producers && !o.overlap_dequant) || defer_ || explicit_capture_) {
    // gpu::LaunchMatMul's dense path converts into dense.x16 and dequantizes
    // into buffer 0 (inside a capture the side stream was joined at its start).
    x16_.x = nullptr;
    dense_pf_ = DenseWeightRef{};
    return false;
  }
  const bool overlap = DenseOverlapReady();  // may flush (first use only)
  const gpu::Stream st = stream_;
  uint16_t* const x16 = static_cast<uint16_t*>(dense.x16);

  // 1. f16 activations.
  if (o.reuse_x16 && X16Valid(x, n, cols, x16)) {
    ++dense_stats_.x16_reused;
  } else if (o.f16_producers && EmitHeldAsF16(x, n, cols, x16)) {
    ++dense_stats_.f16_produced;
  } else {
    Enqueue(Sig(60, x, x_vals, x16), [=] { gpu::LaunchConvertF16(x, x_vals, x16, st); });
  }
  x16_ = X16Cache{x, n, cols, x16, dense_drops_, dense_calls_};

  // 2. f16 weights: in place (F16), resident (SetDenseResidentF16), dequantized
  // by the side stream (a hit), or here.
  if (loaded_weights_n_ != weights_.size()) {
    loaded_weights_.clear();
    loaded_weights_.insert(weights_.begin(), weights_.end());
    loaded_weights_n_ = weights_.size();
  }
  const uint16_t* w16 = static_cast<const uint16_t*>(wd);
  const uint16_t* const resident = type != GgmlType::F16 ? DenseResidentW16(type, wd, rows, cols) : nullptr;
  int used = -1;
  if (resident != nullptr) {
    w16 = resident;
  } else if (type != GgmlType::F16) {
    const bool hit = overlap && dense_pf_.w == wd && dense_pf_.type == type && dense_pf_.rows == rows &&
                     dense_pf_.cols == cols && dense_pf_buf_ >= 0 && dense_pf_caps_[0] == dense_w16_cap_ &&
                     dense_pf_caps_[1] == dense_ovl_.w16b_cap;
    if (hit) {
      used = dense_pf_buf_;
      const gpu::Event done = dense_ovl_.side_done;
      Enqueue(Sig(61, done), [=] { (void)gpu::StreamWaitEvent(st, done); });
      ++dense_stats_.prefetch_hits;
    } else {
      // Not the buffer the side stream may still be writing.
      used = overlap && dense_pf_buf_ >= 0 ? 1 - dense_pf_buf_ : 0;
      void* const dst = DenseW16(used);
      Enqueue(Sig(62, type, wd, rows, cols, dst), [=] {
        gpu::LaunchDequantizeF16(type, wd, rows, cols, static_cast<uint16_t*>(dst), st);
      });
      if (overlap) ++dense_stats_.prefetch_misses;
    }
    w16 = static_cast<const uint16_t*>(DenseW16(used));
    dense_pf_ = DenseWeightRef{};
  }

  // 3. Fork the next dense matmul's dequantization beside this GEMM: walk the
  // learned order of batched matmuls (DenseScratchFor) from this one to the
  // first that would take the dense path under this call's rules (which
  // matmuls do depends on n and the options: the small Q4_K ones from 1024
  // tokens or with dense_small_q4k), and dequantize it unless it is F16.
  DenseWeightRef next;
  if (overlap && resident == nullptr) {
    const void* at = wd;
    for (int hop = 0; hop < kMaxOrderHops; ++hop) {
      const auto it = next_dense_.find(at);
      if (it == next_dense_.end() || it->second.w == wd) break;
      const DenseWeightRef& c = it->second;
      const size_t wb = gpu::MatMulDenseWeightBytes(c.type, c.rows, c.cols);
      if (gpu::MatMulDenseSuitsPrepared(c.type, c.w, c.rows, c.cols, n, dense.operands_prepared) &&
          wb <= dense_w16_cap_) {
        if (c.type != GgmlType::F16 && gpu::DequantizeF16Supported(c.type) && loaded_weights_.count(c.w) != 0 &&
            wb <= dense_ovl_.w16b_cap) {
          next = c;
        }
        break;
      }
      at = c.w;
    }
  }
  const bool fork = overlap && next.w != nullptr;
  if (fork) {
    const int target = used >= 0 ? 1 - used : (dense_pf_buf_ >= 0 ? dense_pf_buf_ : 1);
    void* const dst = DenseW16(target);
    const gpu::Stream side = side_stream_, hi = dense_ovl_.gemm;
    const gpu::Event before = dense_ovl_.before_gemm, after = dense_ovl_.after_gemm, done = dense_ovl_.side_done,
                     join = join_event_;
    Enqueue(Sig(63, w16, rows, cols, x16, y, n, next.type, next.w, next.rows, next.cols, dst), [=, this] {
      (void)gpu::EventRecord(before, st);
      (void)gpu::StreamWaitEvent(hi, before);
      gpu::LaunchGemmF16(w16, rows, cols, x16, y, n, hi);  // first: its blocks are dispatched first
      (void)gpu::EventRecord(after, hi);
      (void)gpu::StreamWaitEvent(side, before);
      // One row per block: short blocks, so SMs the GEMM frees go back to it.
      gpu::LaunchDequantizeF16Blocks(next.type, next.w, next.rows, next.cols, static_cast<uint16_t*>(dst),
                                     next.rows, side);
      (void)gpu::EventRecord(done, side);
      (void)gpu::EventRecord(join, side);  // joined by the main stream at the next flush
      side_join_pending_ = true;
      (void)gpu::StreamWaitEvent(st, after);
    });
    dense_pf_ = next;
    dense_pf_buf_ = target;
    dense_pf_caps_[0] = dense_w16_cap_;
    dense_pf_caps_[1] = dense_ovl_.w16b_cap;
  } else {
    Enqueue(Sig(64, w16, rows, cols, x16, y, n), [=] { gpu::LaunchGemmF16(w16, rows, cols, x16, y, n, st); });
  }
  X16NoteWrite(y, y_vals);
  return true;
}

}  // namespace rocmforge
