#include "engine/backend/gpu/gpu_backend.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/backend/gpu_backend_factory.h"
#include "engine/common/status_macros.h"

namespace rocmforge {

absl::StatusOr<std::unique_ptr<GpuBackend>> GpuBackend::Create(int device) {
  int count = 0;
  gpu::GpuStatus st = gpu::DeviceCount(&count);
  if (!st.ok || count == 0) {
    return absl::UnavailableError(absl::StrCat(
        "no ", gpu::RuntimeName(), " GPU found", st.ok ? "" : absl::StrCat(" (", st.message, ")"),
        "; use --device cpu"));
  }
  if (device < 0 || device >= count) {
    return absl::InvalidArgumentError(
        absl::StrCat("GPU device ", device, " requested but ", count, " present"));
  }
  std::unique_ptr<GpuBackend> b(new GpuBackend());
  b->device_ = device;
  RF_RETURN_IF_ERROR(b->Check(gpu::SetDevice(device)));
  RF_RETURN_IF_ERROR(b->Check(gpu::DeviceName(device, &b->device_name_)));
  RF_RETURN_IF_ERROR(b->Check(gpu::StreamCreate(&b->stream_)));
  return b;
}

absl::StatusOr<std::unique_ptr<Backend>> CreateGpuBackendOnDevice(int device) {
  RF_ASSIGN_OR_RETURN(std::unique_ptr<GpuBackend> b, GpuBackend::Create(device));
  return std::unique_ptr<Backend>(std::move(b));
}

absl::StatusOr<std::unique_ptr<Backend>> CreateGpuBackend() { return CreateGpuBackendOnDevice(0); }

GpuBackend::~GpuBackend() {
  (void)Flush();
  if (stream_ != nullptr) (void)gpu::StreamSync(stream_);
  DropGraphs();
  for (void* w : weights_) gpu::Free(w);
  for (uint16_t* p : k_cache_) gpu::Free(p);
  for (uint16_t* p : v_cache_) gpu::Free(p);
  gpu::Free(step_dev_);
  gpu::HostFree(step_host_);
  gpu::Free(matmul_scratch_);
  gpu::Free(dense_w16_);
  gpu::Free(dense_x16_);
  gpu::Free(attn_scratch_);
  gpu::Free(sample_scratch_);
  for (gpu::Event e : {gap_.start, gap_.end[0], gap_.end[1]}) {
    if (e != nullptr) gpu::EventDestroy(e);
  }
  gpu::Free(sample_io_dev_);
  gpu::HostFree(sample_io_host_);
  gpu::StreamDestroy(stream_);
  gpu::StreamDestroy(side_stream_);  // idle: Flush joined it, StreamSync waited
  gpu::EventDestroy(fork_event_);
  gpu::EventDestroy(join_event_);
}

absl::Status GpuBackend::Check(const gpu::GpuStatus& st) const {
  if (st.ok) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(gpu::RuntimeName(), " device ", device_, ": ", st.message));
}

absl::Status GpuBackend::GrowAttentionScratch(size_t bytes) {
  if (bytes == 0 || (bytes <= attn_scratch_cap_ && attn_scratch_ != nullptr)) return absl::OkStatus();
  RF_RETURN_IF_ERROR(Grow(&attn_scratch_, &attn_scratch_cap_, bytes));
  // A new buffer: zero its split counters before any attention launch uses it.
  return Check(gpu::AttentionScratchInit(attn_scratch_, attn_scratch_cap_, stream_));
}

absl::Status GpuBackend::Grow(void** buf, size_t* cap, size_t bytes) {
  if (bytes <= *cap && *buf != nullptr) return absl::OkStatus();
  RF_RETURN_IF_ERROR(Flush());  // deferred ops may still name the old buffer
  RF_RETURN_IF_ERROR(Check(gpu::StreamSync(stream_)));
  gpu::Free(*buf);
  *buf = nullptr;
  *cap = 0;
  const size_t want = std::max<size_t>(bytes, 256);
  gpu::GpuStatus st = gpu::Malloc(buf, want);
  if (!st.ok) {
    return absl::ResourceExhaustedError(absl::StrCat("GPU scratch of ", want, " bytes: ", st.message));
  }
  *cap = want;
  return absl::OkStatus();
}

