// One engine step as the model runner sees it: a flat, variable-length batch of
// tokens from one or more sequences, each with its paged-KV block table.
// Built by the engine from the scheduler's StepPlan; plain data, no backend memory.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace rocmforge {

struct KvCacheShape;  // engine/backend/backend.h

struct BatchSeq {
  int32_t token_start = 0;   // index of this sequence's first token in StepBatch::tokens
  int32_t n_tokens = 0;      // tokens of this sequence computed in this step
  int32_t kv_len = 0;        // context length once this step's tokens are stored
                             // (attention for the i-th token here sees positions
                             //  0 .. kv_len - n_tokens + i)
  std::vector<int32_t> block_table;  // KV block ids covering positions 0 .. kv_len-1
};

struct StepBatch {
  std::vector<int32_t> tokens;     // n tokens
  std::vector<int32_t> positions;  // n positions (position in its own sequence)
  std::vector<int32_t> slots;      // n KV slots: block_id * block_size + offset
  std::vector<BatchSeq> seqs;
  // Flat token indices whose logits the caller wants, in output-row order
  // (usually the last token of each sequence that samples this step).
  std::vector<int32_t> logit_rows;

  int32_t n_tokens() const { return static_cast<int32_t>(tokens.size()); }
};

// Checks a step batch against the KV pool it will be computed on, the one
// validation every backend's BeginStep runs: equal lengths of tokens /
// positions / slots, each sequence's token range and block table (long enough
// for kv_len, ids inside the pool), every token in exactly one sequence, each
// token's slot equal to what its block table says for its position, logit rows
// in range. InvalidArgument naming the first problem; never crashes on bad
// input. `token_seq`, when given, receives the sequence index of every token.
absl::Status ValidateStepBatch(const StepBatch& batch, const KvCacheShape& kv,
                               std::vector<int32_t>* token_seq = nullptr);

}  // namespace rocmforge
