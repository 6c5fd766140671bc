// Named model shapes with the published hyper-parameters of real models
// (llama3-8b, llama2-7b, mistral-7b, qwen2-7b) and two tiny test shapes, and
// what a GGUF of that shape contains: tensor names and dims exactly as
// llama.cpp writes llama/qwen2 models, the metadata keys, and a small synthetic
// but valid tokenizer. Used by `rocmforge make-model` (random_model.h) to write
// realistic files for performance work without downloading weights.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/gguf/ggml_types.h"
#include "engine/gguf/gguf_writer.h"

namespace rocmforge::gguf {

enum class VocabKind { kSpm, kGpt2 };  // tokenizer.ggml.model "llama" / "gpt2"

struct ModelShape {
  std::string name;         // "llama3-8b"
  std::string arch;         // general.architecture: "llama" or "qwen2"
  std::string description;  // general.name, e.g. "Meta-Llama-3-8B"
  int64_t dim = 0;          // embedding_length
  int64_t n_layers = 0;     // block_count
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t ffn = 0;          // feed_forward_length
  int64_t vocab = 0;
  int64_t context = 0;      // context_length
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;
  bool qkv_bias = false;    // qwen2: attn_q/k/v.bias
  bool tied_output = false; // no output.weight: the output reuses token_embd
  VocabKind vocab_kind = VocabKind::kSpm;
  std::string tokenizer_pre;  // tokenizer.ggml.pre for gpt2 ("llama-bpe", "qwen2")

  int64_t head_dim() const { return dim / n_heads; }
};

// Every named shape, real ones first.
const std::vector<ModelShape>& NamedShapes();
// NotFound listing the known names when `name` is not one of them.
absl::StatusOr<ModelShape> FindShape(std::string_view name);
// "llama3-8b, llama2-7b, ..." for usage messages.
std::string ShapeNames();

// One tensor of a model: name and dims as in TensorInfo (dims[0] innermost).
struct TensorSpec {
  std::string name;
  std::vector<int64_t> dims;
  bool is_norm = false;  // RMSNorm weights (initialised around 1, not 0)
};
// The tensors of `shape` in the order llama.cpp writes them.
std::vector<TensorSpec> TensorsOf(const ModelShape& shape);

// A synthetic tokenizer that is valid for its kind: every merge's parts and
// result are tokens; byte tokens cover every byte.
struct SyntheticVocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;        // SPM only (empty for gpt2)
  std::vector<int32_t> token_types; // llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte
  std::vector<std::string> merges;  // gpt2 only: "a b"
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t unk_id = -1;              // SPM only
  bool add_bos = false;
};
// Exactly shape.vocab tokens. Deterministic.
SyntheticVocab MakeVocab(const ModelShape& shape);

// Sets general.*, {arch}.* and tokenizer.ggml.* keys for `shape` written as
// `ftype` (general.file_type).
void SetShapeMetadata(const ModelShape& shape, FileType ftype, GgufWriter* writer);

}  // namespace rocmforge::gguf