absl::StatusOr<void*> GpuBackend::Alloc(size_t bytes) {
  DropActivationCache();
  RF_RETURN_IF_ERROR(Flush());
  void* p = nullptr;
  gpu::GpuStatus st = gpu::Malloc(&p, bytes);
  if (!st.ok) {
    return absl::ResourceExhaustedError(
        absl::StrCat("GPU allocation of ", bytes, " bytes failed: ", st.message));
  }
  return p;
}

void GpuBackend::Free(void* p) {
  DropActivationCache();
  if (p == nullptr) return;
  (void)Flush();
  (void)gpu::StreamSync(stream_);
  gpu::Free(p);
}

absl::Status GpuBackend::Upload(void* dst, const void* src, size_t bytes) {
  DropActivationCache();
  RF_RETURN_IF_ERROR(Flush());
  RF_RETURN_IF_ERROR(Check(gpu::CopyToDevice(dst, src, bytes, stream_)));
  // The caller may reuse `src` at once.
  return Check(gpu::StreamSync(stream_));
}

absl::Status GpuBackend::Download(void* dst, const void* src, size_t bytes) {
  RF_RETURN_IF_ERROR(Flush());
  RF_RETURN_IF_ERROR(Check(gpu::CopyToHost(dst, src, bytes, stream_)));
  return Synchronize();
}

size_t GpuBackend::AvailableMemoryBytes() const {
  size_t free_b = 0, total_b = 0;
  if (!gpu::MemInfo(&free_b, &total_b).ok) return 0;
  // Leave room for scratch growth and the runtime's own allocations.
  const size_t reserve = std::max<size_t>(total_b / 32, size_t{512} << 20);
  return free_b > reserve ? free_b - reserve : 0;
}

std::vector<int32_t> GpuBackend::StepTokenSizes() const {
  // Steps of 5..128 tokens run the int8 GEMM in token tiles (kernels/matmul_mmq.hip):
  // one of 16, 32 or 64 tokens, then two (Q4_K: three of 32 up to 96); the step
  // time jumps just past 32 and 64 (H100, 32 decodes + k prefill tokens: 32 ->
  // 6.1 ms, 48 -> 7.9, 64 -> 8.1, 80 -> 10.9, 96 -> 11.2, 112 -> 12.1, 128 ->
  // 12.3). 96 is left out on purpose: the scheduler fills a step to the next
  // size, and 128 tokens cost 10% more than 96 for a third more work. From 192
  // the dense path grows smoothly with n.
  if (!gpu::MatMulMmaAvailable()) return {};
  // With resident f16 weights on the Hopper GEMM, steps from
  // kDenseMinTokensResidentWgmma tokens run dense, whose time rises per
  // 128-token tile of the GEMM (H100, 32 decodes + k prefill tokens, 2026-11-26
  // 21:24 UTC: 96 -> 9.2 ms, 128 -> 9.5, 160 -> 11.8, 192 -> 11.8, 256 -> 12.3,
  // 320 -> 15.7, 448 -> 18.8).
  if (DenseStepsOnWgmma()) {
    return {gpu::kSmallBatchMax, 16, 32, 64, 128, 256, 384, 512};
  }
  return {gpu::kSmallBatchMax, 16, 32, 64, 128};
}

int32_t GpuBackend::DefaultPrefillCapWithDecodes() const {
  // Dense steps on the Hopper GEMM cost ~30 us a prefill token past the
  // decodes (above), against ~60 on the int8 GEMM's 128-token tile: there
  // prefill fills steps of up to 512 tokens (~19 ms at 32 decodes; a larger
  // --max-batch-tokens does not lengthen them). H100 worker, Llama-3-8B Q4_K_M,
  // N = 32, --max-batch-tokens 512 (bench/RESULTS.md, 2026-11-26 21:47 UTC): cap
  // 64 / 224 / 480 3820 / 4054 / 4188 tok/s, ITL p99 11 / 15 / 20 ms, TTFT p99
  // 635 / 362-384 / 266-292 ms.
  if (DenseStepsOnWgmma()) return 480;
  return 64;
}

