#include "engine/model/model.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"

namespace rocmforge {

struct Model::Layer {
  Weight attn_norm, wq, wk, wv, wo, bq, bk, bv;
  Weight ffn_norm, w_gate, w_up, w_down;
};

struct Model::Impl {
  Weight tok_embd, output_norm, output;
  std::vector<Layer> layers;
  // Scratch activations, [max_step_tokens][width] each.
  float* x = nullptr;     // residual stream, dim
  float* h = nullptr;     // normed input / op output, dim
  float* q = nullptr;     // n_heads * head_dim
  float* k = nullptr;     // kv_dim
  float* v = nullptr;     // kv_dim
  float* attn = nullptr;  // n_heads * head_dim
  float* gate = nullptr;  // ffn_dim
  float* up = nullptr;    // ffn_dim
  float* last = nullptr;  // gathered logit rows, dim
  float* logits = nullptr;
  int32_t logits_rows = 0;  // capacity of `logits` in rows
  std::vector<void*> owned;
};

namespace {

// Binds tensor `name`, checking it is {cols, rows} (rows = 1 for vectors).
absl::StatusOr<Weight> Bind(const gguf::GgufFile& file, Backend* backend, const std::string& name, int64_t cols,
                            int64_t rows) {
  const gguf::TensorInfo* t = file.FindTensor(name);
  if (t == nullptr) return absl::InvalidArgumentError(absl::StrCat("model is missing tensor '", name, "'"));
  const bool shape_ok = rows == 1 ? (t->dims.size() == 1 && t->dims[0] == cols)
                                   : (t->dims.size() == 2 && t->dims[0] == cols && t->dims[1] == rows);
  if (!shape_ok) {
    std::string dims;
    for (size_t i = 0; i < t->dims.size(); ++i) absl::StrAppend(&dims, i ? " x " : "", t->dims[i]);
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has shape [", dims, "], expected [",
                                                   cols, rows == 1 ? "" : absl::StrCat(" x ", rows), "]"));
  }
  return backend->LoadWeight(*t);
}

}  // namespace

Model::~Model() {
  if (impl_) {
    for (void* p : impl_->owned) backend_->Free(p);
  }
}

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const gguf::GgufFile& file, Backend* backend,
                                                   int32_t max_step_tokens) {
  if (backend == nullptr) return absl::InvalidArgumentError("Model::Load needs a backend");
  if (max_step_tokens <= 0) return absl::InvalidArgumentError("max_step_tokens must be > 0");
  std::unique_ptr<Model> m(new Model());
  m->backend_ = backend;
  m->max_step_tokens_ = max_step_tokens;
  m->impl_ = std::make_unique<Impl>();
  RF_ASSIGN_OR_RETURN(m->config_, ModelConfigFromGguf(file));
  const ModelConfig& c = m->config_;
  Impl& p = *m->impl_;
  const int64_t q_dim = int64_t{c.n_heads} * c.head_dim, kv_dim = int64_t{c.n_kv_heads} * c.head_dim;

  RF_ASSIGN_OR_RETURN(p.tok_embd, Bind(file, backend, "token_embd.weight", c.dim, c.n_vocab));
  RF_ASSIGN_OR_RETURN(p.output_norm, Bind(file, backend, "output_norm.weight", c.dim, 1));
  if (c.tied_embeddings) {
    p.output = p.tok_embd;
  } else {
    RF_ASSIGN_OR_RETURN(p.output, Bind(file, backend, "output.weight", c.dim, c.n_vocab));
  }
  p.layers.resize(c.n_layers);
  for (int32_t i = 0; i < c.n_layers; ++i) {
    const std::string b = absl::StrCat("blk.", i, ".");
    Layer& l = p.layers[i];
    RF_ASSIGN_OR_RETURN(l.attn_norm, Bind(file, backend, b + "attn_norm.weight", c.dim, 1));
    RF_ASSIGN_OR_RETURN(l.wq, Bind(file, backend, b + "attn_q.weight", c.dim, q_dim));
    RF_ASSIGN_OR_RETURN(l.wk, Bind(file, backend, b + "attn_k.weight", c.dim, kv_dim));
    RF_ASSIGN_OR_RETURN(l.wv, Bind(file, backend, b + "attn_v.weight", c.dim, kv_dim));
    RF_ASSIGN_OR_RETURN(l.wo, Bind(file, backend, b + "attn_output.weight", q_dim, c.dim));
    if (c.qkv_bias) {
      RF_ASSIGN_OR_RETURN(l.bq, Bind(file, backend, b + "attn_q.bias", q_dim, 1));
      RF_ASSIGN_OR_RETURN(l.bk, Bind(file, backend, b + "attn_k.bias", kv_dim, 1));
      RF_ASSIGN_OR_RETURN(l.bv, Bind(file, backend, b + "attn_v.bias", kv_dim, 1));
    }
    RF_ASSIGN_OR_RETURN(l.ffn_norm, Bind(file, backend, b + "ffn_norm.weight", c.dim, 1));
    RF_ASSIGN_OR_RETURN(l.w_gate, Bind(file, backend, b + "ffn_gate.weight", c.dim, c.ffn_dim));
    RF_ASSIGN_OR_RETURN(l.w_up, Bind(file, backend, b + "ffn_up.weight", c.dim, c.ffn_dim));
    RF_ASSIGN_OR_RETURN(l.w_down, Bind(file, backend, b + "ffn_down.weight", c.ffn_dim, c.dim));
  }

  auto alloc = [&](int64_t width, float** out) -> absl::Status {
    RF_ASSIGN_OR_RETURN(void* mem, backend->Alloc(static_cast<size_t>(width) * max_step_tokens * sizeof(float)));
    p.owned.push_back(mem);
    *out = static_cast<float*>(mem);
    return absl::OkStatus();
  };
  RF_RETURN_IF_ERROR(alloc(c.dim, &p.x));
  RF_RETURN_IF_ERROR(alloc(c.dim, &p.h));
  RF_RETURN_IF_ERROR(alloc(q_dim, &p.q));
  RF_RETURN_IF_ERROR(alloc(kv_dim, &p.k));
  RF_RETURN_IF_ERROR(alloc(kv_dim, &p.v));
  RF_RETURN_IF_ERROR(alloc(q_dim, &p.attn));
  RF_RETURN_IF_ERROR(alloc(c.ffn_dim, &p.gate));
  RF_RETURN_IF_ERROR(alloc(c.ffn_dim, &p.up));
  RF_RETURN_IF_ERROR(alloc(c.dim, &p.last));
  return m;
}

