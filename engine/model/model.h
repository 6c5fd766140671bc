// A loaded llama-family model bound to a backend: the forward pass over one
// StepBatch, written once against the Backend op interface.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/backend/backend.h"
#include "engine/gguf/gguf_file.h"
#include "engine/model/model_config.h"

namespace rocmforge {

class Model {
 public:
  // Binds every weight (shapes checked against the config; a missing or
  // misshapen tensor is a clear error) and allocates scratch for up to
  // `max_step_tokens` tokens per step. The GgufFile must outlive the Model.
  static absl::StatusOr<std::unique_ptr<Model>> Load(const gguf::GgufFile& file, Backend* backend,
                                                     int32_t max_step_tokens);
  ~Model();

  const ModelConfig& config() const { return config_; }
  Backend* backend() const { return backend_; }
  int32_t max_step_tokens() const { return max_step_tokens_; }

  // Bytes of KV cache one token takes across all layers (for pool sizing).
  size_t KvBytesPerToken() const;

  // Runs the step: stores its K/V into the cache and returns the logits of
  // batch.logit_rows as [logit_rows.size()][n_vocab] in backend memory (valid
  // until the next Forward). The backend's KV cache must be initialised.
  absl::StatusOr<const float*> Forward(const StepBatch& batch);

 private:
  struct Layer;
  Model() = default;
  ModelConfig config_;
  Backend* backend_ = nullptr;
  int32_t max_step_tokens_ = 0;
  // Weights and scratch are private to the implementation.
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rocmforge