MemoryUsage GpuBackend::DeviceMemoryUsage() const {
  MemoryUsage m;
  size_t free_b = 0, total_b = 0;
  if (!gpu::SetDevice(device_).ok || !gpu::MemInfo(&free_b, &total_b).ok) return m;
  m.total_bytes = total_b;
  m.used_bytes = total_b - std::min(free_b, total_b);
  return m;
}

absl::StatusOr<Weight> GpuBackend::LoadWeight(const gguf::TensorInfo& t) {
  const bool vector_f32 = t.type == GgmlType::F32;
  if (!gpu::MatMulSupported(t.type) && !vector_f32) {
    return absl::UnimplementedError(absl::StrCat("tensor '", t.name, "' has type ", std::string(TypeName(t.type)),
                                                 ", which the GPU backend cannot compute with; "
                                                 "requantize to Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_0, Q4_0 or F16"));
  }
  const int64_t cols = t.cols(), rows = t.rows();
  // Kernels read whole blocks: a partial one would be read past the row.
  const GgmlTypeInfo* info = GetTypeInfo(t.type);
  if (info == nullptr || cols % info->block_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name, "': rows of ", cols,
                                                   " elements are not whole ", std::string(TypeName(t.type)),
                                                   " blocks"));
  }
  if (rows > 1 && cols % 8 != 0) {
    return absl::UnimplementedError(
        absl::StrCat("tensor '", t.name, "': rows of ", cols, " elements (GPU needs a multiple of 8)"));
  }
  if (t.data == nullptr || t.nbytes != RowBytes(t.type, cols) * static_cast<size_t>(rows)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name, "': data size mismatch"));
  }
  RF_ASSIGN_OR_RETURN(void* dev, Alloc(t.nbytes));
  weights_.push_back(dev);
  RF_RETURN_IF_ERROR(Upload(dev, t.data, t.nbytes));
  if (rows > 1) {
    RF_RETURN_IF_ERROR(Grow(&matmul_scratch_, &matmul_scratch_cap_,
                            std::max(matmul_scratch_cap_, gpu::MatMulScratchBytes(cols, gpu::kSmallBatchMax))));
    // Room for the MMQ GEMM's quantized activations of a whole step (a few MB).
    if (gpu::MatMulMmqSupported(t.type)) {
      RF_RETURN_IF_ERROR(Grow(&matmul_scratch_, &matmul_scratch_cap_,
                              std::max(matmul_scratch_cap_, gpu::MatMulMmqScratchBytes(cols, gpu::kMmqMaxTokens))));
    }
  }
  // The dense prefill path's f16 weight copy (none for F16, used in place; none
  // for F32, kept exact; none for the vocabulary-sized matrices).
  const bool vocab_matrix = t.name == "output.weight" || t.name == "token_embd.weight";
  if (rows > 1 && !vocab_matrix && t.type != GgmlType::F32 && gpu::DequantizeF16Supported(t.type) &&
      gpu::MatMulMmaAvailable()) {
    dense_max_cols_ = std::max(dense_max_cols_, cols);
    const size_t wb = gpu::MatMulDenseWeightBytes(t.type, rows, cols);
    if (wb > dense_w16_cap_) RF_RETURN_IF_ERROR(Grow(&dense_w16_, &dense_w16_cap_, wb));
    dense_resident_bytes_ += wb;
  }
  Weight w;
  w.type = t.type;
  w.cols = cols;
  w.rows = rows;
  w.data = dev;
  return w;
}

