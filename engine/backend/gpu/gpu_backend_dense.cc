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
//
// Gate / up + SwiGLU fusion (fuse_gate_up_swiglu): a dense matmul that could
// be a gate is held (after its f16 input is made); a next one of the same
// type and shape on the same x joins it; SwiGLU over both outputs then
// launches one GEMM over the interleaved pair with SwiGLU in its epilogue
// (writing the f16 input of the down projection into dense_ovl_.x16b). Any
// other op launches the held matmuls unchanged first (EmitHeld). A gate that
// was fused is remembered (dense_pairs_), so the fork before it dequantizes
// the interleaved pair.
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
  gpu::Free(x16b);
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
  dense_pf_pair_ = nullptr;
  x16_.x = nullptr;
}

void GpuBackend::DenseResident::Clear() {
  for (auto& [w, p] : w16) gpu::Free(p);
  for (auto& [w, p] : pair16) gpu::Free(p);
  w16.clear();
  pair16.clear();
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

size_t GpuBackend::UseSpareMemory(size_t spare_bytes) {
  // A tenth of headroom for what the fused GEMM and the allocator add.
  if (dense_resident_bytes_ == 0 || dense_resident_bytes_ + dense_resident_bytes_ / 10 > spare_bytes) return 0;
  SetDenseResidentF16(true);
  DensePrefillOptions o = dense_opts_;
  o.fuse_gate_up_swiglu = true;
  SetDensePrefill(o);
  // Process-wide, like every kernel shape knob: one worker drives one backend.
  gpu::DenseTileConfig tiles = gpu::GetDenseTileConfig();
  tiles.tile224 = 1;
  gpu::SetDenseTileConfig(tiles);
  return dense_resident_bytes_;
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

const uint16_t* GpuBackend::DenseResidentPairW16(GgmlType type, const void* gate, const void* up, int64_t rows,
                                                 int64_t cols) {
  if (!dense_res_.on || dense_res_.failed || defer_ || explicit_capture_) return nullptr;
  if (const auto it = dense_res_.pair16.find(gate); it != dense_res_.pair16.end()) {
    return static_cast<uint16_t*>(it->second);
  }
  if (loaded_weights_.count(gate) == 0 || loaded_weights_.count(up) == 0) return nullptr;
  void* p = nullptr;
  if (!gpu::Malloc(&p, 2 * gpu::MatMulDenseWeightBytes(type, rows, cols)).ok) {
    (void)gpu::LastLaunchError();
    dense_res_.failed = true;
    return nullptr;
  }
  dense_res_.pair16[gate] = p;
  const gpu::Stream st = stream_;
  Enqueue(Sig(73, type, gate, up, rows, cols, p), [=] {
    gpu::LaunchDequantizeF16Pair(type, gate, up, rows, cols, static_cast<uint16_t*>(p), 0, st);
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

bool GpuBackend::DensePairRoom(GgmlType type, int64_t rows, int64_t cols, int n) {
  if (type == GgmlType::F16 || type == GgmlType::F32 || !gpu::DequantizeF16Supported(type)) return false;
  const size_t wb = 2 * gpu::MatMulDenseWeightBytes(type, rows, cols);
  const size_t ob = gpu::MatMulDenseActivationBytes(rows, n);
  // Grow flushes and syncs: nothing of this matmul is held yet, and a side
  // stream still writing the old buffers is joined first (Flush).
  // (Buffer 1 follows buffer 0's size in DenseOverlapReady.)
  if (wb > dense_w16_cap_ && !Grow(&dense_w16_, &dense_w16_cap_, wb).ok()) return false;
  if (ob > dense_ovl_.x16b_cap) {
    if (x16_.buf == dense_ovl_.x16b) x16_.x = nullptr;  // a new buffer holds no f16 copy
    if (!Grow(&dense_ovl_.x16b, &dense_ovl_.x16b_cap, ob).ok()) return false;
  }
  return true;
}

void GpuBackend::EmitHeldDense() {
  if (held_dense_.count == 0) return;
  const HeldDense h = held_dense_;
  held_dense_.count = 0;  // before Enqueue, which emits what is held first
  for (int i = 0; i < h.count; ++i) EnqueueDenseGemm(h.parts[i]);
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
    dense_pf_pair_ = nullptr;
    return false;
  }
  // The up of a held gate: same type and shape, same x (its f16 copy still
  // valid), an output apart from the gate's and from x.
  if (held_dense_.count == 1) {
    const DenseGemmJob& g = held_dense_.parts[0];
    const bool apart = !Overlaps(y, y_vals, g.y, y_vals) && !Overlaps(y, y_vals, x, x_vals);
    if (g.type == type && g.rows == rows && g.cols == cols && g.n == n && held_dense_.x == x && g.w != wd && apart &&
        X16Valid(x, n, cols, g.x16)) {
      DenseGemmJob u = g;
      u.w = wd;
      u.y = y;
      held_dense_.parts[1] = u;
      held_dense_.count = 2;
      ++dense_stats_.x16_reused;
      x16_ = X16Cache{x, n, cols, g.x16, dense_drops_, dense_calls_};
      X16NoteWrite(y, y_vals);
      return true;
    }
  }
  EmitHeldDense();
  const bool overlap = DenseOverlapReady();  // may flush (first use only)
  const gpu::Stream st = stream_;
  uint16_t* x16 = static_cast<uint16_t*>(dense.x16);

  // 1. f16 activations: the fused gate / up + SwiGLU GEMM's f16 output, a
  // reused conversion, a producer writing f16, or a conversion.
  if (dense_ovl_.x16b != nullptr && X16Valid(x, n, cols, dense_ovl_.x16b) &&
      gpu::MatMulDenseActivationBytes(cols, n) <= dense_ovl_.x16b_cap) {
    x16 = static_cast<uint16_t*>(dense_ovl_.x16b);
    ++dense_stats_.f16_produced;
  } else if (o.reuse_x16 && X16Valid(x, n, cols, x16)) {
    ++dense_stats_.x16_reused;
  } else if (o.f16_producers && EmitHeldAsF16(x, n, cols, x16)) {
    ++dense_stats_.f16_produced;
  } else {
    Enqueue(Sig(60, x, x_vals, x16), [=] { gpu::LaunchConvertF16(x, x_vals, x16, st); });
  }
  x16_ = X16Cache{x, n, cols, x16, dense_drops_, dense_calls_};

  if (loaded_weights_n_ != weights_.size()) {
    loaded_weights_.clear();
    loaded_weights_.insert(weights_.begin(), weights_.end());
    loaded_weights_n_ = weights_.size();
  }
  DenseGemmJob j;
  j.type = type;
  j.w = wd;
  j.rows = rows;
  j.cols = cols;
  j.x16 = x16;
  j.y = y;
  j.n = n;
  j.prepared = dense.operands_prepared;
  j.overlap = overlap;
  // 2. A gate candidate is held (everything held before it launches first).
  if (o.fuse_gate_up_swiglu && x16 == dense.x16 && DensePairRoom(type, rows, cols, n)) {
    EmitHeld();
    j.overlap = DenseOverlapReady();  // buffer 1 may have grown with DensePairRoom
    held_dense_.count = 1;
    held_dense_.parts[0] = j;
    held_dense_.x = x;
    X16NoteWrite(y, y_vals);
    return true;
  }
  EnqueueDenseGemm(j);
  X16NoteWrite(y, y_vals);
  return true;
}

bool GpuBackend::FuseHeldGateUpSwiGLU(const float* gate, const float* up, float* out, int64_t total) {
  if (held_dense_.count != 2) return false;
  const DenseGemmJob& g = held_dense_.parts[0];
  const DenseGemmJob& u = held_dense_.parts[1];
  const int64_t vals = static_cast<int64_t>(g.n) * g.rows;
  if (g.y != gate || u.y != up || total != vals) return false;
  // out is gate, up, or apart from both (each element is read and written by
  // one thread of the epilogue; partial overlaps would not be).
  const bool out_gate = out == gate, out_up = out == up;
  if (!out_gate && !out_up && (Overlaps(out, vals, gate, vals) || Overlaps(out, vals, up, vals))) return false;
  if (dense_ovl_.x16b == nullptr || gpu::MatMulDenseActivationBytes(g.rows, g.n) > dense_ovl_.x16b_cap) return false;
  DenseGemmJob j = g;
  j.w_up = u.w;
  j.y = out;
  j.out16 = static_cast<uint16_t*>(dense_ovl_.x16b);
  const bool unwritten = dense_opts_.fused_gate_up_unwritten;
  j.gate = out_gate || unwritten ? nullptr : g.y;  // the held matmuls' outputs (== gate, up)
  j.up = out_up || unwritten ? nullptr : u.y;
  held_dense_.count = 0;
  dense_pairs_[g.w] = u.w;
  EnqueueDenseGemm(j);
  ++dense_stats_.swiglu_fused;
  // The down projection reads out: its f16 copy is in x16b (the drop of this
  // SwiGLU is counted; the down MatMul's drop and call follow).
  X16NoteWrite(out, vals);
  x16_ = X16Cache{out, g.n, g.rows, dense_ovl_.x16b, dense_drops_, dense_calls_};
  return true;
}

void GpuBackend::EnqueueDenseGemm(const DenseGemmJob& j) {
  const gpu::Stream st = stream_;
  const bool pair = j.w_up != nullptr;
  const GgmlType type = j.type;
  const int64_t rows = j.rows, cols = j.cols;
  const bool overlap = j.overlap;

  // 2. f16 weights: in place (F16), resident (SetDenseResidentF16), dequantized
  // by the side stream (a hit), or here.
  const uint16_t* w16 = static_cast<const uint16_t*>(j.w);
  const uint16_t* resident = nullptr;
  if (type != GgmlType::F16) {
    resident = pair ? DenseResidentPairW16(type, j.w, j.w_up, rows, cols) : DenseResidentW16(type, j.w, rows, cols);
  }
  int used = -1;
  if (resident != nullptr) {
    w16 = resident;
  } else if (type != GgmlType::F16) {
    const bool hit = overlap && dense_pf_.w == j.w && dense_pf_pair_ == j.w_up && dense_pf_.type == type &&
                     dense_pf_.rows == rows && dense_pf_.cols == cols && dense_pf_buf_ >= 0 &&
                     dense_pf_caps_[0] == dense_w16_cap_ && dense_pf_caps_[1] == dense_ovl_.w16b_cap;
    if (hit) {
      used = dense_pf_buf_;
      const gpu::Event done = dense_ovl_.side_done;
      Enqueue(Sig(61, done), [=] { (void)gpu::StreamWaitEvent(st, done); });
      ++dense_stats_.prefetch_hits;
    } else {
      // Not the buffer the side stream may still be writing.
      used = overlap && dense_pf_buf_ >= 0 ? 1 - dense_pf_buf_ : 0;
      void* const dst = DenseW16(used);
      const void* wd = j.w;
      const void* wu = j.w_up;
      if (pair) {
        Enqueue(Sig(69, type, wd, wu, rows, cols, dst), [=] {
          gpu::LaunchDequantizeF16Pair(type, wd, wu, rows, cols, static_cast<uint16_t*>(dst), 0, st);
        });
      } else {
        Enqueue(Sig(62, type, wd, rows, cols, dst), [=] {
          gpu::LaunchDequantizeF16(type, wd, rows, cols, static_cast<uint16_t*>(dst), st);
        });
      }
      if (overlap) ++dense_stats_.prefetch_misses;
    }
    w16 = static_cast<const uint16_t*>(DenseW16(used));
    dense_pf_ = DenseWeightRef{};
    dense_pf_pair_ = nullptr;
  }

  // 3. Fork the next dense matmul's dequantization beside this GEMM: walk the
  // learned order of batched matmuls (DenseScratchFor) from this one (a
  // pair: from its up) to the first that would take the dense path under
  // this call's rules (which matmuls do depends on n and the options: the
  // small Q4_K ones from 1024 tokens or with dense_small_q4k), and dequantize
  // it unless it is F16; a gate fused before, as its interleaved pair.
  DenseWeightRef next;
  const void* next_up = nullptr;
  if (overlap && resident == nullptr) {
    const void* at = pair ? j.w_up : j.w;
    for (int hop = 0; hop < kMaxOrderHops; ++hop) {
      const auto it = next_dense_.find(at);
      if (it == next_dense_.end() || it->second.w == j.w) break;
      const DenseWeightRef& c = it->second;
      const size_t wb = gpu::MatMulDenseWeightBytes(c.type, c.rows, c.cols);
      if (gpu::MatMulDenseSuitsPrepared(c.type, c.w, c.rows, c.cols, j.n, j.prepared) && wb <= dense_w16_cap_) {
        if (c.type != GgmlType::F16 && gpu::DequantizeF16Supported(c.type) && loaded_weights_.count(c.w) != 0 &&
            wb <= dense_ovl_.w16b_cap) {
          next = c;
          const auto p = dense_pairs_.find(c.w);
          if (dense_opts_.fuse_gate_up_swiglu && p != dense_pairs_.end() && 2 * wb <= dense_w16_cap_ &&
              2 * wb <= dense_ovl_.w16b_cap && loaded_weights_.count(p->second) != 0) {
            next_up = p->second;
          }
        }
        break;
      }
      at = c.w;
    }
  }
  const uint16_t* const x16 = j.x16;
  float* const y = j.y;
  const int n = j.n;
  const int64_t gemm_rows = pair ? 2 * rows : rows;
  uint16_t* const out16 = j.out16;
  float* const gate = j.gate;
  float* const up = j.up;
  auto gemm = [=](gpu::Stream s) {
    if (pair) {
      gpu::LaunchGemmF16SwiGLU(w16, gemm_rows, cols, x16, y, out16, gate, up, n, s);
    } else {
      gpu::LaunchGemmF16(w16, rows, cols, x16, y, n, s);
    }
  };
  const bool fork = overlap && next.w != nullptr;
  if (fork) {
    const int target = used >= 0 ? 1 - used : (dense_pf_buf_ >= 0 ? dense_pf_buf_ : 1);
    void* const dst = DenseW16(target);
    const gpu::Stream side = side_stream_, hi = dense_ovl_.gemm;
    const gpu::Event before = dense_ovl_.before_gemm, after = dense_ovl_.after_gemm, done = dense_ovl_.side_done,
                     join = join_event_;
    Enqueue(Sig(63, w16, gemm_rows, cols, x16, y, n, out16, gate, up, next.type, next.w, next_up, next.rows,
                next.cols, dst),
            [=, this] {
              (void)gpu::EventRecord(before, st);
              (void)gpu::StreamWaitEvent(hi, before);
              gemm(hi);  // first: its blocks are dispatched first
              (void)gpu::EventRecord(after, hi);
              (void)gpu::StreamWaitEvent(side, before);
              // One row per block: short blocks, so SMs the GEMM frees go back to it.
              if (next_up != nullptr) {
                gpu::LaunchDequantizeF16Pair(next.type, next.w, next_up, next.rows, next.cols,
                                             static_cast<uint16_t*>(dst), 2 * next.rows, side);
              } else {
                gpu::LaunchDequantizeF16Blocks(next.type, next.w, next.rows, next.cols, static_cast<uint16_t*>(dst),
                                               next.rows, side);
              }
              (void)gpu::EventRecord(done, side);
              (void)gpu::EventRecord(join, side);  // joined by the main stream at the next flush
              side_join_pending_ = true;
              (void)gpu::StreamWaitEvent(st, after);
            });
    dense_pf_ = next;
    dense_pf_pair_ = next_up;
    dense_pf_buf_ = target;
    dense_pf_caps_[0] = dense_w16_cap_;
    dense_pf_caps_[1] = dense_ovl_.w16b_cap;
  } else {
    Enqueue(Sig(64, w16, gemm_rows, cols, x16, y, n, out16, gate, up), [=] { gemm(st); });
  }
}

}  // namespace rocmforge
