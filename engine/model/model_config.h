// Hyper-parameters of a llama-family model, read from GGUF metadata
// ("{arch}.block_count", "{arch}.embedding_length", ...).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/backend/backend.h"
#include "engine/gguf/gguf_file.h"

namespace rocmforge {

struct ModelConfig {
  std::string arch;          // "llama" (Llama 2/3, Mistral) or "qwen2"
  std::string name;          // general.name, may be empty
  int32_t n_vocab = 0;
  int32_t n_ctx_train = 0;   // {arch}.context_length
  int32_t dim = 0;           // embedding_length
  int32_t n_layers = 0;      // block_count
  int32_t n_heads = 0;       // attention.head_count
  int32_t n_kv_heads = 0;    // attention.head_count_kv (GQA/MQA), defaults to n_heads
  int32_t head_dim = 0;      // dim / n_heads unless attention.key_length says otherwise
  int32_t ffn_dim = 0;       // feed_forward_length
  float rope_freq_base = 10000.0f;
  int32_t rope_dim = 0;      // rope.dimension_count, defaults to head_dim
  RopeStyle rope_style = RopeStyle::kNorm;  // llama: kNorm, qwen2: kNeox
  float rms_eps = 1e-5f;
  bool qkv_bias = false;     // qwen2
  bool tied_embeddings = false;  // no output.weight: reuse token_embd
};

// InvalidArgument for an unknown architecture ("unsupported architecture
// 'gpt-neox'; supported: llama, qwen2") or missing / inconsistent values.
absl::StatusOr<ModelConfig> ModelConfigFromGguf(const gguf::GgufFile& file);

}  // namespace rocmforge