absl::Status GpuBackend::InitKvCache(const KvCacheShape& shape) {
  if (shape.n_layers <= 0 || shape.n_kv_heads <= 0 || shape.head_dim <= 0 || shape.block_size <= 0 ||
      shape.num_blocks <= 0) {
    return absl::InvalidArgumentError("KV cache shape must be positive in every field");
  }
  if (shape.head_dim > 256 || shape.head_dim % 2 != 0) {
    return absl::UnimplementedError(
        absl::StrCat("GPU attention supports even head_dim <= 256, got ", shape.head_dim));
  }
  // Graphs captured so far read the old caches (and their shape: block size,
  // heads, which a graph's signature does not hold): none may replay after
  // they are freed, even where a new cache lands at the same address.
  RF_RETURN_IF_ERROR(Synchronize());
  DropGraphs();
  for (uint16_t* p : k_cache_) gpu::Free(p);
  for (uint16_t* p : v_cache_) gpu::Free(p);
  k_cache_.assign(shape.n_layers, nullptr);
  v_cache_.assign(shape.n_layers, nullptr);
  const size_t bytes = static_cast<size_t>(shape.num_blocks) * shape.block_size * shape.n_kv_heads *
                       shape.head_dim * sizeof(uint16_t);
  for (int l = 0; l < shape.n_layers; ++l) {
    RF_ASSIGN_OR_RETURN(void* k, Alloc(bytes));
    k_cache_[l] = static_cast<uint16_t*>(k);
    RF_ASSIGN_OR_RETURN(void* v, Alloc(bytes));
    v_cache_[l] = static_cast<uint16_t*>(v);
    // Zeroed: an unwritten slot reads as numbers, never NaN garbage.
    RF_RETURN_IF_ERROR(Check(gpu::Memset(k, 0, bytes, stream_)));
    RF_RETURN_IF_ERROR(Check(gpu::Memset(v, 0, bytes, stream_)));
  }
  kv_ = shape;
  return Synchronize();
}

// ---- ops -------------------------------------------------------------------
// Every op goes through Enqueue with a signature of its arguments, so decode
// steps can be replayed as one graph (gpu_backend_graph.cc). RmsNorm,
// AddRmsNorm, SwiGLU, Add, Rope and StoreKv are in gpu_backend_fusion.cc.

void GpuBackend::Embed(const Weight& table, float* out) {
  DropActivationCache();
  const int32_t* tokens = DevI32(layout_.tokens);
  const int n = n_tokens_;
  const gpu::Stream st = stream_;
  Enqueue(Sig(1, table.type, table.data, table.rows, table.cols, tokens, n, out), [=, t = table] {
    gpu::LaunchEmbed(t.type, t.data, t.rows, t.cols, tokens, n, out, st);
  });
}

