// Whole-model quantization mixes ("Q4_K_M", "Q8_0", ...): which type each tensor
// gets, following the choices llama.cpp users know (e.g. in Q4_K_M,
// attn_v and ffn_down get Q6_K in about half the layers, output.weight Q6_K,
// 1-D tensors (norms, biases) stay F32).
#pragma once

#include <string>
#include <string_view>

#include "engine/gguf/ggml_types.h"

namespace rocmforge::quant {

// "Q4_K_M", "q8_0", "F16", ... -> FileType. False if unknown.
bool ParseFileType(std::string_view name, FileType* out);
std::string_view FileTypeName(FileType t);
// Names accepted by ParseFileType that QuantizeModel can produce.
std::string SupportedFileTypeNames();

// Type for one tensor of a model being written as `ftype`.
//   name: GGUF tensor name ("blk.7.attn_v.weight", "output.weight", ...)
//   n_dims / cols: shape (1-D tensors and rows whose length is not a multiple
//   of the chosen block size fall back to a type that fits, F16/F32 last).
//   n_layers: block_count, for the per-layer choices of the _M mixes.
//   has_output: false for models with tied embeddings (no output.weight), whose
//   token_embd.weight then gets output.weight's type, as in llama.cpp.
//   n_gqa: n_head / n_head_kv (Q2_K gives attn_v more bits when >= 4).
GgmlType TensorTypeFor(FileType ftype, std::string_view name, int n_dims, int64_t cols,
                       int n_layers, bool has_output = true, int n_gqa = 1);

}  // namespace rocmforge::quant
