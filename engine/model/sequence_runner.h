// Runs one sequence through a Model, the simplest possible engine: the
// sequence owns KV blocks 0..n-1 in order. Used by `rocmforge generate` and
// `rocmforge bench`; the serving engine (engine/) has its own scheduler.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/model.h"

namespace rocmforge {

class SequenceRunner {
 public:
  // Loads the model on `backend` and gives it a KV pool of `context_length`
  // tokens (rounded up to whole blocks). Prompts are prefilled in chunks of
  // `max_step_tokens`.
  static absl::StatusOr<std::unique_ptr<SequenceRunner>> Create(const gguf::GgufFile& file, Backend* backend,
                                                                int32_t context_length,
                                                                int32_t max_step_tokens = 512);

  // Appends `tokens` to the sequence (running as many steps as needed) and
  // returns the logits of the last one ([n_vocab], backend memory, valid
  // until the next call). OutOfRange when the context would overflow.
  absl::StatusOr<const float*> Append(const std::vector<int32_t>& tokens);
  // Forgets the sequence (the KV cache is simply overwritten).
  void Reset() { length_ = 0; }

  int32_t length() const { return length_; }
  int32_t context_length() const { return context_length_; }
  Model& model() { return *model_; }

 private:
  SequenceRunner() = default;
  std::unique_ptr<Model> model_;
  std::vector<int32_t> block_table_;
  int32_t block_size_ = 16;
  int32_t context_length_ = 0;
  int32_t length_ = 0;
};

}  // namespace rocmforge