gpu::DenseScratch GpuBackend::DenseScratchFor(GgmlType type, const void* w, int64_t rows, int64_t cols, int n) {
  // Every batched MatMul comes here once, after its one drop (f16 reuse
  // bookkeeping); the grouped matmuls issued since the last call write their
  // outputs over the f16 copy's source?
  ++dense_calls_;
  // The order of batched matmuls, dense or not (the overlapped dequantization
  // forks the next dense one's, gpu_backend_dense.cc).
  if (dense_last_w_ != nullptr && dense_last_w_ != w) {
    DenseWeightRef& next = next_dense_[dense_last_w_];
    if (next.w != w) next = DenseWeightRef{w, type, rows, cols};
  }
  dense_last_w_ = w;
  for (int i = 0; i < gemm_group_.n_parts; ++i) {
    X16NoteWrite(gemm_group_.parts[i].y, static_cast<int64_t>(gemm_group_.n) * gemm_group_.parts[i].rows);
  }
  // With grouping off a grouped (MMQ) matmul is emitted before the next one
  // comes here, its output unseen: no reuse across a matmul off the dense path.
  auto done = [&](const gpu::DenseScratch& d) {
    if (!gemm_grouping_ && !gpu::MatMulDenseTakes(type, w, rows, cols, n, d)) x16_.x = nullptr;
    return d;
  };
  // Shapes whose crossover was set by the in-line conversion and
  // dequantization (small Q4_K) go dense from kDenseMinTokens when the dense
  // prefill options take both off the critical path.
  const DensePrefillOptions& po = dense_opts_;
  const bool prepared = po.dense_small_q4k && po.reuse_x16 && po.overlap_dequant && !explicit_capture_ && !defer_;
  // With the resident f16 copies (UseSpareMemory) the dense path costs no
  // dequantization and takes every step past the MMQ GEMM's range.
  const bool resident = dense_res_.on && !dense_res_.failed && !explicit_capture_ && !defer_;
  if (dense_max_cols_ == 0 || !gpu::MatMulDenseSuitsPrepared(type, w, rows, cols, n, prepared, resident)) {
    return done({});
  }
  // No f16 room for this matrix (the vocabulary-sized ones were left out at load).
  if (gpu::MatMulDenseWeightBytes(type, rows, cols) > dense_w16_cap_) return done({});
  gpu::DenseScratch d;
  d.operands_prepared = prepared;
  d.weights_resident = resident;
  d.w16 = dense_w16_;
  d.w16_bytes = dense_w16_cap_;
  const size_t need = gpu::MatMulDenseActivationBytes(cols, n);
  if (need > dense_x16_cap_) {
    if (explicit_capture_) return done({});  // no allocation inside a capture
    // Room for every input width at this n at once; on failure the old path runs.
    const size_t want = std::max(need, gpu::MatMulDenseActivationBytes(dense_max_cols_, n));
    x16_.x = nullptr;  // a new buffer holds no f16 copy
    if (!Grow(&dense_x16_, &dense_x16_cap_, want).ok()) return done({});
  }
  d.x16 = dense_x16_;
  d.x16_bytes = dense_x16_cap_;
  return done(d);
}

