#include "engine/model/sequence_runner.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"

namespace rocmforge {

absl::StatusOr<std::unique_ptr<SequenceRunner>> SequenceRunner::Create(const gguf::GgufFile& file,
                                                                       Backend* backend,
                                                                       int32_t context_length,
                                                                       int32_t max_step_tokens) {
  if (context_length <= 0) return absl::InvalidArgumentError("context length must be > 0");
  std::unique_ptr<SequenceRunner> r(new SequenceRunner());
  RF_ASSIGN_OR_RETURN(r->model_, Model::Load(file, backend, std::max(1, std::min(max_step_tokens, context_length))));
  const ModelConfig& c = r->model_->config();
  const int32_t blocks = (context_length + r->block_size_ - 1) / r->block_size_;
  r->context_length_ = blocks * r->block_size_;
  RF_RETURN_IF_ERROR(backend->InitKvCache({c.n_layers, c.n_kv_heads, c.head_dim, r->block_size_, blocks}));
  r->block_table_.resize(blocks);
  for (int32_t i = 0; i < blocks; ++i) r->block_table_[i] = i;
  return r;
}

absl::StatusOr<const float*> SequenceRunner::Append(const std::vector<int32_t>& tokens) {
  if (tokens.empty()) return absl::InvalidArgumentError("nothing to append");
  if (length_ + static_cast<int64_t>(tokens.size()) > context_length_) {
    return absl::OutOfRangeError(absl::StrCat("context full: ", length_, " + ", tokens.size(),
                                              " tokens exceed the context of ", context_length_));
  }
  const int32_t chunk = model_->max_step_tokens();
  const float* logits = nullptr;
  for (size_t start = 0; start < tokens.size(); start += chunk) {
    const int32_t n = static_cast<int32_t>(std::min<size_t>(chunk, tokens.size() - start));
    StepBatch b;
    BatchSeq s;
    s.n_tokens = n;
    s.kv_len = length_ + n;
    s.block_table.assign(block_table_.begin(), block_table_.begin() + (s.kv_len + block_size_ - 1) / block_size_);
    for (int32_t i = 0; i < n; ++i) {
      const int32_t pos = length_ + i;
      b.tokens.push_back(tokens[start + i]);
      b.positions.push_back(pos);
      b.slots.push_back(pos);  // blocks 0..n-1 in order: slot == position
    }
    // Only the very last token needs logits.
    if (start + n == tokens.size()) b.logit_rows.push_back(n - 1);
    b.seqs.push_back(std::move(s));
    RF_ASSIGN_OR_RETURN(logits, model_->Forward(b));
    length_ += n;
  }
  return logits;
}

}  // namespace rocmforge
