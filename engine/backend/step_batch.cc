#include "engine/backend/step_batch.h"

#include "absl/strings/str_cat.h"
#include "engine/backend/backend.h"

namespace rocmforge {

absl::Status ValidateStepBatch(const StepBatch& b, const KvCacheShape& kv,
                               std::vector<int32_t>* token_seq_out) {
  const int32_t n = b.n_tokens();
  if (b.positions.size() != b.tokens.size() || b.slots.size() != b.tokens.size()) {
    return absl::InvalidArgumentError("step batch: tokens, positions and slots differ in length");
  }
  if (kv.block_size <= 0) return absl::FailedPreconditionError("step batch: KV cache not initialised");
  const int32_t bs = kv.block_size;
  std::vector<int32_t> local;
  std::vector<int32_t>& token_seq = token_seq_out != nullptr ? *token_seq_out : local;
  token_seq.assign(n, -1);
  for (size_t s = 0; s < b.seqs.size(); ++s) {
    const BatchSeq& seq = b.seqs[s];
    // 64-bit sums: hostile ranges must not overflow into "valid".
    if (seq.n_tokens <= 0 || seq.token_start < 0 ||
        static_cast<int64_t>(seq.token_start) + seq.n_tokens > n || seq.kv_len < seq.n_tokens) {
      return absl::InvalidArgumentError(absl::StrCat("step batch: sequence ", s, " has a bad token range"));
    }
    if (static_cast<int64_t>(seq.block_table.size()) * bs < seq.kv_len) {
      return absl::InvalidArgumentError(absl::StrCat("step batch: sequence ", s, " block table covers ",
                                                     seq.block_table.size() * bs, " positions, needs ",
                                                     seq.kv_len));
    }
    for (int32_t id : seq.block_table) {
      if (id < 0 || id >= kv.num_blocks) {
        return absl::InvalidArgumentError(absl::StrCat("step batch: sequence ", s, " uses block ", id,
                                                       " outside the pool of ", kv.num_blocks));
      }
    }
    for (int32_t i = 0; i < seq.n_tokens; ++i) {
      const int32_t t = seq.token_start + i;
      if (token_seq[t] != -1) {
        return absl::InvalidArgumentError(absl::StrCat("step batch: token ", t, " belongs to two sequences"));
      }
      token_seq[t] = static_cast<int32_t>(s);
      // Attention reads the cache through the block table, so the slot a
      // token is written to must be the one its position maps to.
      const int32_t pos = seq.kv_len - seq.n_tokens + i;
      const int64_t want = static_cast<int64_t>(seq.block_table[pos / bs]) * bs + pos % bs;
      if (b.slots[t] != want) {
        return absl::InvalidArgumentError(absl::StrCat("step batch: token ", t, " (position ", pos,
                                                       ") has slot ", b.slots[t], " but its block table says ",
                                                       want));
      }
    }
  }
  for (int32_t t = 0; t < n; ++t) {
    if (token_seq[t] == -1) {
      return absl::InvalidArgumentError(absl::StrCat("step batch: token ", t, " belongs to no sequence"));
    }
  }
  for (int32_t r : b.logit_rows) {
    if (r < 0 || r >= n) {
      return absl::InvalidArgumentError(absl::StrCat("step batch: logit row ", r, " out of range"));
    }
  }
  return absl::OkStatus();
}

}  // namespace rocmforge