void GpuBackend::MatMul(const Weight& w, const float* x, float* y, int n) {
  const int rule = gpu::ActivationRule(w.type);
  const gpu::Stream st = stream_;
  void* scratch = matmul_scratch_;
  const GgmlType type = w.type;
  const void* wd = w.data;
  const int64_t rows = w.rows, cols = w.cols;
  // The int8 MMQ GEMM reads x quantized once per group into the matmul
  // scratch (sized for kMmqMaxTokens at LoadWeight); it also takes the larger
  // small batches (gpu::kMmqMinTokens..kSmallBatchMax tokens).
  const bool mmq = n >= gpu::kMmqMinTokens && gpu::MatMulMmqTakes(type, wd, cols, n) &&
                   gpu::MatMulMmqScratchBytes(cols, n) <= matmul_scratch_cap_;
  if (rule == 0 || n > gpu::kSmallBatchMax || mmq) {
    DropActivationCache();
    const gpu::DenseScratch dense = DenseScratchFor(type, wd, rows, cols, n);
    // A matmul that writes its own input (never in a Llama layer) is launched
    // alone, below; Enqueue emits an open group first.
    const bool writes_x = y < x + static_cast<int64_t>(n) * cols && x < y + static_cast<int64_t>(n) * rows;
    // With grouping off an MMQ matmul is a group of one (same kernel, same
    // integers).
    if ((gemm_grouping_ || mmq) && (n > gpu::kSmallBatchMax || mmq) && !writes_x &&
        !gpu::MatMulDenseTakes(type, wd, rows, cols, n, dense)) {
      // Joins the open group when it reads the same x.
      GemmGroup& g = gemm_group_;
      if (g.n_parts > 0 && (g.type != type || g.cols != cols || g.x != x || g.n != n ||
                            g.n_parts == gpu::kMaxMatVecParts || (g.xq != nullptr) != mmq)) {
        EmitGemmGroup();
      }
      if (g.n_parts == 0) {
        // Whatever is held (x's producer, a residual Add, attention, RoPEs)
        // runs before the group: a held op emits the open group first when
        // it launches, so the two must never be held together. For MMQ the
        // producer quantizes x in its own pass where it can (as at n <= 8).
        // With producer zeroing the producer (norm / SwiGLU + quantization,
        // or the quantization) launches with the group instead, which knows
        // every part's output by then (EmitGemmGroup).
        const bool defer = mmq && producer_zeroing_ && !held_attn_.valid;
        if (mmq && producer_zeroing_ && HeldAttentionFusesWithQuantize(type, x, n, cols)) {
          // Attention + merge + quantization launches with the group too,
          // its merge zeroing the parts' outputs.
          group_held_attn_ = held_attn_;
          held_attn_.valid = false;
          EmitHeld();
          group_producer_ = GroupProducer::kAttention;
        } else if (defer && HeldFusesWithQuantize(type, x, n, cols)) {
          group_held_ = held_;
          held_.kind = HeldOp::kNone;
          EmitHeld();
          group_producer_ = GroupProducer::kFused;
        } else if (!mmq || !EmitHeldFusedWithQuantize(type, x, n, cols, scratch)) {
          EmitHeld();
          if (defer) {
            group_producer_ = GroupProducer::kQuantize;
          } else if (mmq) {
            Enqueue(Sig(42, type, x, n, cols, scratch), [=] {
              gpu::LaunchQuantizeActivation(type, x, static_cast<int64_t>(n) * cols, scratch, st);
            });
          }
        }
        g.xq = mmq ? scratch : nullptr;
        g.type = type;
        g.cols = cols;
        g.x = x;
        g.n = n;
      }
      g.parts[g.n_parts++] = gpu::MatVecPart{wd, y, rows};
      if (!gemm_grouping_) EmitGemmGroup();
      return;
    }
    if (EnqueueDenseMatMul(type, wd, rows, cols, x, y, n, dense)) return;
    Enqueue(Sig(4, type, wd, rows, cols, x, y, n, scratch, dense.w16, dense.x16),
            [=] { gpu::LaunchMatMul(type, wd, rows, cols, x, y, n, scratch, dense, st); });
    return;
  }
  // While the producer of x (held) runs, the side stream may fetch w into L2.
  if (n == 1) MaybePrefetchWeight(type, wd, RowBytes(type, cols) * static_cast<size_t>(rows));
  if (n == 1 && HeldNormJoinsMatVec(type, x, cols, wd, y, rows)) {
    // The held RMSNorm of x runs inside this group (kFuseNormMatVec), which
    // stores x and its quantized form as the norm + quantize kernel would:
    // later matmuls on x read them as usual.
    const HeldOp h = held_;
    held_.kind = HeldOp::kNone;
    MatVecGroup& g = mv_group_;
    g = MatVecGroup{};
    g.type = type;
    g.cols = cols;
    g.xq = scratch;
    g.norm_x = h.x;
    g.norm_w = h.w;
    g.norm_out = h.out;
    g.norm_eps = h.eps;
    g.parts[g.n_parts++] = gpu::MatVecPart{wd, y, rows};
    act_x_ = x;
    act_n_ = n;
    act_cols_ = cols;
    act_rule_ = rule;
    return;
  }
  if (act_x_ != x || act_n_ != n || act_cols_ != cols || act_rule_ != rule) {
    // The op that produced x may quantize it in the same pass.
    if (!EmitHeldFusedWithQuantize(type, x, n, cols, scratch)) {
      Enqueue(Sig(5, type, x, n, cols, scratch), [=] {
        gpu::LaunchQuantizeActivation(type, x, static_cast<int64_t>(n) * cols, scratch, st);
      });
    }
    act_x_ = x;
    act_n_ = n;
    act_cols_ = cols;
    act_rule_ = rule;
  }
  if (ropes_after_group_) EmitHeld();  // RoPEs held behind the group launch with it first
  if (n == 1) {
    // Joins the open group when it reads the same quantized activations.
    MatVecGroup& g = mv_group_;
    // A part joins a norm-in group only if it does not write the norm's
    // input or output (block 0 stores the output while others read the input).
    const bool norm_clash = g.norm_x != nullptr && TouchesNormIO(y, rows, g.norm_x, g.norm_out, cols);
    // A part of another type joins as the group's one part of type_b where
    // one kernel runs both (kFuseMixedMatVec: Q4_K_M's Q6_K V behind Q/K).
    const gpu::MatVecPart part{wd, y, rows};
    const bool mixed = (fusions_ & kFuseMixedMatVec) != 0 && g.n_parts > 0 && g.n_a == 0 && g.type != type &&
                       g.cols == cols && g.xq == scratch && g.n_parts < gpu::kMaxMatVecParts &&
                       g.add_to == nullptr && g.norm_x == nullptr &&
                       gpu::MatVecMixedGroupTakes(g.type, g.parts, g.n_parts, type, part, cols);
    if (mixed) {
      g.n_a = g.n_parts;
      g.type_b = type;
    } else {
      if (g.n_parts > 0 && (g.type != type || g.cols != cols || g.xq != scratch || g.n_a > 0 ||
                            g.n_parts == gpu::kMaxMatVecParts || g.add_to != nullptr || norm_clash)) {
        EmitMatVecGroup();
      }
      if (g.n_parts == 0) {
        g = MatVecGroup{};
        g.type = type;
        g.cols = cols;
        g.xq = scratch;
      }
    }
    g.parts[g.n_parts++] = part;
  } else {
    Enqueue(Sig(6, type, wd, rows, cols, scratch, y, n), [=] {
      gpu::LaunchMatMulSmallBatchQuantized(type, wd, rows, cols, scratch, y, n, st);
    });
  }
  // Writing y over x would make the cached activations stale.
  const float* x_end = x + static_cast<int64_t>(n) * cols;
  const float* y_end = y + static_cast<int64_t>(n) * rows;
  if (y < x_end && x < y_end) DropActivationCache();
}

