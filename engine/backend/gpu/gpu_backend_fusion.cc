// Fusion of a decode step's small ops into their neighbours. The Backend
// interface issues one op at a time and does not say who reads an output, so
// the producers of matmul inputs (RmsNorm, AddRmsNorm, SwiGLU, Attention), the
// residual Add and the RoPEs are held back one op: the next op decides whether
// they launch fused (norm, SwiGLU or attention's split merge + activation
// quantization; Add + RmsNorm; RoPE Q + RoPE K + KV store) or unchanged. Every
// sync point (Enqueue of any other op, Flush, capture end) launches what is
// held first, so ops still run in issue order. With every fusion a Llama layer
// runs 10 kernels instead of 17. Fused results are bit-identical to unfused.
// kFuseMatVecRopeKv goes one further at batch 1: RoPE of Q and K and the KV
// store become the epilogue of the Q/K/V group matvec (9 kernels a layer).
#include <algorithm>
#include <initializer_list>
#include <string>

#include "engine/backend/gpu/gpu_backend.h"

namespace rocmforge {

namespace {
// The decode attention kernel choice is read at launch: part of what a graph
// captures (appended to the attention launches' signatures).
SigBuf DecodeAttnSig() {
  const gpu::DecodeAttnConfig c = gpu::GetDecodeAttnConfig();
  return SigBuf::Of(80, c.kernel, c.min_tokens, c.target_blocks, c.one_split_keys, c.one_split_warps);
}

// Floats a producer kernel reads or writes (p null: none).
struct FloatSpan {
  const float* p;
  int64_t n;
};

// The outputs of a GEMM's parts (n tokens) as spans for its producer to zero,
// or none where one would overlap what the producer reads or writes (the
// zeroing would race with it) or the parts outnumber ZeroSpans' slots.
gpu::ZeroSpans PartOutputsClearOf(const gpu::MatVecPart* parts, int n_parts, int n,
                                  std::initializer_list<FloatSpan> producer) {
  if (n_parts > gpu::ZeroSpans::kMax) return {};
  gpu::ZeroSpans z;
  for (int i = 0; i < n_parts; ++i) {
    float* const y = parts[i].y;
    const int64_t count = static_cast<int64_t>(n) * parts[i].rows;
    for (const FloatSpan& s : producer) {
      if (s.p != nullptr && Overlap(y, count, s.p, s.n)) return {};
    }
    z.p[z.n] = y;
    z.count[z.n++] = count;
  }
  return z;
}
}  // namespace

void GpuBackend::SetFusions(unsigned mask) {
  EmitHeld();
  fusions_ = mask & kAllFusions;
}

void GpuBackend::EmitHeld() {
  ++emit_depth_;
  EmitHeldImpl();
  --emit_depth_;
}

void GpuBackend::EmitHeldImpl() {
  EmitHeldDense();  // held dense matmuls (gate / up fusion) were issued before anything held now
  EmitHeldOp();
  if (ropes_after_group_) {
    // RoPEs held behind the open Q/K/V group (kFuseMatVecRopeKv) that did
    // not fuse: the group was issued first, so it launches first.
    ropes_after_group_ = false;
    const int count = n_held_rope_;
    n_held_rope_ = 0;  // the group's Enqueue emits what is held: not these
    EmitMatVecGroup();
    n_held_rope_ = count;
  }
  EmitHeldRopes();
  EmitMatVecGroup();
  EmitGemmGroup();
}

void GpuBackend::HoldOp(const HeldOp& op) {
  EmitHeld();
  held_ = op;
  if (fusions_ == 0) EmitHeldOp();  // launch at once, exactly as held ops are launched unfused
}

void GpuBackend::HoldAttention(const HeldAttention& a) {
  EmitHeld();
  held_attn_ = a;
  held_attn_.valid = true;
  if ((fusions_ & kFuseAttentionQuantize) == 0) EmitHeldOp();
}

void GpuBackend::EmitHeldOp() {
  if (held_attn_.valid) {
    const HeldAttention a = held_attn_;
    held_attn_.valid = false;
    const int n_kv = kv_.n_kv_heads, hd = kv_.head_dim, bs = kv_.block_size;
    const gpu::Stream st = stream_;
    Enqueue(Sig(10, a.q, a.out, a.b.token_seq, a.b.token_ctx, a.b.seq_table_off, a.b.block_tables,
                a.b.n_tokens, a.b.max_ctx, a.n_heads, a.scale, a.k_cache, a.v_cache, a.scratch) +
                DecodeAttnSig(),
            [=] {
              gpu::LaunchAttention(a.q, a.out, a.b, a.n_heads, n_kv, hd, a.scale, a.k_cache,
                                   a.v_cache, bs, a.scratch, st);
            });
  }
  if (held_.kind == HeldOp::kNone) return;
  const HeldOp h = held_;
  held_.kind = HeldOp::kNone;  // before Enqueue, which emits what is held first
  const gpu::Stream st = stream_;
  switch (h.kind) {
    case HeldOp::kRmsNorm:
      Enqueue(Sig(2, h.x, h.w, h.out, h.n, h.dim, h.eps),
              [=] { gpu::LaunchRmsNorm(h.x, h.w, h.out, h.n, h.dim, h.eps, st); });
      break;
    case HeldOp::kAddRmsNorm:
      Enqueue(Sig(3, h.x, h.y, h.w, h.out, h.n, h.dim, h.eps),
              [=] { gpu::LaunchAddRmsNorm(h.x, h.y, h.w, h.out, h.n, h.dim, h.eps, st); });
      break;
    case HeldOp::kSwiGLU:
      Enqueue(Sig(11, h.x, h.y, h.out, h.total),
              [=] { gpu::LaunchSwiGLU(h.x, h.y, h.out, h.total, st); });
      break;
    case HeldOp::kAdd:
      Enqueue(Sig(12, h.x, h.y, h.total), [=] { gpu::LaunchAdd(h.x, h.y, h.total, st); });
      break;
    case HeldOp::kNone:
      break;
  }
}

bool GpuBackend::EmitHeldFusedWithQuantize(GgmlType type, const float* x, int n, int64_t cols,
                                           void* xq) {
  if (held_attn_.valid) {  // only held with kFuseAttentionQuantize
    if (!HeldAttentionFusesWithQuantize(type, x, n, cols)) return false;
    const HeldAttention a = held_attn_;
    held_attn_.valid = false;
    EnqueueAttentionQuantize(a, type, xq, gpu::ZeroSpans{});
    return true;
  }
  if (!HeldFusesWithQuantize(type, x, n, cols)) return false;
  const HeldOp h = held_;
  held_.kind = HeldOp::kNone;
  EnqueueFusedProducer(h, type, xq, gpu::ZeroSpans{});
  return true;
}

bool GpuBackend::HeldAttentionFusesWithQuantize(GgmlType type, const float* x, int n, int64_t cols) const {
  const HeldAttention& a = held_attn_;
  return a.valid && a.out == x && a.b.n_tokens == n &&
         static_cast<int64_t>(a.n_heads) * kv_.head_dim == cols &&
         gpu::AttentionQuantizeSupported(type, a.n_heads, kv_.head_dim);
}

void GpuBackend::EnqueueAttentionQuantize(const HeldAttention& a, GgmlType type, void* xq,
                                          const gpu::ZeroSpans& z) {
  const int n_kv = kv_.n_kv_heads, hd = kv_.head_dim, bs = kv_.block_size;
  const gpu::Stream st = stream_;
  SigBuf zsig;  // empty without zeroing: the signature of the plain launch
  if (z.n > 0) zsig = Sig(21, z.n, z.p[0], z.p[1], z.p[2], z.count[0], z.count[1], z.count[2]);
  Enqueue(Sig(20, a.q, a.out, a.b.token_seq, a.b.token_ctx, a.b.seq_table_off, a.b.block_tables,
              a.b.n_tokens, a.b.max_ctx, a.n_heads, a.scale, a.k_cache, a.v_cache, a.scratch, type, xq) +
              DecodeAttnSig() + zsig,
          [=] {
            gpu::LaunchAttentionQuantize(a.q, a.out, a.b, a.n_heads, n_kv, hd, a.scale, a.k_cache,
                                         a.v_cache, bs, a.scratch, type, xq, st, z);
          });
}

gpu::ZeroSpans GpuBackend::AttentionZeroSpans(const GemmGroup& g, const HeldAttention& a) const {
  const int64_t qo = static_cast<int64_t>(a.b.n_tokens) * a.n_heads * kv_.head_dim;
  const int64_t scratch_floats = static_cast<int64_t>(
      gpu::AttentionScratchBytes(a.b.n_tokens, a.n_heads, kv_.head_dim, a.b.max_ctx) / sizeof(float));
  return PartOutputsClearOf(g.parts, g.n_parts, g.n,
                            {{a.q, qo}, {a.out, qo}, {static_cast<const float*>(a.scratch), scratch_floats}});
}

bool GpuBackend::HeldFusesWithQuantize(GgmlType type, const float* x, int n, int64_t cols) const {
  const HeldOp& h = held_;
  if (h.kind == HeldOp::kNone || h.out != x || h.total != static_cast<int64_t>(n) * cols) return false;
  if (h.kind == HeldOp::kRmsNorm || h.kind == HeldOp::kAddRmsNorm) {
    // Q8_K rule: at batch 1 its 256-wide group reductions sit in the one
    // block of the norm (a loss, see kFuseNormQuantizeK); a batch's rows are
    // separate blocks and the fusion saves the quantize kernel.
    const unsigned bit = gpu::ActivationRule(type) != 2 ? kFuseNormQuantize
                         : h.n == 1                     ? kFuseNormQuantizeK
                                                        : kFuseNormQuantizeKBatch;
    return (fusions_ & bit) != 0 && h.dim == cols && gpu::RmsNormQuantizeSupported(type, h.dim);
  }
  if (h.kind == HeldOp::kSwiGLU) {
    const int64_t group = gpu::ActivationRule(type) == 2 ? 256 : 32;
    return (fusions_ & kFuseSwiGLUQuantize) != 0 && h.total % group == 0;
  }
  return false;
}

void GpuBackend::EnqueueFusedProducer(const HeldOp& h, GgmlType type, void* xq, const gpu::ZeroSpans& z) {
  const gpu::Stream st = stream_;
  SigBuf zsig;
  if (z.n > 0) zsig = Sig(21, z.n, z.p[0], z.p[1], z.p[2], z.count[0], z.count[1], z.count[2]);
  // The norm kernel's layout is read at launch: part of what a graph captures.
  zsig += Sig(22, static_cast<int>(gpu::GetRmsNormQuantKernel()));
  if (h.kind == HeldOp::kRmsNorm) {
    Enqueue(Sig(16, h.x, h.w, h.out, h.n, h.dim, h.eps, type, xq) + zsig,
            [=] { gpu::LaunchRmsNormQuantize(h.x, h.w, h.out, h.n, h.dim, h.eps, type, xq, st, z); });
  } else if (h.kind == HeldOp::kAddRmsNorm) {
    Enqueue(Sig(17, h.x, h.y, h.w, h.out, h.n, h.dim, h.eps, type, xq) + zsig,
            [=] { gpu::LaunchAddRmsNormQuantize(h.x, h.y, h.w, h.out, h.n, h.dim, h.eps, type, xq, st, z); });
  } else if (h.kind == HeldOp::kSwiGLU) {
    Enqueue(Sig(18, h.x, h.y, h.out, h.total, type, xq) + zsig,
            [=] { gpu::LaunchSwiGLUQuantize(h.x, h.y, h.out, h.total, type, xq, st, z); });
  }
}

gpu::ZeroSpans GpuBackend::GroupZeroSpans(const GemmGroup& g, bool fused) const {
  const HeldOp& h = group_held_;
  if (fused) return PartOutputsClearOf(g.parts, g.n_parts, g.n, {{h.x, h.total}, {h.out, h.total}, {h.y, h.total}});
  return PartOutputsClearOf(g.parts, g.n_parts, g.n, {{g.x, static_cast<int64_t>(g.n) * g.cols}});
}

void GpuBackend::SetProducerZeroing(bool on) {
  EmitHeld();
  producer_zeroing_ = on;
}

void GpuBackend::EmitHeldRopes() {
  const int count = n_held_rope_;
  n_held_rope_ = 0;
  const gpu::Stream st = stream_;
  for (int i = 0; i < count; ++i) {
    const HeldRope r = held_rope_[i];
    Enqueue(Sig(8, r.x, r.positions, r.n, r.n_heads, r.head_dim, r.rot_dim, r.freq_base, r.neox),
            [=] {
              gpu::LaunchRope(r.x, r.positions, r.n, r.n_heads, r.head_dim, r.rot_dim, r.freq_base,
                              r.neox, st);
            });
  }
}

// ---- the ops that hold ----------------------------------------------------

void GpuBackend::RmsNorm(const float* x, const Weight& w, float* out, int n, int dim, float eps) {
  DropActivationCache();
  const auto* wd = static_cast<const float*>(w.data);
  const int64_t total = static_cast<int64_t>(n) * dim;
  const HeldOp a = held_;
  // Add(x, y) then RmsNorm(x) = AddRmsNorm(x, y): one pass over x fewer. The
  // fused kernel reads a row's x and y before writing it, so out may be x or y,
  // but must not partly overlap them.
  if ((fusions_ & kFuseAddRmsNorm) != 0 && a.kind == HeldOp::kAdd && a.x == x && a.total == total &&
      (out == x || out == a.y || (!Overlap(out, total, x, total) && !Overlap(out, total, a.y, total)))) {
    held_ = HeldOp{HeldOp::kAddRmsNorm, a.x, a.y, wd, out, n, dim, total, eps};
    return;
  }
  HoldOp(HeldOp{HeldOp::kRmsNorm, const_cast<float*>(x), nullptr, wd, out, n, dim, total, eps});
}

void GpuBackend::AddRmsNorm(float* x, const float* residual, const Weight& w, float* out, int n,
                            int dim, float eps) {
  DropActivationCache();
  const auto* wd = static_cast<const float*>(w.data);
  const int64_t total = static_cast<int64_t>(n) * dim;
  if (n == 1 && ResidualJoinsMatVec(x, residual, total)) {
    // The add rides on the matvec that wrote the residual; the norm stays
    // (held: it may go into the next group, kFuseNormMatVec).
    mv_group_.add_to = x;
    HoldOp(HeldOp{HeldOp::kRmsNorm, x, nullptr, wd, out, n, dim, total, eps});
    return;
  }
  HoldOp(HeldOp{HeldOp::kAddRmsNorm, x, residual, wd, out, n, dim, total, eps});
}

void GpuBackend::SwiGLU(const float* gate, const float* up, float* out, int64_t n) {
  DropActivationCache();
  // Held dense gate / up matmuls of these outputs: one GEMM with SwiGLU in its
  // epilogue (gpu_backend_dense.cc).
  if (FuseHeldGateUpSwiGLU(gate, up, out, n)) return;
  HoldOp(HeldOp{HeldOp::kSwiGLU, const_cast<float*>(gate), up, nullptr, out, 0, 0, n, 0.0f});
}

void GpuBackend::Add(float* x, const float* y, int64_t n) {
  DropActivationCache();
  if (ResidualJoinsMatVec(x, y, n)) {
    mv_group_.add_to = x;
    return;
  }
  HoldOp(HeldOp{HeldOp::kAdd, x, y, nullptr, x, 0, 0, n, 0.0f});
}

bool GpuBackend::ResidualJoinsMatVec(const float* x, const float* y, int64_t n) const {
  const MatVecGroup& g = mv_group_;
  // Nothing may be held behind the group: it launches first, and the add
  // with it, before whatever was issued after the matvec.
  return (fusions_ & kFuseResidualMatVec) != 0 && g.n_parts == 1 && g.add_to == nullptr &&
         g.norm_x == nullptr && g.parts[0].y == y && g.parts[0].rows == n && !Overlap(x, n, y, n) &&
         NothingHeldBehindGroup();
}

bool GpuBackend::NothingHeldBehindGroup() const {
  return held_.kind == HeldOp::kNone && !held_attn_.valid && n_held_rope_ == 0 && !ropes_after_group_ &&
         gemm_group_.n_parts == 0;
}

bool GpuBackend::HeldNormJoinsMatVec(GgmlType type, const float* x, int64_t cols, const void* w, const float* y,
                                     int64_t rows) const {
  const HeldOp& h = held_;
  if ((fusions_ & kFuseNormMatVec) == 0 || h.kind != HeldOp::kRmsNorm || h.out != x || h.n != 1 ||
      h.dim != cols || held_attn_.valid || n_held_rope_ != 0 || mv_group_.n_parts != 0 ||
      gemm_group_.n_parts != 0) {
    return false;
  }
  // Every block reads the norm's input while block 0 writes its output and
  // the group writes y: none may overlap it.
  if (Overlap(h.out, cols, h.x, cols) || TouchesNormIO(y, rows, h.x, h.out, cols)) return false;
  const gpu::MatVecPart probe{w, const_cast<float*>(y), rows};
  return gpu::MatVecNormInTakes(type, &probe, 1, cols, false);
}

bool GpuBackend::TouchesNormIO(const float* y, int64_t rows, const float* x, const float* out, int64_t cols) {
  return Overlap(y, rows, x, cols) || Overlap(y, rows, out, cols);
}

SigBuf GpuBackend::PartsSig(const MatVecGroup& g) {
  SigBuf sig;
  for (int i = 0; i < g.n_parts; ++i) sig += Sig(71, g.parts[i].w, g.parts[i].y, g.parts[i].rows);
  return sig;
}

SigBuf GpuBackend::RopeKvSig(const gpu::MatVecRopeKv& r) {
  return Sig(72, r.positions, r.slots, r.head_dim, r.rot_dim, r.freq_base, r.k_cache, r.v_cache);
}

void GpuBackend::EnqueueMixedGroup(const MatVecGroup& g, const gpu::MatVecRopeKv* rope, int n_heads, int n_kv) {
  const gpu::Stream st = stream_;
  SigBuf sig = Sig(75, g.type, g.type_b, g.cols, g.xq, g.n_parts, g.n_a) + PartsSig(g);
  const bool with_rope = rope != nullptr;
  const gpu::MatVecRopeKv r = with_rope ? *rope : gpu::MatVecRopeKv{};
  if (with_rope) sig += RopeKvSig(r);
  Enqueue(std::move(sig), [=] {
    if (gpu::LaunchMatVecMixedGroup(g.type, g.parts, g.n_a, g.type_b, g.parts[g.n_a], g.cols, g.xq,
                                    with_rope ? &r : nullptr, st)) {
      return;
    }
    // Settings the combined kernel does not plan: each type's group, then the
    // RoPE + KV store kernel the epilogue stood for.
    gpu::LaunchMatVecQuantizedGroup(g.type, g.cols, g.xq, g.parts, g.n_a, st);
    gpu::LaunchMatVecQuantizedGroup(g.type_b, g.cols, g.xq, g.parts + g.n_a, g.n_parts - g.n_a, st);
    if (with_rope) {
      gpu::LaunchRopeStoreKv(g.parts[0].y, g.parts[1].y, g.parts[2].y, r.positions, r.slots, 1, n_heads, n_kv,
                             r.head_dim, r.rot_dim, r.freq_base, false, r.k_cache, r.v_cache, st);
    }
  });
}

void GpuBackend::EnqueueNormInGroup(const MatVecGroup& g, const gpu::MatVecRopeKv* rope) {
  const gpu::Stream st = stream_;
  // (Tag 76: 73 is the dense gate / up + SwiGLU launch's.)
  SigBuf sig =
      Sig(76, g.type, g.cols, g.xq, g.n_parts, g.norm_x, g.norm_w, g.norm_out, g.norm_eps) + PartsSig(g);
  const bool with_rope = rope != nullptr;
  const gpu::MatVecRopeKv r = with_rope ? *rope : gpu::MatVecRopeKv{};
  if (with_rope) sig += RopeKvSig(r);
  Enqueue(std::move(sig), [=] {
    gpu::MatVecNormIn in;
    in.x = g.norm_x;
    in.w = g.norm_w;
    in.eps = g.norm_eps;
    in.out = g.norm_out;
    in.xq = const_cast<void*>(g.xq);
    if (gpu::LaunchMatVecGroupNormIn(g.type, g.cols, in, g.parts, g.n_parts, with_rope ? &r : nullptr, st)) return;
    // A group the bulk-copy kernel does not plan (MatVecNormInTakes saw only
    // the first part): the norm + quantize kernel, then the plain group.
    gpu::LaunchRmsNormQuantize(g.norm_x, g.norm_w, g.norm_out, 1, static_cast<int>(g.cols), g.norm_eps, g.type,
                               in.xq, st);
    if (with_rope) {
      gpu::LaunchMatVecQuantizedGroupRopeKv(g.type, g.cols, g.xq, g.parts, g.n_parts, r, st);
    } else {
      gpu::LaunchMatVecQuantizedGroup(g.type, g.cols, g.xq, g.parts, g.n_parts, st);
    }
  });
}

bool GpuBackend::RopeJoinsMatVecGroup(const HeldRope& r) const {
  const MatVecGroup& g = mv_group_;
  if ((fusions_ & kFuseMatVecRopeKv) == 0 || r.neox || r.n != 1 || n_tokens_ != 1 ||
      held_.kind != HeldOp::kNone || held_attn_.valid || g.n_parts != 3 || gemm_group_.n_parts != 0) {
    return false;
  }
  const int i = n_held_rope_;  // 0: RoPE of Q (part 0), 1: of K (part 1)
  if (i > 1 || (i == 1) != ropes_after_group_) return false;
  if (r.x != g.parts[i].y || g.parts[i].rows != static_cast<int64_t>(r.n_heads) * r.head_dim) return false;
  if (i == 1) {
    const HeldRope& q = held_rope_[0];
    if (q.head_dim != r.head_dim || q.rot_dim != r.rot_dim || q.freq_base != r.freq_base ||
        q.positions != r.positions) {
      return false;
    }
  }
  if (g.n_a > 0) {
    return g.n_a == 2 &&
           gpu::MatVecMixedGroupTakes(g.type, g.parts, 2, g.type_b, g.parts[2], g.cols, r.head_dim, r.rot_dim);
  }
  return gpu::MatVecGroupRopeKvSupported(g.type, g.cols, g.parts, g.n_parts, r.head_dim, r.rot_dim);
}

void GpuBackend::Rope(float* x, int n, int n_heads, int head_dim, int rot_dim, float freq_base,
                      RopeStyle style) {
  DropActivationCache();
  const HeldRope r{x, DevI32(layout_.positions), n, n_heads, head_dim, rot_dim, freq_base,
                   style == RopeStyle::kNeox};
  // Q and K of the open Q/K/V matvec group: held with the group, to become
  // its epilogue at StoreKv.
  if (RopeJoinsMatVecGroup(r)) {
    held_rope_[n_held_rope_++] = r;
    ropes_after_group_ = true;
    return;
  }
  if ((fusions_ & kFuseRopeStoreKv) != 0 && n_held_rope_ == 1 && held_.kind == HeldOp::kNone &&
      !held_attn_.valid && mv_group_.n_parts == 0) {
    const HeldRope& q = held_rope_[0];
    if (q.n == r.n && q.head_dim == r.head_dim && q.rot_dim == r.rot_dim &&
        q.freq_base == r.freq_base && q.neox == r.neox && q.positions == r.positions) {
      held_rope_[n_held_rope_++] = r;
      return;
    }
  }
  EmitHeld();
  held_rope_[0] = r;
  n_held_rope_ = 1;
  if ((fusions_ & kFuseRopeStoreKv) == 0) EmitHeldRopes();
}

void GpuBackend::StoreKv(int layer, const float* k, const float* v) {
  const int32_t* slots = DevI32(layout_.slots);
  const int n = n_tokens_, n_kv = kv_.n_kv_heads, hd = kv_.head_dim, kv_dim = n_kv * hd;
  uint16_t* kc = k_cache_[layer];
  uint16_t* vc = v_cache_[layer];
  const gpu::Stream st = stream_;
  if (ropes_after_group_ && n_held_rope_ == 2) {
    // Q/K/V group + RoPE of Q and K + this store: one launch, the rotation
    // and the f16 stores in the matvec's epilogue.
    const MatVecGroup g = mv_group_;
    const HeldRope r = held_rope_[1];
    if (g.n_parts == 3 && n == 1 && r.x == k && g.parts[1].y == k && g.parts[2].y == v &&
        g.parts[1].rows == kv_dim && g.parts[2].rows == kv_dim && r.n_heads == n_kv && r.head_dim == hd) {
      mv_group_.n_parts = 0;
      n_held_rope_ = 0;
      ropes_after_group_ = false;
      gpu::MatVecRopeKv e;
      e.positions = r.positions;
      e.slots = slots;
      e.head_dim = hd;
      e.rot_dim = r.rot_dim;
      e.freq_base = r.freq_base;
      e.k_cache = kc;
      e.v_cache = vc;
      if (g.norm_x != nullptr) {
        EnqueueNormInGroup(g, &e);
        return;
      }
      if (g.n_a > 0) {
        EnqueueMixedGroup(g, &e, held_rope_[0].n_heads, n_kv);
        return;
      }
      Enqueue(Sig(70, g.type, g.cols, g.xq, g.n_parts) + PartsSig(g) + RopeKvSig(e), [=] {
        gpu::LaunchMatVecQuantizedGroupRopeKv(g.type, g.cols, g.xq, g.parts, g.n_parts, e, st);
      });
      return;
    }
  }
  if (n_held_rope_ > 0) {
    // RoPE of K (and of Q before it) + this store as one kernel, when K is the
    // last rotated tensor and no two of q, k, v share memory (the fused
    // kernel does them in parallel).
    const HeldRope& kr = held_rope_[n_held_rope_ - 1];
    const HeldRope* qr = n_held_rope_ == 2 ? &held_rope_[0] : nullptr;
    const int64_t kv_vals = static_cast<int64_t>(n) * kv_dim;
    bool ok = kr.x == k && kr.n == n && kr.n_heads == n_kv && kr.head_dim == hd &&
              kr.rot_dim <= hd && kr.rot_dim % 2 == 0 && hd % 2 == 0 &&
              !Overlap(k, kv_vals, v, kv_vals);
    if (ok && qr != nullptr) {
      const int64_t q_vals = static_cast<int64_t>(n) * qr->n_heads * hd;
      ok = !Overlap(qr->x, q_vals, k, kv_vals) && !Overlap(qr->x, q_vals, v, kv_vals);
    }
    if (ok) {
      n_held_rope_ = 0;
      float* q = qr != nullptr ? qr->x : nullptr;
      const int n_q = qr != nullptr ? qr->n_heads : 0;
      float* kk = kr.x;
      const HeldRope r = kr;
      Enqueue(Sig(19, q, kk, v, r.positions, slots, n, n_q, n_kv, hd, r.rot_dim, r.freq_base,
                  r.neox, kc, vc),
              [=] {
                gpu::LaunchRopeStoreKv(q, kk, v, r.positions, slots, n, n_q, n_kv, hd, r.rot_dim,
                                       r.freq_base, r.neox, kc, vc, st);
              });
      return;
    }
  }
  Enqueue(Sig(9, k, v, slots, n, kv_dim, kc, vc),
          [=] { gpu::LaunchStoreKv(k, v, slots, n, kv_dim, kc, vc, st); });
}

}  // namespace rocmforge
