#include "engine/model/model_config.h"

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"

namespace rocmforge {
namespace {

absl::Status Positive(const std::string& key, int64_t v) {
  if (v <= 0 || v > (int64_t{1} << 24)) {
    return absl::InvalidArgumentError(absl::StrCat("metadata ", key, " = ", v, " is not a sensible positive size"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelConfig> ModelConfigFromGguf(const gguf::GgufFile& file) {
  ModelConfig c;
  RF_ASSIGN_OR_RETURN(c.arch, file.GetString("general.architecture"));
  if (c.arch != "llama" && c.arch != "qwen2") {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported architecture '", c.arch, "'; supported: llama, qwen2"));
  }
  RF_ASSIGN_OR_RETURN(c.name, file.GetStringOr("general.name", ""));
  const std::string a = c.arch + ".";

  RF_ASSIGN_OR_RETURN(int64_t dim, file.GetInt(a + "embedding_length"));
  RF_ASSIGN_OR_RETURN(int64_t layers, file.GetInt(a + "block_count"));
  RF_ASSIGN_OR_RETURN(int64_t heads, file.GetInt(a + "attention.head_count"));
  RF_ASSIGN_OR_RETURN(int64_t kv_heads, file.GetIntOr(a + "attention.head_count_kv", heads));
  RF_ASSIGN_OR_RETURN(int64_t ffn, file.GetInt(a + "feed_forward_length"));
  RF_ASSIGN_OR_RETURN(int64_t ctx, file.GetIntOr(a + "context_length", 2048));
  RF_RETURN_IF_ERROR(Positive(a + "embedding_length", dim));
  RF_RETURN_IF_ERROR(Positive(a + "block_count", layers));
  RF_RETURN_IF_ERROR(Positive(a + "attention.head_count", heads));
  RF_RETURN_IF_ERROR(Positive(a + "attention.head_count_kv", kv_heads));
  RF_RETURN_IF_ERROR(Positive(a + "feed_forward_length", ffn));
  RF_RETURN_IF_ERROR(Positive(a + "context_length", ctx));
  if (heads % kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("attention.head_count ", heads,
                                                   " is not a multiple of attention.head_count_kv ", kv_heads));
  }
  int64_t head_dim_default = dim / heads;
  if (!file.Find(a + "attention.key_length") && dim % heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("embedding_length ", dim, " is not a multiple of head_count ", heads));
  }
  RF_ASSIGN_OR_RETURN(int64_t head_dim, file.GetIntOr(a + "attention.key_length", head_dim_default));
  RF_ASSIGN_OR_RETURN(int64_t v_dim, file.GetIntOr(a + "attention.value_length", head_dim));
  RF_RETURN_IF_ERROR(Positive(a + "attention.key_length", head_dim));
  if (v_dim != head_dim) {
    return absl::InvalidArgumentError(absl::StrCat("attention.value_length ", v_dim, " differs from key_length ",
                                                   head_dim, "; not supported"));
  }
  RF_ASSIGN_OR_RETURN(int64_t rope_dim, file.GetIntOr(a + "rope.dimension_count", head_dim));
  if (rope_dim <= 0 || rope_dim > head_dim || rope_dim % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("rope.dimension_count ", rope_dim,
                                                   " must be even and in (0, head_dim=", head_dim, "]"));
  }
  RF_ASSIGN_OR_RETURN(double base, file.GetFloatOr(a + "rope.freq_base", 10000.0));
  RF_ASSIGN_OR_RETURN(double eps, file.GetFloatOr(a + "attention.layer_norm_rms_epsilon", 1e-5));
  if (!(base > 0.0) || !(eps > 0.0) || eps > 1.0) {
    return absl::InvalidArgumentError(absl::StrCat("rope.freq_base ", base, " / rms epsilon ", eps, " out of range"));
  }
  // Rope scaling variants change the math; refuse rather than silently differ.
  RF_ASSIGN_OR_RETURN(std::string scaling, file.GetStringOr(a + "rope.scaling.type", "none"));
  if (scaling != "none") {
    return absl::UnimplementedError(absl::StrCat("rope.scaling.type '", scaling, "' is not supported"));
  }

  const gguf::TensorInfo* embd = file.FindTensor("token_embd.weight");
  if (embd == nullptr) return absl::InvalidArgumentError("tensor token_embd.weight is missing");
  c.n_vocab = static_cast<int32_t>(embd->rows());
  if (const gguf::Value* vs = file.Find(a + "vocab_size"); vs != nullptr && vs->AsInt() != c.n_vocab) {
    return absl::InvalidArgumentError(absl::StrCat(a, "vocab_size ", vs->AsInt(), " differs from token_embd rows ",
                                                   c.n_vocab));
  }

  c.dim = static_cast<int32_t>(dim);
  c.n_layers = static_cast<int32_t>(layers);
  c.n_heads = static_cast<int32_t>(heads);
  c.n_kv_heads = static_cast<int32_t>(kv_heads);
  c.head_dim = static_cast<int32_t>(head_dim);
  c.ffn_dim = static_cast<int32_t>(ffn);
  c.n_ctx_train = static_cast<int32_t>(ctx);
  c.rope_dim = static_cast<int32_t>(rope_dim);
  c.rope_freq_base = static_cast<float>(base);
  c.rms_eps = static_cast<float>(eps);
  c.rope_style = c.arch == "qwen2" ? RopeStyle::kNeox : RopeStyle::kNorm;
  // qwen2 always has q/k/v biases; a llama-arch file may carry them too.
  c.qkv_bias = c.arch == "qwen2" || file.FindTensor("blk.0.attn_q.bias") != nullptr;
  c.tied_embeddings = file.FindTensor("output.weight") == nullptr;
  return c;
}

}  // namespace rocmforge