void GpuBackend::EmitGemmGroup() {
  if (gemm_group_.n_parts == 0) return;
  const GemmGroup g = gemm_group_;
  gemm_group_.n_parts = 0;  // before Enqueue, which emits an open group first
  const GroupProducer producer = group_producer_;
  group_producer_ = GroupProducer::kNone;
  const gpu::Stream st = stream_;
  SigBuf sig = Sig(40, g.type, g.cols, g.x, g.n, g.n_parts);
  for (int i = 0; i < g.n_parts; ++i) sig += Sig(41, g.parts[i].w, g.parts[i].y, g.parts[i].rows);
  if (g.xq != nullptr) {
    sig += Sig(43, g.xq);
    // Whether this group's GEMM split K (asked for zeroed outputs) the last
    // time: false for a new group; the launch below records it for the next.
    bool* const split = &group_splits_[std::string(sig.view())];
    gpu::ZeroSpans z;
    if (producer != GroupProducer::kNone) {
      if (*split) {
        z = producer == GroupProducer::kAttention ? AttentionZeroSpans(g, group_held_attn_)
                                                  : GroupZeroSpans(g, producer == GroupProducer::kFused);
      }
      producer_zeroed_groups_ += z.n > 0;
      void* const xq = const_cast<void*>(g.xq);
      if (producer == GroupProducer::kAttention) {
        EnqueueAttentionQuantize(group_held_attn_, g.type, xq, z);
      } else if (producer == GroupProducer::kFused) {
        EnqueueFusedProducer(group_held_, g.type, xq, z);
      } else {
        const GgmlType type = g.type;
        const float* x = g.x;
        const int64_t total = static_cast<int64_t>(g.n) * g.cols;
        Enqueue(Sig(42, type, x, g.n, g.cols, xq, z.n, z.p[0], z.p[1], z.p[2]),
                [=] { gpu::LaunchQuantizeActivation(type, x, total, xq, st, z); });
      }
    }
    const int zeroed_parts = z.n > 0 ? g.n_parts : 0;
    Enqueue(sig + Sig(44, zeroed_parts), [=] {
      gpu::MarkOutputsZeroed(g.parts, zeroed_parts, g.n);
      gpu::LaunchMatMulMmqGroup(g.type, g.cols, g.xq, g.n, g.parts, g.n_parts, st);
      *split = gpu::ClearOutputsZeroed();
    });
    return;
  }
  Enqueue(std::move(sig), [=] { gpu::LaunchMatMulMmaGroup(g.type, g.cols, g.x, g.n, g.parts, g.n_parts, st); });
}

