// GpuBackend::BeginStep: validates a StepBatch against the KV pool (ValidateStepBatch) and uploads
// its metadata in one copy. The layout of the metadata buffer depends only on
// its capacity, so device addresses stay fixed from step to step (graph replay).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/backend/gpu/gpu_backend.h"
#include "engine/common/status_macros.h"

namespace rocmforge {

absl::Status GpuBackend::EnsureStepCapacity(int tokens, int seqs, int table) {
  if (tokens <= cap_tokens_ && seqs <= cap_seqs_ && table <= cap_table_ && step_dev_ != nullptr) {
    return absl::OkStatus();
  }
  cap_tokens_ = std::max({tokens, cap_tokens_, 16});
  cap_seqs_ = std::max({seqs, cap_seqs_, 4});
  cap_table_ = std::max({table, cap_table_, 64});
  StepLayout l;
  size_t off = 0;
  auto take = [&off](size_t n) {
    const size_t at = off;
    off += (n + 63) / 64 * 64;  // 256-byte aligned sections
    return at;
  };
  l.tokens = take(cap_tokens_);
  l.positions = take(cap_tokens_);
  l.slots = take(cap_tokens_);
  l.logit_rows = take(cap_tokens_);
  l.token_seq = take(cap_tokens_);
  l.token_ctx = take(cap_tokens_);
  l.seq_table_off = take(cap_seqs_);
  l.block_tables = take(cap_table_);
  l.total = off;
  RF_RETURN_IF_ERROR(Check(gpu::StreamSync(stream_)));
  gpu::HostFree(step_host_);
  step_host_ = nullptr;
  void* host = nullptr;
  RF_RETURN_IF_ERROR(Check(gpu::HostAlloc(&host, l.total * sizeof(int32_t))));
  step_host_ = static_cast<int32_t*>(host);
  size_t cap_bytes = step_cap_ * sizeof(int32_t);
  RF_RETURN_IF_ERROR(Grow(&step_dev_, &cap_bytes, l.total * sizeof(int32_t)));
  step_cap_ = cap_bytes / sizeof(int32_t);
  layout_ = l;
  return absl::OkStatus();
}

absl::Status GpuBackend::Reserve(int max_tokens, int max_seqs, int max_blocks_per_seq,
                                 int max_heads, int max_ctx) {
  RF_RETURN_IF_ERROR(Flush());
  RF_RETURN_IF_ERROR(EnsureStepCapacity(max_tokens, max_seqs, max_seqs * max_blocks_per_seq));
  reserved_ctx_ = max_ctx;
  const size_t attn = gpu::AttentionScratchBytes(max_tokens, max_heads, kv_.head_dim, max_ctx);
  if (attn > 0) RF_RETURN_IF_ERROR(GrowAttentionScratch(attn));
  return absl::OkStatus();
}

absl::Status GpuBackend::BeginStep(const StepBatch& b) {
  RF_RETURN_IF_ERROR(Flush());  // the previous step's deferred ops read the old metadata
  defer_ = false;
  if (k_cache_.empty()) return absl::FailedPreconditionError("BeginStep before InitKvCache");
  RF_RETURN_IF_ERROR(ValidateStepBatch(b, kv_));
  const int32_t n = b.n_tokens();
  size_t table_total = 0;
  for (const BatchSeq& seq : b.seqs) table_total += seq.block_table.size();
  RF_RETURN_IF_ERROR(EnsureStepCapacity(n, static_cast<int>(b.seqs.size()),
                                        static_cast<int>(table_total)));
  if (b.logit_rows.size() > static_cast<size_t>(cap_tokens_)) {
    return absl::InvalidArgumentError("step batch: more logit rows than tokens");
  }
  // The previous step's upload may still read the pinned buffer. Inside an
  // explicit capture nothing runs (and a sync is not allowed): the capture
  // began after a Flush and the caller's sync, so nothing reads it either.
  if (!explicit_capture_) RF_RETURN_IF_ERROR(Check(gpu::StreamSync(stream_)));

  int32_t* h = step_host_;
  int32_t table_off = 0, max_ctx = 0;
  for (size_t s = 0; s < b.seqs.size(); ++s) {
    const BatchSeq& seq = b.seqs[s];
    for (int32_t i = 0; i < seq.n_tokens; ++i) {
      const int32_t t = seq.token_start + i;
      h[layout_.token_seq + t] = static_cast<int32_t>(s);
      h[layout_.token_ctx + t] = seq.kv_len - seq.n_tokens + i + 1;  // keys visible: pos + 1
    }
    h[layout_.seq_table_off + s] = table_off;
    std::copy(seq.block_table.begin(), seq.block_table.end(), h + layout_.block_tables + table_off);
    table_off += static_cast<int32_t>(seq.block_table.size());
    max_ctx = std::max(max_ctx, seq.kv_len);
  }
  std::copy(b.tokens.begin(), b.tokens.end(), h + layout_.tokens);
  std::copy(b.positions.begin(), b.positions.end(), h + layout_.positions);
  std::copy(b.slots.begin(), b.slots.end(), h + layout_.slots);
  std::copy(b.logit_rows.begin(), b.logit_rows.end(), h + layout_.logit_rows);
  n_tokens_ = n;
  n_logit_rows_ = static_cast<int>(b.logit_rows.size());
  max_ctx_ = std::max(max_ctx, reserved_ctx_);
  RF_RETURN_IF_ERROR(
      Check(gpu::CopyToDevice(step_dev_, step_host_, layout_.total * sizeof(int32_t), stream_)));
  defer_ = auto_graphs_ && n <= graph_max_tokens_;  // decode-sized steps run as graphs
  segment_launched_ = false;
  return absl::OkStatus();
}

}  // namespace rocmforge