size_t Model::KvBytesPerToken() const {
  // K and V, f32 on the CPU; a GPU keeping f16 needs half of this.
  return static_cast<size_t>(config_.n_layers) * 2 * config_.n_kv_heads * config_.head_dim * sizeof(float);
}

absl::StatusOr<const float*> Model::Forward(const StepBatch& batch) {
  const ModelConfig& c = config_;
  Impl& p = *impl_;
  Backend& be = *backend_;
  const int n = batch.n_tokens();
  const int n_out = static_cast<int>(batch.logit_rows.size());
  if (n <= 0) return absl::InvalidArgumentError("Forward: empty step batch");
  if (n > max_step_tokens_) {
    return absl::InvalidArgumentError(absl::StrCat("Forward: ", n, " tokens exceed max_step_tokens ", max_step_tokens_));
  }
  const KvCacheShape& kv = be.kv_shape();
  if (kv.n_layers != c.n_layers || kv.n_kv_heads != c.n_kv_heads || kv.head_dim != c.head_dim) {
    return absl::FailedPreconditionError("Forward: the backend's KV cache does not match the model");
  }
  for (int32_t t : batch.tokens) {
    if (t < 0 || t >= c.n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat("Forward: token id ", t, " outside the vocabulary of ", c.n_vocab));
    }
  }
  if (n_out > p.logits_rows) {
    if (p.logits != nullptr) {
      be.Free(p.logits);
      std::erase(p.owned, static_cast<void*>(p.logits));
      p.logits = nullptr;
      p.logits_rows = 0;
    }
    RF_ASSIGN_OR_RETURN(void* mem, be.Alloc(static_cast<size_t>(n_out) * c.n_vocab * sizeof(float)));
    p.owned.push_back(mem);
    p.logits = static_cast<float*>(mem);
    p.logits_rows = n_out;
  }
  RF_RETURN_IF_ERROR(be.BeginStep(batch));

  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  be.Embed(p.tok_embd, p.x);
  for (int32_t i = 0; i < c.n_layers; ++i) {
    const Layer& l = p.layers[i];
    // Attention block.
    be.RmsNorm(p.x, l.attn_norm, p.h, n, c.dim, c.rms_eps);
    be.MatMul(l.wq, p.h, p.q, n);
    be.MatMul(l.wk, p.h, p.k, n);
    be.MatMul(l.wv, p.h, p.v, n);
    if (c.qkv_bias) {
      be.AddBias(p.q, l.bq, n);
      be.AddBias(p.k, l.bk, n);
      be.AddBias(p.v, l.bv, n);
    }
    be.Rope(p.q, n, c.n_heads, c.head_dim, c.rope_dim, c.rope_freq_base, c.rope_style);
    be.Rope(p.k, n, c.n_kv_heads, c.head_dim, c.rope_dim, c.rope_freq_base, c.rope_style);
    be.StoreKv(i, p.k, p.v);
    be.Attention(i, p.q, p.attn, c.n_heads, scale);
    be.MatMul(l.wo, p.attn, p.h, n);
    // x += attn_out; h = rmsnorm(x) * ffn_norm
    be.AddRmsNorm(p.x, p.h, l.ffn_norm, p.h, n, c.dim, c.rms_eps);
    // Feed-forward block: x += down(silu(gate(h)) * up(h)).
    be.MatMul(l.w_gate, p.h, p.gate, n);
    be.MatMul(l.w_up, p.h, p.up, n);
    be.SwiGLU(p.gate, p.up, p.gate, static_cast<int64_t>(n) * c.ffn_dim);
    be.MatMul(l.w_down, p.gate, p.h, n);
    be.Add(p.x, p.h, static_cast<int64_t>(n) * c.dim);
  }
  if (n_out == 0) return static_cast<const float*>(p.logits);
  // Only the rows that need logits go through the final norm and the
  // (vocabulary-sized) output matmul.
  be.GatherRows(p.x, p.last, c.dim);
  be.RmsNorm(p.last, p.output_norm, p.last, n_out, c.dim, c.rms_eps);
  be.MatMul(p.output, p.last, p.logits, n_out);
  return static_cast<const float*>(p.logits);
}

}  // namespace rocmforge