void GpuBackend::SetGemmGrouping(bool on) {
  EmitHeld();
  gemm_grouping_ = on;
}

void GpuBackend::AddBias(float* y, const Weight& bias, int n) {
  DropActivationCache();
  const auto* bd = static_cast<const float*>(bias.data);
  const int cols = static_cast<int>(bias.cols);
  const gpu::Stream st = stream_;
  Enqueue(Sig(7, y, bd, n, cols), [=] { gpu::LaunchAddBias(y, bd, n, cols, st); });
}

void GpuBackend::Attention(int layer, const float* q, float* out, int n_heads, float scale) {
  DropActivationCache();
  gpu::AttnBatch b;
  b.token_seq = DevI32(layout_.token_seq);
  b.token_ctx = DevI32(layout_.token_ctx);
  b.seq_table_off = DevI32(layout_.seq_table_off);
  b.block_tables = DevI32(layout_.block_tables);
  b.n_tokens = n_tokens_;
  // Splits are sized for the context rounded up to 256 positions, so a decode
  // step keeps the same launch shape (and graph) for 256 tokens; each token's
  // real context comes from device memory. Contexts of at most
  // gpu::DecodeAttnConfig::one_split_keys (256 by default: the first bucket
  // itself; a value under 256 makes a bucket of its own) run the decode
  // attention unsplit.
  const int one_split = gpu::GetDecodeAttnConfig().one_split_keys;
  b.max_ctx = one_split > 0 && one_split < 256 && max_ctx_ <= one_split ? one_split : (max_ctx_ + 255) / 256 * 256;
  const size_t need = gpu::AttentionScratchBytes(n_tokens_, n_heads, kv_.head_dim, b.max_ctx);
  if (!GrowAttentionScratch(need).ok()) return;
  // Held: the wo matmul that reads `out` may take the quantization into the
  // split merge (gpu_backend_fusion.cc).
  HeldAttention a;
  a.q = q;
  a.out = out;
  a.b = b;
  a.n_heads = n_heads;
  a.scale = scale;
  a.k_cache = k_cache_[layer];
  a.v_cache = v_cache_[layer];
  a.scratch = attn_scratch_;
  HoldAttention(a);
}

void GpuBackend::GatherRows(const float* x, float* out, int dim) {
  DropActivationCache();
  const int32_t* rows = DevI32(layout_.logit_rows);
  const int n = n_logit_rows_;
  const gpu::Stream st = stream_;
  Enqueue(Sig(13, x, rows, n, dim, out), [=] { gpu::LaunchGatherRows(x, rows, n, dim, out, st); });
}

absl::Status GpuBackend::Synchronize() {
  RF_RETURN_IF_ERROR(Flush());
  RF_RETURN_IF_ERROR(Check(gpu::LastLaunchError()));
  return Check(gpu::StreamSync(stream_));
}

// ---- graphs ----------------------------------------------------------------

absl::Status GpuBackend::BeginGraphCapture() {
  DropActivationCache();
  RF_RETURN_IF_ERROR(Flush());
  explicit_capture_ = true;
  gpu::GraphDestroy(graph_);
  graph_ = nullptr;
  return Check(gpu::BeginCapture(stream_));
}

absl::Status GpuBackend::EndGraphCapture() {
  EmitHeld();  // launched inside the capture
  JoinSideStream();
  explicit_capture_ = false;
  return Check(gpu::EndCapture(stream_, &graph_));
}

void GpuBackend::DropGraphs() {
  for (CachedGraph& g : graphs_) gpu::GraphDestroy(g.exec);
  graphs_.clear();
  gpu::GraphDestroy(graph_);
  graph_ = nullptr;
}

absl::Status GpuBackend::ReplayGraph() {
  if (graph_ == nullptr) return absl::FailedPreconditionError("no captured graph to replay");
  return Check(gpu::GraphLaunch(graph_, stream_));
}

}  // namespace rocmforge
